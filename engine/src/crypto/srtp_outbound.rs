//! The outbound half of a transport's SRTP (RFC 3711, AEAD per RFC 7714): one libsrtp
//! context per SSRC we send.
//!
//! libsrtp 2 keeps a context's streams in a linked list that every `srtp_protect` walks
//! from the newest stream (`srtp_get_stream`). A receiver's transport sends a stream per
//! consumer, per RTX stream and the probation stream, so one shared context costs a walk
//! over cold memory on every packet, longer the bigger the room (and the probation
//! stream, created after the media, sits in front of all of it). Here every SSRC has a
//! context holding its stream alone. The context used last is kept in place (no memory
//! to load before libsrtp's own); the others are found by a scan of a dense array.
//!
//! An SSRC's RTP and RTCP go through its one context, so the packet and SRTCP indices are
//! kept per SSRC exactly as in a shared context; all contexts use the transport's one
//! master key, as a shared context does (the IV includes the SSRC, RFC 7714 §8.1).

use srtp::{Session, StreamPolicy};

use super::error::SrtpError;
use super::srtp_profile::SrtpProfile;

/// SSRCs one transport may send at most: every consumer's media and RTX streams, the
/// probation stream and RTCP-only senders. Our own SSRCs, so reaching it is a bug;
/// refusing beats growing without bound.
pub const MAX_OUTBOUND_SSRCS: usize = 4096;

/// Outbound contexts by SSRC; see the module docs.
pub(super) struct OutboundStreams {
    profile: SrtpProfile,
    /// The master key and salt, to create a context for a new SSRC.
    key: Vec<u8>,
    /// The context used last, and its SSRC.
    hot: Option<(u32, Session)>,
    /// The others.
    cold: Vec<(u32, Session)>,
}

impl OutboundStreams {
    /// No stream yet; `key` is the master key then salt (libsrtp's layout).
    pub(super) fn new(profile: SrtpProfile, key: Vec<u8>) -> Self {
        Self {
            profile,
            key,
            hot: None,
            cold: Vec::new(),
        }
    }

    /// RTP to SRTP in place.
    pub(super) fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        // The SSRC is bytes 8..12 of the header (RFC 3550 §5.1).
        let ssrc = read_ssrc(packet, 8)?;
        self.session(ssrc)?
            .protect(packet)
            .map_err(SrtpError::from_libsrtp)
    }

    /// RTCP to SRTCP in place; the context is the one of the first packet's sender SSRC
    /// (bytes 4..8, RFC 3550 §6.4), as libsrtp picks it.
    pub(super) fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let ssrc = read_ssrc(packet, 4)?;
        self.session(ssrc)?
            .protect_rtcp(packet)
            .map_err(SrtpError::from_libsrtp)
    }

    /// Drops the context of `ssrc`; a later packet of it starts a new one.
    pub(super) fn remove(&mut self, ssrc: u32) -> Result<(), SrtpError> {
        if self.hot.as_ref().is_some_and(|(s, _)| *s == ssrc) {
            self.hot = self.cold.pop();
            return Ok(());
        }
        let i = self
            .cold
            .iter()
            .position(|(s, _)| *s == ssrc)
            .ok_or(SrtpError::Libsrtp("NO_CTX"))?;
        self.cold.swap_remove(i);
        Ok(())
    }

    /// Whether a context for `ssrc` exists.
    pub(super) fn contains(&self, ssrc: u32) -> bool {
        self.hot.as_ref().is_some_and(|(s, _)| *s == ssrc)
            || self.cold.iter().any(|(s, _)| *s == ssrc)
    }

    /// The context of `ssrc`, created on first use; it becomes the hot one.
    fn session(&mut self, ssrc: u32) -> Result<&mut Session, SrtpError> {
        if self.hot.as_ref().is_none_or(|(s, _)| *s != ssrc) {
            let entry = match self.cold.iter().position(|(s, _)| *s == ssrc) {
                Some(i) => self.cold.swap_remove(i),
                None => (ssrc, self.create(ssrc)?),
            };
            if let Some(previous) = self.hot.replace(entry) {
                self.cold.push(previous);
            }
        }
        match self.hot.as_mut() {
            Some((_, session)) => Ok(session),
            None => Err(SrtpError::Libsrtp("NO_CTX")),
        }
    }

    /// A context with one stream, for `ssrc`.
    fn create(&self, ssrc: u32) -> Result<Session, SrtpError> {
        if self.cold.len() + 1 >= MAX_OUTBOUND_SSRCS {
            return Err(SrtpError::TooManyStreams);
        }
        let mut session = Session::new().map_err(SrtpError::from_libsrtp)?;
        // `srtp_add_stream` takes the SSRC in host order.
        session
            .add_stream(ssrc, stream_policy(self.profile, &self.key, true))
            .map_err(SrtpError::from_libsrtp)?;
        Ok(session)
    }
}

/// The big-endian SSRC at `at`, or the error libsrtp gives a packet too short for it.
fn read_ssrc(packet: &[u8], at: usize) -> Result<u32, SrtpError> {
    packet
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(SrtpError::Libsrtp("BAD_PARAM"))
}

/// Replay window, in packets: mediasoup's value. libsrtp's default (128, RFC 3711
/// §3.3.2's minimum is 64) is too small for video bursts reordered by the network, and
/// outbound it bounds how old a NACKed packet resent without RTX may be.
pub(super) const REPLAY_WINDOW: u64 = 1024;

/// The libsrtp policy of one direction, the same for SRTP and SRTCP (RFC 5764 §4.1.2:
/// `SRTCP_auth_tag_length` equals the SRTP one; RFC 7714 §14.2 for the AEAD profiles,
/// whose tag is 16 bytes). libsrtp derives its session keys from `key` (key then salt)
/// at creation and keeps no pointer to it.
pub(super) fn stream_policy(profile: SrtpProfile, key: &[u8], outbound: bool) -> StreamPolicy<'_> {
    let crypto = || match profile {
        SrtpProfile::AeadAes256Gcm => srtp::CryptoPolicy::aes_gcm_256_16_auth(),
        SrtpProfile::AeadAes128Gcm => srtp::CryptoPolicy::aes_gcm_128_16_auth(),
        SrtpProfile::Aes128CmHmacSha1_80 => srtp::CryptoPolicy::aes_cm_128_hmac_sha1_80(),
    };
    StreamPolicy {
        rtp: crypto(),
        rtcp: crypto(),
        key,
        window_size: REPLAY_WINDOW,
        // A NACKed packet resent without RTX keeps its sequence number (RFC 4588 §1): the
        // outbound context must accept it again, with the same payload. Inbound replays
        // are still rejected.
        allow_repeat_tx: outbound,
        encrypt_extension_headers: &[],
    }
}
