//! One WebRTC transport's DTLS 1.2 association (RFC 6347) used for DTLS-SRTP key agreement
//! (RFC 5764), sans-IO: datagrams and the current [`Instant`] go in, datagrams to send, the
//! next wake-up time and [`DtlsEvent`]s come out. No clock is read, no thread is started.
//!
//! It wraps the sans-IO [`Endpoint`] of `rtc-dtls` holding a single association with a fixed
//! placeholder peer address: ICE, not DTLS, owns the real 5-tuple (RFC 8842 §4), and the
//! association must survive a change of the selected ICE pair.
//!
//! Authentication is by fingerprint (RFC 5763 §5, RFC 8122 §5): both sides present
//! self-signed certificates, the server requires the client's (`CertificateRequest`), and the
//! peer's certificate has to match the fingerprint it signalled in `dtlsParameters`. The check
//! runs inside the handshake (the stack then sends a fatal `bad_certificate` alert) and again
//! on completion, before any key is released.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, VerifyPeerCertificateFn};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_shared::error::Error as StackError;

use super::certificate::DtlsCertificate;
use super::client_hello::{ClientHelloReader, HelloProgress, MAX_HELD};
use super::dtls_record::check_datagram;
use super::error::DtlsError;
use super::fingerprint::RemoteFingerprints;
use super::srtp_profile::{SrtpKeyMaterial, SrtpProfile};
use crate::ortc::{DtlsFingerprint, DtlsRole};

/// RFC 5764 §4.2 exporter label.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Placeholder addresses of the single association (see the module documentation).
const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
const REMOTE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2);

/// Server name a client sends in SNI; a host name, since RFC 6066 §3 forbids IP literals.
/// Peers ignore it: WebRTC authenticates by fingerprint.
const SERVER_NAME: &str = "kolabmeet";

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsState {
    /// Handshaking.
    Connecting,
    /// Handshake complete, peer authenticated, SRTP keys exported.
    Connected,
    /// The handshake failed or a fatal alert arrived. Terminal.
    Failed,
    /// Closed by either side (`close_notify`, RFC 5246 §7.2.1). Terminal.
    Closed,
}

/// What a session reports, in order, through [`DtlsSession::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// Handshake complete and peer authenticated: build the SRTP session from these.
    Connected {
        /// Negotiated protection profile.
        profile: SrtpProfile,
        /// Keys protecting what we send (the server's write keys when we are the server).
        local_keys: SrtpKeyMaterial,
        /// Keys protecting what the peer sends.
        remote_keys: SrtpKeyMaterial,
    },
    /// Decrypted DTLS application data (SCTP for data channels, RFC 8261).
    ApplicationData(Vec<u8>),
    /// The session failed; the error says why ([`DtlsError::is_fatal`] holds).
    Failed(DtlsError),
    /// The peer sent `close_notify`; our reply is queued for [`DtlsSession::poll_transmit`].
    Closed,
}

/// A sans-IO DTLS 1.2 endpoint for one WebRTC transport.
pub struct DtlsSession {
    role: DtlsRole,
    state: DtlsState,
    endpoint: Endpoint,
    profiles: Vec<SrtpProfile>,
    remote_fingerprints: Arc<RemoteFingerprints>,
    /// Set by the in-handshake certificate check when it rejects the peer certificate.
    fingerprint_rejected: Arc<AtomicBool>,
    /// A server's configuration ingredients and the `ClientHello` being read, until it is
    /// whole: the endpoint is then rebuilt to accept only our preferred profile among those
    /// offered.
    server_setup: Option<ServerGate>,
    profile: Option<SrtpProfile>,
    events: VecDeque<DtlsEvent>,
}

