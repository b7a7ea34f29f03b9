//! SRTP and SRTCP protection of one WebRTC transport (RFC 3711, AEAD per RFC 7714) over
//! libsrtp2, keyed by the DTLS-SRTP exporter (RFC 5764 §4.2).
//!
//! Two libsrtp contexts: an outbound one protecting everything we send, an inbound one
//! unprotecting everything the peer sends. Both use libsrtp's wildcard SSRC policies
//! (`ssrc_any_outbound`, `ssrc_any_inbound`), so a stream is created for every new SSRC on
//! first use: a transport carries many SSRCs (every consumer, RTX, probation).
//!
//! Packets are processed in place in a `Vec<u8>`: protecting appends the tag (the vector
//! grows by at most `SRTP_MAX_TRAILER_LEN`), unprotecting truncates. On any error libsrtp
//! leaves the packet undefined and the vector is emptied: the caller drops it.

use std::fmt;

use srtp::{CryptoPolicy, Session, StreamPolicy};

use super::error::SrtpError;
use super::srtp_profile::{SrtpKeyMaterial, SrtpProfile};

/// Replay window of the inbound context, in packets: mediasoup's value. libsrtp's default
/// (128, RFC 3711 §3.3.2's minimum is 64) is too small for video bursts reordered by the
/// network.
const REPLAY_WINDOW: u64 = 1024;

/// An inbound and an outbound SRTP context.
pub struct SrtpSession {
    profile: SrtpProfile,
    inbound: Session,
    outbound: Session,
}

impl SrtpSession {
    /// Builds both contexts from the keys of [`DtlsEvent::Connected`](super::DtlsEvent).
    pub fn new(
        profile: SrtpProfile,
        local_keys: &SrtpKeyMaterial,
        remote_keys: &SrtpKeyMaterial,
    ) -> Result<Self, SrtpError> {
        Ok(Self {
            profile,
            inbound: context(profile, remote_keys, false)?,
            outbound: context(profile, local_keys, true)?,
        })
    }

    /// The profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// RTP to SRTP in place (RFC 3711 §3.3, RFC 7714 §8).
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.outbound
            .protect(packet)
            .map_err(SrtpError::from_libsrtp)
    }

    /// SRTP to RTP in place; a bad tag, a replay or a malformed packet is an error.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.inbound
            .unprotect(packet)
            .map_err(SrtpError::from_libsrtp)
    }

    /// RTCP to SRTCP in place (RFC 3711 §3.4, RFC 7714 §9).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.outbound
            .protect_rtcp(packet)
            .map_err(SrtpError::from_libsrtp)
    }

    /// SRTCP to RTCP in place; a bad tag, a replay or a malformed packet is an error.
    pub fn unprotect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.inbound
            .unprotect_rtcp(packet)
            .map_err(SrtpError::from_libsrtp)
    }

    /// Forgets the outbound stream state of `ssrc` (a closed consumer), so the wildcard
    /// context does not grow without bound. A later packet of `ssrc` starts a new stream.
    pub fn remove_outbound_ssrc(&mut self, ssrc: u32) -> Result<(), SrtpError> {
        self.outbound
            .remove_stream(network_order(ssrc))
            .map_err(SrtpError::from_libsrtp)
    }

    /// Forgets the inbound stream state of `ssrc` (a closed producer).
    pub fn remove_inbound_ssrc(&mut self, ssrc: u32) -> Result<(), SrtpError> {
        self.inbound
            .remove_stream(network_order(ssrc))
            .map_err(SrtpError::from_libsrtp)
    }

    /// Whether the context of one direction holds a stream for `ssrc`.
    pub fn has_stream(&mut self, ssrc: u32, outbound: bool) -> bool {
        let session = if outbound {
            &mut self.outbound
        } else {
            &mut self.inbound
        };
        // Unlike `srtp_remove_stream`, `srtp_get_stream_roc` takes the host-order SSRC.
        session.get_stream_roc(ssrc).is_ok()
    }
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// libsrtp keys its streams by the SSRC as it sits in the packet, so the stream API takes it
/// in network byte order (`srtp.h`, `srtp_remove_stream`).
fn network_order(ssrc: u32) -> u32 {
    u32::from_ne_bytes(ssrc.to_be_bytes())
}

