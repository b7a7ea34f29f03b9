//! Which of a transport's producers an RTP packet is for (mediasoup's `RtpListener`): by
//! its SSRC, signalled or learnt, or else by its MID header extension (RFC 8843 §15,
//! BUNDLE: the MID names the m-line, so a stream whose SSRC was never signalled, such as a
//! simulcast layer named by RID, RFC 8852, still finds its producer). Finding the
//! producer reads only the RTP header, which SRTP leaves in the clear (RFC 3711 §3.1), so
//! a packet nobody wants is dropped before it costs a decryption.
//!
//! The producer decides which of its encodings the packet is; an SSRC it learns that way
//! is bound here only once the packet authenticated ([`RtpListener::bind`]).

use std::collections::HashMap;

use kolabmeet_net::rtp::RtpHeader;

/// Why a producer's SSRCs or MID cannot be listened for on this transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerError {
    /// Another producer of the transport uses the SSRC.
    #[error("ssrc {0} already in use")]
    SsrcInUse(u32),
    /// Another producer of the transport uses the MID.
    #[error("mid {0} already in use")]
    MidInUse(String),
}

/// A producer's MID as the listener matches it: the value and the header extension id
/// its sender writes it with.
#[derive(Debug, Clone)]
struct MidEntry<P> {
    mid: Vec<u8>,
    ext: u8,
    producer: P,
}

/// SSRC and MID tables of one transport; `P` names a producer.
#[derive(Debug, Clone)]
pub struct RtpListener<P> {
    ssrcs: HashMap<u32, P>,
    mids: Vec<MidEntry<P>>,
    producers: Vec<P>,
}

impl<P> Default for RtpListener<P> {
    fn default() -> Self {
        RtpListener {
            ssrcs: HashMap::new(),
            mids: Vec::new(),
            producers: Vec::new(),
        }
    }
}

impl<P: Copy + PartialEq> RtpListener<P> {
    /// Listens for a new producer: its signalled SSRCs (media and RTX) and its MID with
    /// the extension id it is sent with. Nothing changes when one is taken already.
    pub fn add(
        &mut self,
        producer: P,
        ssrcs: &[u32],
        mid: Option<(&str, u8)>,
    ) -> Result<(), ListenerError> {
        if let Some(ssrc) = ssrcs.iter().find(|s| self.ssrcs.contains_key(s)) {
            return Err(ListenerError::SsrcInUse(*ssrc));
        }
        if let Some((mid, _)) = mid
            && self.mids.iter().any(|e| e.mid == mid.as_bytes())
        {
            return Err(ListenerError::MidInUse(mid.to_owned()));
        }
        for &ssrc in ssrcs {
            self.ssrcs.insert(ssrc, producer);
        }
        if let Some((mid, ext)) = mid {
            self.mids.push(MidEntry {
                mid: mid.as_bytes().to_vec(),
                ext,
                producer,
            });
        }
        self.producers.push(producer);
        Ok(())
    }

    /// Stops listening for a producer (closed); returns the SSRCs it had.
    pub fn remove(&mut self, producer: P) -> Vec<u32> {
        let ssrcs: Vec<u32> = self
            .ssrcs
            .iter()
            .filter(|(_, p)| **p == producer)
            .map(|(s, _)| *s)
            .collect();
        for s in &ssrcs {
            self.ssrcs.remove(s);
        }
        self.mids.retain(|e| e.producer != producer);
        self.producers.retain(|p| *p != producer);
        ssrcs
    }

    /// The producer of a packet whose header is `header` (over `packet`): by SSRC, else
    /// by MID. The second value says whether the SSRC is bound already.
    pub fn find(&self, header: &RtpHeader, packet: &[u8]) -> Option<(P, bool)> {
        if let Some(p) = self.ssrcs.get(&header.ssrc) {
            return Some((*p, true));
        }
        self.mids
            .iter()
            .find(|e| header.extension(packet, e.ext) == Some(&e.mid[..]))
            .map(|e| (e.producer, false))
    }

    /// The producer whose SSRC (signalled or bound) is `ssrc`.
    pub fn producer_of_ssrc(&self, ssrc: u32) -> Option<P> {
        self.ssrcs.get(&ssrc).copied()
    }

    /// Binds an SSRC the producer learnt from an authenticated packet.
    pub fn bind(&mut self, ssrc: u32, producer: P) {
        self.ssrcs.entry(ssrc).or_insert(producer);
    }

    /// Producers listened for.
    pub fn producers(&self) -> &[P] {
        &self.producers
    }

    /// SSRC and MID entries (table sizes).
    pub fn len(&self) -> usize {
        self.ssrcs.len() + self.mids.len()
    }

    /// Whether no entry is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