impl DtlsSession {
    /// Starts a session offering every supported SRTP profile, AEAD first
    /// ([`SrtpProfile::PREFERENCE`]).
    ///
    /// `role` is ours: the opposite of the peer's (RFC 5763 §5, `a=setup`). A client queues
    /// its `ClientHello` right away; a server waits for one. `remote_fingerprints` are the
    /// peer's `dtlsParameters.fingerprints`.
    pub fn new(
        role: DtlsRole,
        certificate: &DtlsCertificate,
        remote_fingerprints: &[DtlsFingerprint],
        now: Instant,
    ) -> Result<Self, DtlsError> {
        Self::with_profiles(
            role,
            certificate,
            remote_fingerprints,
            &SrtpProfile::PREFERENCE,
            now,
        )
    }

    /// [`Self::new`] offering (client) or accepting (server) only `profiles`, in preference
    /// order. As a server, our order wins (RFC 5764 §4.1.1 leaves the choice to the
    /// server): the first `ClientHello` is read before the stack sees it, and the session
    /// then accepts only the first of `profiles` the client offers.
    pub fn with_profiles(
        role: DtlsRole,
        certificate: &DtlsCertificate,
        remote_fingerprints: &[DtlsFingerprint],
        profiles: &[SrtpProfile],
        now: Instant,
    ) -> Result<Self, DtlsError> {
        let is_client = match role {
            DtlsRole::Client => true,
            DtlsRole::Server => false,
            DtlsRole::Auto => return Err(DtlsError::InvalidRole),
        };
        if profiles.is_empty() {
            return Err(DtlsError::NoSrtpProfiles);
        }
        let remote_fingerprints =
            Arc::new(RemoteFingerprints::from_signalled(remote_fingerprints)?);
        let fingerprint_rejected = Arc::new(AtomicBool::new(false));
        let setup = ConfigSetup {
            certificate: certificate.clone(),
            remote_fingerprints: remote_fingerprints.clone(),
            fingerprint_rejected: fingerprint_rejected.clone(),
        };
        let endpoint = if is_client {
            let mut endpoint = Endpoint::new(LOCAL, TransportProtocol::UDP, None);
            endpoint
                .connect(now, REMOTE, setup.build(true, profiles)?, None)
                .map_err(|e| DtlsError::Config(e.to_string()))?;
            endpoint
        } else {
            Endpoint::new(
                LOCAL,
                TransportProtocol::UDP,
                Some(setup.build(false, profiles)?),
            )
        };
        let server_setup = (!is_client).then(|| ServerGate {
            setup,
            hello: ClientHelloReader::default(),
            held: Vec::new(),
        });
        Ok(Self {
            role,
            state: DtlsState::Connecting,
            endpoint,
            profiles: profiles.to_vec(),
            remote_fingerprints,
            fingerprint_rejected,
            server_setup,
            profile: None,
            events: VecDeque::new(),
        })
    }

    /// Our role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Current state.
    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// The negotiated profile, once connected.
    pub fn srtp_profile(&self) -> Option<SrtpProfile> {
        self.profile
    }

    fn is_active(&self) -> bool {
        matches!(self.state, DtlsState::Connecting | DtlsState::Connected)
    }

