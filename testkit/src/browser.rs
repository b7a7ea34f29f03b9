//! The client end of one WebRTC transport, as a browser runs it, built from the engine's
//! own stacks: ICE Binding requests with the transport's credentials ([`BindingRequest`]),
//! a DTLS session ([`DtlsSession`], client or server) and SRTP ([`SrtpSession`]) once
//! the handshake is over. Sans-IO: the harnesses carry its datagrams ([`crate::Sim`] in
//! memory, [`crate::UdpWorker`] over sockets).

use std::time::Instant;

use kolabmeet_engine::crypto::{
    DtlsCertificate, DtlsEvent, DtlsSession, SrtpError, SrtpProfile, SrtpSession,
};
use kolabmeet_engine::ortc::{DtlsFingerprint, DtlsParameters, DtlsRole};
use serde_json::Value;

use crate::stun::BindingRequest;

/// What a datagram from the server was, after [`Browser::handle_datagram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// A STUN Binding success response.
    StunResponse,
    /// DTLS (handshake or alerts), handled.
    Dtls,
    /// RTP, decrypted in place.
    Rtp,
    /// RTCP, decrypted in place.
    Rtcp,
    /// SRTP or SRTCP that libsrtp refused as a replay: a packet received before, sent
    /// again (the core forwards a producer's duplicate as it came; a real browser drops
    /// the copy silently).
    Replayed,
    /// SRTP or SRTCP that did not decrypt (bad tag, malformed, or no keys yet).
    Undecryptable,
    /// Anything else.
    Invalid,
}

/// A browser's end of one transport. See the module documentation.
pub struct Browser {
    dtls: DtlsSession,
    srtp: Option<SrtpSession>,
    /// `<server ufrag>:b`, the USERNAME of its checks.
    username: String,
    pwd: String,
    params: DtlsParameters,
}

/// The SRTP profiles Chromium offers in its `ClientHello`, in its order (seen on the wire:
/// `use_srtp` 0x0001, 0x0008, 0x0007): AES-CM first, so a server that takes the client's
/// order ends up with the slowest profile.
pub const CHROMIUM_SRTP_PROFILES: [SrtpProfile; 3] = [
    SrtpProfile::Aes128CmHmacSha1_80,
    SrtpProfile::AeadAes256Gcm,
    SrtpProfile::AeadAes128Gcm,
];

impl Browser {
    /// The DTLS client for the transport a `createWebRtcTransport` answer describes, with
    /// the certificate `cert` (one may serve many browsers, to save setup time), offering
    /// Chromium's SRTP profiles in Chromium's order ([`CHROMIUM_SRTP_PROFILES`]).
    pub fn new(answer: &Value, cert: &DtlsCertificate, now: Instant) -> Result<Self, String> {
        Self::offering(answer, cert, &CHROMIUM_SRTP_PROFILES, now)
    }

    /// [`Browser::new`] offering only `profiles`, in that order.
    pub fn offering(
        answer: &Value,
        cert: &DtlsCertificate,
        profiles: &[SrtpProfile],
        now: Instant,
    ) -> Result<Self, String> {
        let ice = &answer["iceParameters"];
        let ufrag = ice["usernameFragment"]
            .as_str()
            .ok_or("no usernameFragment")?;
        let pwd = ice["password"].as_str().ok_or("no password")?;
        let fps: Vec<DtlsFingerprint> =
            serde_json::from_value(answer["dtlsParameters"]["fingerprints"].clone())
                .map_err(|e| format!("fingerprints: {e}"))?;
        Browser::build(DtlsRole::Client, cert, &fps, (ufrag, pwd), profiles, now)
    }

    /// A browser in DTLS `role` trusting the server's `fingerprints`, checking ICE with the
    /// server's `(ufrag, password)`.
    pub fn with_role(
        role: DtlsRole,
        cert: &DtlsCertificate,
        fingerprints: &[DtlsFingerprint],
        credentials: (&str, &str),
        now: Instant,
    ) -> Result<Self, String> {
        Self::build(
            role,
            cert,
            fingerprints,
            credentials,
            &CHROMIUM_SRTP_PROFILES,
            now,
        )
    }

