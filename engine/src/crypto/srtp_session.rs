//! SRTP and SRTCP protection of one WebRTC transport (RFC 3711, AEAD per RFC 7714) over
//! libsrtp2, keyed by the DTLS-SRTP exporter (RFC 5764 §4.2).
//!
//! An inbound libsrtp context unprotects everything the peer sends; its wildcard SSRC
//! policy (`ssrc_any_inbound`) creates a stream for every new SSRC on first use (the
//! caller decrypts only SSRCs it routes). What we send is protected by a context per SSRC
//! ([`OutboundStreams`]): a transport carries many (every consumer, RTX, probation).
//!
//! Packets are processed in place in a `Vec<u8>`: protecting appends the tag (the vector
//! grows by at most `SRTP_MAX_TRAILER_LEN`), unprotecting truncates. On any error libsrtp
//! leaves the packet undefined and the vector is emptied: the caller drops it.

use std::fmt;

use srtp::Session;

use super::error::SrtpError;
use super::srtp_outbound::{OutboundStreams, stream_policy};
use super::srtp_profile::{SrtpKeyMaterial, SrtpProfile};

/// The inbound SRTP context and the outbound ones.
pub struct SrtpSession {
    profile: SrtpProfile,
    inbound: Session,
    outbound: OutboundStreams,
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
            inbound: inbound_context(profile, remote_keys)?,
            outbound: OutboundStreams::new(profile, checked_key(profile, local_keys)?),
        })
    }

    /// The profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// RTP to SRTP in place (RFC 3711 §3.3, RFC 7714 §8).
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.outbound.protect_rtp(packet)
    }

    /// SRTP to RTP in place; a bad tag, a replay or a malformed packet is an error.
    pub fn unprotect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.inbound
            .unprotect(packet)
            .map_err(SrtpError::from_libsrtp)
    }

    /// RTCP to SRTCP in place (RFC 3711 §3.4, RFC 7714 §9).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.outbound.protect_rtcp(packet)
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
        self.outbound.remove(ssrc)
    }

    /// Forgets the inbound stream state of `ssrc` (a closed producer).
    pub fn remove_inbound_ssrc(&mut self, ssrc: u32) -> Result<(), SrtpError> {
        self.inbound
            .remove_stream(network_order(ssrc))
            .map_err(SrtpError::from_libsrtp)
    }

    /// Whether the context of one direction holds a stream for `ssrc`.
    pub fn has_stream(&mut self, ssrc: u32, outbound: bool) -> bool {
        if outbound {
            return self.outbound.contains(ssrc);
        }
        // Unlike `srtp_remove_stream`, `srtp_get_stream_roc` takes the host-order SSRC.
        self.inbound.get_stream_roc(ssrc).is_ok()
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

/// Key then salt, checked against the profile's lengths.
fn checked_key(profile: SrtpProfile, keys: &SrtpKeyMaterial) -> Result<Vec<u8>, SrtpError> {
    if keys.key.len() != profile.key_len() || keys.salt.len() != profile.salt_len() {
        return Err(SrtpError::BadKeyLength);
    }
    Ok(keys.key_and_salt())
}

/// The inbound libsrtp context, with a wildcard-SSRC template.
fn inbound_context(profile: SrtpProfile, keys: &SrtpKeyMaterial) -> Result<Session, SrtpError> {
    let key = checked_key(profile, keys)?;
    Session::with_inbound_template(stream_policy(profile, &key, false))
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

    #[test]
    fn interleaved_ssrcs_round_trip_with_a_context_each() {
        let profile = SrtpProfile::AeadAes256Gcm;
        let keys = |k| SrtpKeyMaterial {
            key: vec![k; 32],
            salt: vec![k + 1; 12],
        };
        let mut tx = SrtpSession::new(profile, &keys(1), &keys(5)).unwrap();
        let mut rx = SrtpSession::new(profile, &keys(5), &keys(1)).unwrap();
        for round in 0..300u16 {
            for ssrc in [11u32, 1234, 7, 99_999] {
                let mut rtp = vec![0x80, 96];
                rtp.extend_from_slice(&round.to_be_bytes());
                rtp.extend_from_slice(&[0, 0, 0, 1]);
                rtp.extend_from_slice(&ssrc.to_be_bytes());
                rtp.extend_from_slice(&[round as u8; 40]);
                let plain = rtp.clone();
                tx.protect_rtp(&mut rtp).unwrap();
                rx.unprotect_rtp(&mut rtp).unwrap();
                assert_eq!(rtp, plain);
                if round % 50 == 0 {
                    // An SR of the same SSRC through the same context.
                    let mut rtcp = vec![0x80, 200, 0, 6];
                    rtcp.extend_from_slice(&ssrc.to_be_bytes());
                    rtcp.extend_from_slice(&[0; 20]);
                    let plain = rtcp.clone();
                    tx.protect_rtcp(&mut rtcp).unwrap();
                    rx.unprotect_rtcp(&mut rtcp).unwrap();
                    assert_eq!(rtcp, plain);
                }
            }
        }
        assert!(tx.has_stream(1234, true) && !tx.has_stream(1235, true));
        let mut short = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0];
        assert!(tx.protect_rtp(&mut short).is_err());
    }

    #[test]
    fn outbound_ssrcs_are_bounded() {
        let profile = SrtpProfile::Aes128CmHmacSha1_80;
        let keys = SrtpKeyMaterial {
            key: vec![1; 16],
            salt: vec![2; 14],
        };
        let mut tx = SrtpSession::new(profile, &keys, &keys).unwrap();
        let packet = |ssrc: u32| {
            let mut p = vec![0x80, 96, 0, 1, 0, 0, 0, 1];
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.push(0);
            p
        };
        for ssrc in 0..crate::crypto::MAX_OUTBOUND_SSRCS as u32 {
            tx.protect_rtp(&mut packet(ssrc)).unwrap();
        }
        let extra = crate::crypto::MAX_OUTBOUND_SSRCS as u32;
        assert_eq!(
            tx.protect_rtp(&mut packet(extra)),
            Err(SrtpError::TooManyStreams)
        );
        tx.remove_outbound_ssrc(3).unwrap();
        tx.protect_rtp(&mut packet(extra)).unwrap();
    }
}