    /// Feeds one received datagram (first byte 20..=63, RFC 7983 §7).
    ///
    /// A malformed datagram, or a record the stack discards, returns a non-fatal error and
    /// leaves the session as it was. A fatal error (see [`DtlsError::is_fatal`]) also moves
    /// the session to [`DtlsState::Failed`] and queues [`DtlsEvent::Failed`]; any alert the
    /// stack answered with is queued for [`Self::poll_transmit`].
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        if !self.is_active() {
            return Err(DtlsError::NotActive);
        }
        check_datagram(data)?;
        if self.server_setup.is_none() {
            return self.read(now, data);
        }
        for datagram in self.server_hello_gate(data)? {
            self.read(now, &datagram)?;
        }
        Ok(())
    }

    /// Hands one datagram to the stack.
    fn read(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        match self.endpoint.read(now, REMOTE, None, BytesMut::from(data)) {
            Ok(events) => {
                for event in events {
                    self.on_endpoint_event(now, event)?;
                }
                Ok(())
            }
            Err(error) => {
                let error = self.classify(error);
                if error.is_fatal() {
                    self.fail(error.clone());
                }
                Err(error)
            }
        }
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.endpoint
            .poll_transmit()
            .map(|transmit| Vec::from(transmit.message))
    }

    /// When [`Self::handle_timeout`] has to be called next (handshake retransmission,
    /// RFC 6347 §4.2.4), if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_active() {
            self.endpoint.poll_timeout(&REMOTE)
        } else {
            None
        }
    }

    /// Advances timers to `now`: retransmits the last flight when its timer expired, or fails
    /// the session with [`DtlsError::Timeout`] once retransmissions are exhausted.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.is_active() {
            return;
        }
        match self.endpoint.handle_timeout(REMOTE, now) {
            Ok(()) => {}
            // A server has no association before the first ClientHello.
            Err(StackError::InvalidRemoteAddress(_)) => {}
            Err(error) if self.state == DtlsState::Connecting => {
                self.fail(match error {
                    StackError::ErrInvalidFsmTransition => DtlsError::Timeout,
                    other => DtlsError::Handshake(other.to_string()),
                });
            }
            Err(error) => tracing::debug!(%error, "DTLS timer after the handshake"),
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// Sends DTLS application data (SCTP, RFC 8261) once connected.
    pub fn send_application_data(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        if self.state != DtlsState::Connected {
            return Err(DtlsError::NotConnected);
        }
        self.endpoint
            .write(now, REMOTE, data)
            .map_err(|e| DtlsError::InvalidRecord(e.to_string()))
    }

    /// Closes the association, queueing a `close_notify` (RFC 5246 §7.2.1). Terminal.
    pub fn close(&mut self, now: Instant) {
        if self.is_active() {
            // The dropped association is of no further use.
            let _ = self.endpoint.stop(now, REMOTE);
            self.state = DtlsState::Closed;
        }
    }

    /// A server's first `ClientHello`, possibly in fragments over several datagrams, is held
    /// back from the stack until it is whole; the (still empty) endpoint is then rebuilt to
    /// accept only the first of our profiles that the client offers, so that the stack,
    /// which takes the client's order, can pick nothing else, and the held datagrams are
    /// fed to it. Without a readable offer, or with no profile in common, the stack keeps the
    /// full list and decides (and fails) as usual. Returns the datagrams to feed now.
    fn server_hello_gate(&mut self, datagram: &[u8]) -> Result<Vec<Vec<u8>>, DtlsError> {
        let Some(gate) = self.server_setup.as_mut() else {
            return Ok(vec![datagram.to_vec()]);
        };
        let offered = match gate.hello.push(datagram) {
            HelloProgress::NotHello if gate.held.is_empty() => {
                return Ok(vec![datagram.to_vec()]);
            }
            HelloProgress::NotHello | HelloProgress::Incomplete if gate.held.len() < MAX_HELD => {
                gate.held.push(datagram.to_vec());
                return Ok(Vec::new());
            }
            HelloProgress::Complete(offered) => offered,
            // Too many pieces, or pieces that do not fit: the stack judges them.
            _ => None,
        };
        let Some(gate) = self.server_setup.take() else {
            return Ok(Vec::new());
        };
        let mut feed = gate.held;
        feed.push(datagram.to_vec());
        if let Some(best) = offered.and_then(|offered| {
            self.profiles
                .iter()
                .copied()
                .find(|p| offered.contains(&p.id()))
        }) {
            let config = gate.setup.build(false, &[best])?;
            self.endpoint = Endpoint::new(LOCAL, TransportProtocol::UDP, Some(config));
        }
        Ok(feed)
    }

    fn fail(&mut self, error: DtlsError) {
        tracing::debug!(%error, role = ?self.role, "DTLS session failed");
        self.state = DtlsState::Failed;
        self.events.push_back(DtlsEvent::Failed(error));
    }

    /// Maps a stack error to ours, deciding whether it is fatal.
    fn classify(&self, error: StackError) -> DtlsError {
        if self.fingerprint_rejected.load(Ordering::Relaxed) {
            return DtlsError::FingerprintMismatch;
        }
        match error {
            // A fatal alert was received, or sent in answer to a bad record (RFC 5246 §7.2).
            StackError::ErrAlertFatalOrClose => {
                DtlsError::Handshake("fatal alert sent or received".into())
            }
            StackError::ErrInvalidPacketLength => DtlsError::InvalidRecord(error.to_string()),
            // A warning alert: only close_notify matters, and the stack handles it.
            StackError::Other(text) if text.starts_with("Error of Alert") => {
                DtlsError::InvalidRecord(text)
            }
            // Once connected the handshake state machine no longer runs: nothing else the
            // stack reports for one datagram ends an authenticated association.
            other if self.state == DtlsState::Connected => {
                DtlsError::InvalidRecord(other.to_string())
            }
            // During the handshake, errors come out of the flight state machine, which has
            // already sent its fatal alert.
            other => DtlsError::Handshake(other.to_string()),
        }
    }

    fn on_endpoint_event(&mut self, now: Instant, event: EndpointEvent) -> Result<(), DtlsError> {
        match event {
            EndpointEvent::HandshakeComplete => {
                if let Err(error) = self.on_handshake_complete() {
                    // Tell the peer, and drop the association with its keys.
                    let _ = self.endpoint.stop(now, REMOTE);
                    self.fail(error.clone());
                    return Err(error);
                }
            }
            // Data can only arrive once connected; the stack holds it back until then.
            EndpointEvent::ApplicationData(data) if self.state == DtlsState::Connected => {
                self.events
                    .push_back(DtlsEvent::ApplicationData(Vec::from(data)));
            }
            EndpointEvent::PeerClosed => {
                self.state = DtlsState::Closed;
                self.events.push_back(DtlsEvent::Closed);
            }
            _ => {}
        }
        Ok(())
    }

    /// Authenticates the peer and exports the SRTP keys (RFC 5764 §4.2).
    fn on_handshake_complete(&mut self) -> Result<(), DtlsError> {
        let state = self
            .endpoint
            .get_connection_state(REMOTE)
            .ok_or_else(|| DtlsError::Handshake("association vanished".into()))?;
        if !self
            .remote_fingerprints
            .matches_chain(&state.peer_certificates)
        {
            return Err(DtlsError::FingerprintMismatch);
        }
        let profile = from_stack(state.srtp_protection_profile())
            .filter(|p| self.profiles.contains(p))
            .ok_or(DtlsError::NoSrtpProfile)?;
        let material = state
            .export_keying_material(EXPORTER_LABEL, &[], profile.keying_material_len())
            .map_err(|e| DtlsError::KeyExport(e.to_string()))?;
        let (client, server) = SrtpKeyMaterial::split(profile, material.as_ref())
            .ok_or_else(|| DtlsError::KeyExport("short keying material".into()))?;
        let (local_keys, remote_keys) = match self.role {
            DtlsRole::Server => (server, client),
            _ => (client, server),
        };
        self.state = DtlsState::Connected;
        self.profile = Some(profile);
        self.events.push_back(DtlsEvent::Connected {
            profile,
            local_keys,
            remote_keys,
        });
        Ok(())
    }
}