/// The libsrtp crypto policy of a profile, the same for SRTP and SRTCP (RFC 5764 §4.1.2:
/// `SRTCP_auth_tag_length` equals the SRTP one; RFC 7714 §14.2 for the AEAD profiles, whose
/// tag is 16 bytes).
fn crypto_policy(profile: SrtpProfile) -> CryptoPolicy {
    match profile {
        SrtpProfile::AeadAes256Gcm => CryptoPolicy::aes_gcm_256_16_auth(),
        SrtpProfile::AeadAes128Gcm => CryptoPolicy::aes_gcm_128_16_auth(),
        SrtpProfile::Aes128CmHmacSha1_80 => CryptoPolicy::aes_cm_128_hmac_sha1_80(),
    }
}

/// Creates a libsrtp context with a wildcard-SSRC template. libsrtp reads the master key as
/// `key || salt` and derives its session keys at creation, keeping no pointer to it.
fn context(
    profile: SrtpProfile,
    keys: &SrtpKeyMaterial,
    outbound: bool,
) -> Result<Session, SrtpError> {
    if keys.key.len() != profile.key_len() || keys.salt.len() != profile.salt_len() {
        return Err(SrtpError::BadKeyLength);
    }
    let key = keys.key_and_salt();
    let policy = StreamPolicy {
        rtp: crypto_policy(profile),
        rtcp: crypto_policy(profile),
        key: &key,
        window_size: REPLAY_WINDOW,
        // A NACKed packet resent without RTX keeps its sequence number (RFC 4588 §1): the
        // outbound context must accept it again, with the same payload. Inbound replays
        // are still rejected.
        allow_repeat_tx: outbound,
        encrypt_extension_headers: &[],
    };
    if outbound {
        Session::with_outbound_template(policy)
    } else {
        Session::with_inbound_template(policy)
    }
    .map_err(SrtpError::from_libsrtp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn synthetic_keys_round_trip() {
        assert_send::<SrtpSession>();
        let profile = SrtpProfile::Aes128CmHmacSha1_80;
        let a = SrtpKeyMaterial {
            key: vec![1; 16],
            salt: vec![2; 14],
        };
        let b = SrtpKeyMaterial {
            key: vec![3; 16],
            salt: vec![4; 14],
        };
        let mut tx = SrtpSession::new(profile, &a, &b).unwrap();
        let mut rx = SrtpSession::new(profile, &b, &a).unwrap();
        let plain = [0x80, 0x60, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, 0xaa, 0xbb].to_vec();
        let mut packet = plain.clone();
        tx.protect_rtp(&mut packet).unwrap();
        // 80-bit tag (RFC 3711 §8.2).
        assert_eq!(packet.len(), plain.len() + 10);
        rx.unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet, plain);
        assert!(tx.has_stream(7, true) && rx.has_stream(7, false));
        assert!(!tx.has_stream(7, false) && !tx.has_stream(8, true));
        tx.remove_outbound_ssrc(7).unwrap();
        rx.remove_inbound_ssrc(7).unwrap();
        assert!(!tx.has_stream(7, true) && !rx.has_stream(7, false));
        assert_eq!(
            tx.remove_outbound_ssrc(7),
            Err(SrtpError::Libsrtp("NO_CTX"))
        );
        // The stream is created again from the template, the replay state reset.
        let mut packet = plain.clone();
        tx.protect_rtp(&mut packet).unwrap();
        rx.unprotect_rtp(&mut packet).unwrap();
        assert_eq!(packet, plain);
    }
}
