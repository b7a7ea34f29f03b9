//! Which of a transport's producers an RTP packet is for (mediasoup's `RtpListener`): by
//! its SSRC, signalled or learnt, or else by its MID header extension (RFC 8843 §15,
//! BUNDLE: the MID names the m-line, so a stream whose SSRC was never signalled, such as a
//! simulcast layer named by RID, RFC 8852, still finds its producer). Finding the
//! producer reads only the RTP header, which SRTP leaves in the clear (RFC 3711 §3.1), so
//! a packet nobody wants is dropped before it costs a decryption.
//!
//! An SSRC the listener knows (signalled, or learnt and bound) names the producer and its
//! encoding at once ([`Found::Known`]): the common packet costs one lookup. Only a packet
//! found by its MID goes to the producer to be told which encoding it is (by RID), and the
//! SSRC it learns that way is bound here once the packet authenticated
//! ([`RtpListener::bind`]).

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

/// Which encoding of its producer an SSRC is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRef {
    /// The encoding (simulcast spatial layer) index.
    pub stream: usize,
    /// The SSRC is the encoding's RTX stream.
    pub rtx: bool,
}

/// What the listener knows of a packet from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<P> {
    /// Its SSRC is known: the producer and the encoding.
    Known(P, StreamRef),
    /// Its SSRC is not known, its MID names the producer: the producer must say which
    /// encoding it is.
    ByMid(P),
}

/// SSRC and MID tables of one transport; `P` names a producer.
#[derive(Debug, Clone)]
pub struct RtpListener<P> {
    ssrcs: HashMap<u32, (P, StreamRef)>,
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
    /// Listens for a new producer: its signalled SSRCs (media and RTX) with the encoding
    /// each is, and its MID with the extension id it is sent with. Nothing changes when
    /// one is taken already; an SSRC listed twice is the encoding listed first.
    pub fn add(
        &mut self,
        producer: P,
        ssrcs: &[(u32, StreamRef)],
        mid: Option<(&str, u8)>,
    ) -> Result<(), ListenerError> {
        if let Some((ssrc, _)) = ssrcs.iter().find(|(s, _)| self.ssrcs.contains_key(s)) {
            return Err(ListenerError::SsrcInUse(*ssrc));
        }
        if let Some((mid, _)) = mid
            && self.mids.iter().any(|e| e.mid == mid.as_bytes())
        {
            return Err(ListenerError::MidInUse(mid.to_owned()));
        }
        for &(ssrc, stream) in ssrcs {
            self.ssrcs.entry(ssrc).or_insert((producer, stream));
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
            .filter(|(_, (p, _))| *p == producer)
            .map(|(s, _)| *s)
            .collect();
        for s in &ssrcs {
            self.ssrcs.remove(s);
        }
        self.mids.retain(|e| e.producer != producer);
        self.producers.retain(|p| *p != producer);
        ssrcs
    }

    /// What a packet whose header is `header` (over `packet`) is for: by SSRC the
    /// producer and encoding, else by MID the producer.
    pub fn find(&self, header: &RtpHeader, packet: &[u8]) -> Option<Found<P>> {
        if let Some((p, stream)) = self.ssrcs.get(&header.ssrc) {
            return Some(Found::Known(*p, *stream));
        }
        self.mids
            .iter()
            .find(|e| header.extension(packet, e.ext) == Some(&e.mid[..]))
            .map(|e| Found::ByMid(e.producer))
    }

    /// The producer whose SSRC (signalled or bound) is `ssrc`.
    pub fn producer_of_ssrc(&self, ssrc: u32) -> Option<P> {
        self.ssrcs.get(&ssrc).map(|(p, _)| *p)
    }

    /// Binds an SSRC the producer learnt from an authenticated packet to its encoding.
    pub fn bind(&mut self, ssrc: u32, producer: P, stream: StreamRef) {
        self.ssrcs.entry(ssrc).or_insert((producer, stream));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An RTP header with `ssrc` and, when given, a one-byte MID extension (id 1).
    pub(crate) fn packet(ssrc: u32, mid: Option<&[u8]>) -> Vec<u8> {
        let mut p = vec![0x80, 96, 0, 1, 0, 0, 0, 1];
        p.extend_from_slice(&ssrc.to_be_bytes());
        if let Some(mid) = mid {
            p[0] |= 0x10;
            let words = (1 + mid.len()).div_ceil(4);
            p.extend_from_slice(&[0xbe, 0xde, 0, words as u8]);
            p.push(0x10 | (mid.len() as u8 - 1));
            p.extend_from_slice(mid);
            p.resize(16 + words * 4, 0);
        }
        p.extend_from_slice(&[1, 2, 3, 4]);
        p
    }

    fn find(l: &RtpListener<u8>, p: &[u8]) -> Option<Found<u8>> {
        let header = RtpHeader::parse(p).expect("a valid header");
        l.find(&header, p)
    }

    #[test]
    fn a_known_ssrc_names_producer_and_encoding_a_mid_only_the_producer() {
        let mut l = RtpListener::default();
        let low = StreamRef {
            stream: 0,
            rtx: false,
        };
        let low_rtx = StreamRef {
            stream: 0,
            rtx: true,
        };
        l.add(7, &[(1111, low), (2222, low_rtx)], Some(("0", 1)))
            .unwrap();
        assert_eq!(find(&l, &packet(1111, None)), Some(Found::Known(7, low)));
        assert_eq!(
            find(&l, &packet(2222, None)),
            Some(Found::Known(7, low_rtx))
        );
        // A simulcast layer named by RID only: the MID finds the producer.
        assert_eq!(find(&l, &packet(3333, Some(b"0"))), Some(Found::ByMid(7)));
        assert_eq!(find(&l, &packet(3333, Some(b"1"))), None);
        assert_eq!(find(&l, &packet(3333, None)), None);
        // Once learnt from an authenticated packet, one lookup.
        let high = StreamRef {
            stream: 2,
            rtx: false,
        };
        l.bind(3333, 7, high);
        assert_eq!(find(&l, &packet(3333, None)), Some(Found::Known(7, high)));
        // Another producer may not take a used SSRC; closing frees them all.
        assert_eq!(
            l.add(8, &[(1111, low)], None),
            Err(ListenerError::SsrcInUse(1111))
        );
        let mut freed = l.remove(7);
        freed.sort_unstable();
        assert_eq!(freed, [1111, 2222, 3333]);
        assert!(l.is_empty());
    }
}