impl std::fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsSession")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// A server session before its first whole `ClientHello`.
struct ServerGate {
    setup: ConfigSetup,
    hello: ClientHelloReader,
    /// Datagrams held back from the stack until the `ClientHello` is whole.
    held: Vec<Vec<u8>>,
}

/// What a stack configuration is built from.
struct ConfigSetup {
    certificate: DtlsCertificate,
    remote_fingerprints: Arc<RemoteFingerprints>,
    fingerprint_rejected: Arc<AtomicBool>,
}

impl ConfigSetup {
    /// The stack configuration for one side, offering or accepting `profiles`.
    fn build(
        &self,
        is_client: bool,
        profiles: &[SrtpProfile],
    ) -> Result<Arc<rtc_dtls::config::HandshakeConfig>, DtlsError> {
        let verify: VerifyPeerCertificateFn = {
            let remote = self.remote_fingerprints.clone();
            let rejected = self.fingerprint_rejected.clone();
            Arc::new(move |chain: &[Vec<u8>], _verified_chains: &[_]| {
                if remote.matches_chain(chain) {
                    Ok(())
                } else {
                    rejected.store(true, Ordering::Relaxed);
                    Err(StackError::ErrInvalidCertificate)
                }
            })
        };
        let config = ConfigBuilder::default()
            .with_crypto_provider(self.certificate.provider().clone())
            .with_certificates(vec![self.certificate.certificate().clone()])
            .with_srtp_protection_profiles(profiles.iter().map(|p| to_stack(*p)).collect())
            // No CA chain: the fingerprint check replaces it (RFC 5763 §5).
            .with_insecure_skip_verify(true)
            // A server must request the client certificate to check its fingerprint.
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_verify_peer_certificate(Some(verify))
            .with_server_name(SERVER_NAME.to_owned())
            .build(is_client, Some(REMOTE))
            .map_err(|e| DtlsError::Config(e.to_string()))?;
        Ok(Arc::new(config))
    }
}