    fn build(
        role: DtlsRole,
        cert: &DtlsCertificate,
        fingerprints: &[DtlsFingerprint],
        (ufrag, pwd): (&str, &str),
        profiles: &[SrtpProfile],
        now: Instant,
    ) -> Result<Self, String> {
        let dtls = DtlsSession::with_profiles(role, cert, fingerprints, profiles, now)
            .map_err(|e| format!("DTLS {role:?}: {e}"))?;
        Ok(Browser {
            dtls,
            srtp: None,
            username: format!("{ufrag}:b"),
            pwd: pwd.to_owned(),
            params: DtlsParameters {
                role,
                fingerprints: cert.fingerprints().to_vec(),
            },
        })
    }

    /// What `connectWebRtcTransport` carries for this browser: its role and its
    /// certificate's fingerprints.
    pub fn dtls_parameters(&self) -> DtlsParameters {
        self.params.clone()
    }

    /// A valid, non-nominating check with this transport's credentials, to change.
    pub fn binding(&self) -> BindingRequest<'_> {
        BindingRequest::new(&self.username, &self.pwd)
    }

    /// The check a controlling browser nominates with (USE-CANDIDATE), also good as a
    /// consent refresh.
    pub fn binding_request(&self) -> Vec<u8> {
        self.binding().nominating().encode()
    }

    /// Handles a datagram from the server; RTP and RTCP are decrypted in place.
    pub fn handle_datagram(&mut self, now: Instant, data: &mut Vec<u8>) -> Incoming {
        match data.first() {
            Some(0..=3) if data.len() >= 20 && data[..2] == [0x01, 0x01] => Incoming::StunResponse,
            Some(20..=63) => {
                let _ = self.dtls.handle_datagram(now, data);
                self.drain_dtls_events();
                Incoming::Dtls
            }
            Some(128..=191) => {
                let Some(srtp) = self.srtp.as_mut() else {
                    return Incoming::Undecryptable;
                };
                let (result, kind) = if kolabmeet_net::rtcp::is_rtcp(data) {
                    (srtp.unprotect_rtcp(data), Incoming::Rtcp)
                } else {
                    (srtp.unprotect_rtp(data), Incoming::Rtp)
                };
                match result {
                    Ok(()) => kind,
                    Err(SrtpError::Replay) => Incoming::Replayed,
                    Err(_) => Incoming::Undecryptable,
                }
            }
            _ => Incoming::Invalid,
        }
    }

    fn drain_dtls_events(&mut self) {
        while let Some(e) = self.dtls.poll_event() {
            if let DtlsEvent::Connected {
                profile,
                local_keys,
                remote_keys,
            } = e
            {
                self.srtp = SrtpSession::new(profile, &local_keys, &remote_keys).ok();
            }
        }
    }

    /// The next DTLS datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.dtls.poll_transmit()
    }

    /// When [`Browser::handle_timeout`] must next run (DTLS retransmissions).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dtls.poll_timeout()
    }

    /// Drives DTLS retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.dtls.handle_timeout(now);
        self.drain_dtls_events();
    }

    /// DTLS is connected and SRTP keyed.
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some()
    }

    /// The SRTP session, once connected.
    pub fn srtp(&mut self) -> Option<&mut SrtpSession> {
        self.srtp.as_mut()
    }

    /// Takes the SRTP session out (to protect packets elsewhere, as the benches do).
    pub fn take_srtp(&mut self) -> Option<SrtpSession> {
        self.srtp.take()
    }

    /// RTP to SRTP in place.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), String> {
        let srtp = self.srtp.as_mut().ok_or("not connected")?;
        srtp.protect_rtp(packet).map_err(|e| e.to_string())
    }

    /// RTCP to SRTCP in place.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), String> {
        let srtp = self.srtp.as_mut().ok_or("not connected")?;
        srtp.protect_rtcp(packet).map_err(|e| e.to_string())
    }
}