fn to_stack(profile: SrtpProfile) -> SrtpProtectionProfile {
    match profile {
        SrtpProfile::AeadAes256Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
        SrtpProfile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        SrtpProfile::Aes128CmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
    }
}

fn from_stack(profile: SrtpProtectionProfile) -> Option<SrtpProfile> {
    SrtpProfile::PREFERENCE
        .into_iter()
        .find(|p| to_stack(*p) == profile)
}

#[cfg(test)]
mod tests {
    use super::super::dtls_record::RECORD_HEADER_LEN;
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn session_is_send() {
        assert_send::<DtlsSession>();
    }

    #[test]
    fn rejects_auto_role_and_bad_fingerprints() {
        let cert = DtlsCertificate::generate().unwrap();
        let now = Instant::now();
        let fps = cert.fingerprints();
        assert_eq!(
            DtlsSession::new(DtlsRole::Auto, &cert, fps, now).err(),
            Some(DtlsError::InvalidRole)
        );
        assert_eq!(
            DtlsSession::new(DtlsRole::Server, &cert, &[], now).err(),
            Some(DtlsError::NoUsableFingerprint)
        );
        assert_eq!(
            DtlsSession::with_profiles(DtlsRole::Server, &cert, fps, &[], now).err(),
            Some(DtlsError::NoSrtpProfiles)
        );
    }

    /// Runs a handshake between two sessions until both are connected (or `rounds` pass).
    fn handshake(client: &mut DtlsSession, server: &mut DtlsSession, now: Instant) {
        for _ in 0..20 {
            while let Some(d) = client.poll_transmit() {
                let _ = server.handle_datagram(now, &d);
            }
            while let Some(d) = server.poll_transmit() {
                let _ = client.handle_datagram(now, &d);
            }
            if client.state() == DtlsState::Connected && server.state() == DtlsState::Connected {
                return;
            }
        }
        panic!("no handshake: {client:?} {server:?}");
    }

    /// RFC 5764 §4.1.1: the server chooses. A client listing AES-CM first (as Chromium
    /// does) still gets our first choice among what it offers, in both directions' keys.
    #[test]
    fn server_preference_wins_over_the_client_order() {
        let now = Instant::now();
        let (client_cert, server_cert) = (
            DtlsCertificate::generate().unwrap(),
            DtlsCertificate::generate().unwrap(),
        );
        let cases: [(&[SrtpProfile], SrtpProfile); 3] = [
            (
                &[
                    SrtpProfile::Aes128CmHmacSha1_80,
                    SrtpProfile::AeadAes128Gcm,
                    SrtpProfile::AeadAes256Gcm,
                ],
                SrtpProfile::AeadAes256Gcm,
            ),
            (
                &[SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm],
                SrtpProfile::AeadAes128Gcm,
            ),
            (
                &[SrtpProfile::Aes128CmHmacSha1_80],
                SrtpProfile::Aes128CmHmacSha1_80,
            ),
        ];
        for (offer, expected) in cases {
            let mut client = DtlsSession::with_profiles(
                DtlsRole::Client,
                &client_cert,
                server_cert.fingerprints(),
                offer,
                now,
            )
            .unwrap();
            let mut server = DtlsSession::new(
                DtlsRole::Server,
                &server_cert,
                client_cert.fingerprints(),
                now,
            )
            .unwrap();
            handshake(&mut client, &mut server, now);
            assert_eq!(client.srtp_profile(), Some(expected), "offer {offer:?}");
            assert_eq!(server.srtp_profile(), Some(expected), "offer {offer:?}");
            let keys = |s: &mut DtlsSession| match s.poll_event() {
                Some(DtlsEvent::Connected {
                    local_keys,
                    remote_keys,
                    ..
                }) => (local_keys, remote_keys),
                other => panic!("{other:?}"),
            };
            let (c_local, c_remote) = keys(&mut client);
            let (s_local, s_remote) = keys(&mut server);
            assert_eq!((c_local, c_remote), (s_remote, s_local));
        }
    }

    /// Chromium's ClientHello (with a post-quantum key share) is fragmented over two
    /// datagrams; the server still reads the whole offer and its preference still wins.
    #[test]
    fn server_preference_wins_over_a_fragmented_client_hello() {
        let now = Instant::now();
        let (client_cert, server_cert) = (
            DtlsCertificate::generate().unwrap(),
            DtlsCertificate::generate().unwrap(),
        );
        let mut client = DtlsSession::with_profiles(
            DtlsRole::Client,
            &client_cert,
            server_cert.fingerprints(),
            &[SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes256Gcm],
            now,
        )
        .unwrap();
        let mut server = DtlsSession::new(
            DtlsRole::Server,
            &server_cert,
            client_cert.fingerprints(),
            now,
        )
        .unwrap();
        let hello = client.poll_transmit().unwrap();
        let parts = super::super::client_hello::fragments(&hello, 2);
        server.handle_datagram(now, &parts[0]).unwrap();
        assert!(server.poll_transmit().is_none(), "held until whole");
        server.handle_datagram(now, &parts[1]).unwrap();
        // The two fragments used record sequence numbers 0 and 1 of epoch 0: the client's
        // later epoch-0 records, numbered from 1 on, move one up so none looks replayed.
        let bump = |mut d: Vec<u8>| {
            let mut at = 0;
            while at + RECORD_HEADER_LEN <= d.len() {
                if d[at + 3..at + 5] == [0, 0] {
                    d[at + 10] += 1;
                }
                at += RECORD_HEADER_LEN + usize::from(u16::from_be_bytes([d[at + 11], d[at + 12]]));
            }
            d
        };
        for _ in 0..20 {
            while let Some(d) = server.poll_transmit() {
                let _ = client.handle_datagram(now, &d);
            }
            while let Some(d) = client.poll_transmit() {
                let _ = server.handle_datagram(now, &bump(d));
            }
        }
        assert_eq!(server.state(), DtlsState::Connected);
        assert_eq!(server.srtp_profile(), Some(SrtpProfile::AeadAes256Gcm));
        assert_eq!(client.srtp_profile(), Some(SrtpProfile::AeadAes256Gcm));
    }

    #[test]
    fn client_sends_client_hello_server_waits() {
        let cert = DtlsCertificate::generate().unwrap();
        let now = Instant::now();
        let mut client =
            DtlsSession::new(DtlsRole::Client, &cert, cert.fingerprints(), now).unwrap();
        let hello = client.poll_transmit().expect("ClientHello");
        assert_eq!(hello[0], 22, "handshake record");
        assert!(check_datagram(&hello).is_ok());
        assert!(client.poll_timeout().is_some_and(|t| t > now));
        let mut server =
            DtlsSession::new(DtlsRole::Server, &cert, cert.fingerprints(), now).unwrap();
        assert!(server.poll_transmit().is_none());
        assert_eq!(server.poll_timeout(), None);
        server.handle_timeout(now);
        assert_eq!(server.state(), DtlsState::Connecting);
    }
}
