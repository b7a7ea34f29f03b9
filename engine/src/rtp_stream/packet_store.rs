//! The router's packets of one producer stream, kept for retransmission: a receiver's
//! Generic NACK (RFC 4585 §6.2.1) is answered by writing the packet again for its consumer
//! (over RTX, RFC 4588). One copy per packet serves every consumer of the stream: a
//! consumer's [`RetransmissionBuffer`](super::RetransmissionBuffer) keeps only a
//! [`StoredRef`] to it, so forwarding to a consumer costs no reference count and no
//! allocation. Buffers of packets that leave the store are recycled: the steady state
//! allocates nothing per packet.
//!
//! Packets are kept by the stream's extended sequence number (RFC 3550 §A.1), oldest
//! first, within the same bounds as a consumer's buffer (mediasoup's
//! `RtpRetransmissionBuffer`: 2,500 packets, 2 s for video): a consumer never asks for
//! what it would not keep itself.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::retransmission_buffer::{MAX_PACKET_LEN, Retained, RetransmissionBufferConfig};
use super::seq_num::SeqUnwrapper;

/// Recycled buffers kept at most (a burst's high-water mark is not held on to).
const MAX_FREE: usize = 64;

/// Where a consumer's packet lies in its producer's stores: which stream, which number,
/// and what the consumer made of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRef {
    /// The producer stream (encoding index) whose store holds it.
    pub store: u8,
    /// The low 32 bits of its extended sequence number in that stream: a store spans
    /// at most a few thousand numbers, so they name one packet (and keep a consumer's
    /// retransmission slot small; see [`RetransmissionBuffer`](super::RetransmissionBuffer)).
    pub seq: u32,
    /// The RTP timestamp the consumer sent it with.
    pub timestamp: u32,
    /// Its length.
    pub len: u16,
}

impl Retained for StoredRef {
    fn packet_len(&self) -> usize {
        usize::from(self.len)
    }
}

#[derive(Debug)]
struct Slot {
    stored_at: Instant,
    data: Vec<u8>,
}

/// The packets of one stream; see the module documentation.
#[derive(Debug)]
pub struct PacketStore {
    config: RetransmissionBufferConfig,
    seqs: SeqUnwrapper,
    /// Slot `i` holds extended number `oldest + i`; when non-empty, the first and last
    /// slots are occupied.
    slots: VecDeque<Option<Slot>>,
    oldest: u64,
    stored: usize,
    free: Vec<Vec<u8>>,
}

impl PacketStore {
    /// An empty store with a consumer buffer's limits.
    pub fn new(config: RetransmissionBufferConfig) -> Self {
        PacketStore {
            config,
            seqs: SeqUnwrapper::new(),
            slots: VecDeque::new(),
            oldest: 0,
            stored: 0,
            free: Vec::new(),
        }
    }

    /// Keeps a copy of `packet` (sequence number `seq`) received now; its extended
    /// number, or `None` when it is too large or too old to keep. A duplicate keeps the
    /// first copy.
    pub fn insert(&mut self, now: Instant, seq: u16, packet: &[u8]) -> Option<u64> {
        if packet.len() > MAX_PACKET_LEN {
            return None;
        }
        let ext = self.seqs.unwrap(seq);
        self.expire(now);
        let max = usize::from(self.config.max_items.max(1));
        if self.slots.is_empty() {
            self.oldest = ext;
        } else if ext < self.oldest {
            // Older than the oldest kept: only if it fits.
            let dist = usize::try_from(self.oldest - ext).unwrap_or(usize::MAX);
            if self.slots.len().saturating_add(dist) > max {
                return None;
            }
            for _ in 1..dist {
                self.slots.push_front(None);
            }
            self.slots.push_front(None);
            self.oldest = ext;
        } else {
            let idx = usize::try_from(ext - self.oldest).unwrap_or(usize::MAX);
            if idx >= self.slots.len() {
                // Newer: make room (the oldest go first), then extend to it.
                let gap = idx - self.slots.len();
                if gap >= max {
                    self.clear();
                    self.oldest = ext;
                } else {
                    while !self.slots.is_empty() && self.slots.len() + gap + 1 > max {
                        self.remove_oldest();
                    }
                    if self.slots.is_empty() {
                        self.oldest = ext;
                    } else {
                        self.slots.extend(std::iter::repeat_with(|| None).take(gap));
                    }
                }
            }
        }
        let idx = usize::try_from(ext - self.oldest).unwrap_or(usize::MAX);
        if idx >= self.slots.len() {
            self.slots.push_back(None);
        }
        let slot = self.slots.get_mut(idx)?;
        if slot.is_none() {
            let mut data = self.free.pop().unwrap_or_default();
            data.clear();
            data.extend_from_slice(packet);
            *slot = Some(Slot {
                stored_at: now,
                data,
            });
            self.stored += 1;
        }
        Some(ext)
    }

    /// The packet whose extended number ends in the 32 bits `seq` ([`StoredRef::seq`]),
    /// if it is still kept. The store spans at most `max_items` (a `u16`) numbers, so
    /// the low 32 bits are unambiguous.
    pub fn get(&self, seq: u32) -> Option<&[u8]> {
        let idx = seq.wrapping_sub(self.oldest as u32) as usize;
        self.slots.get(idx)?.as_ref().map(|s| &s.data[..])
    }

    /// Packets kept.
    pub fn len(&self) -> usize {
        self.stored
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.stored == 0
    }

    /// Forgets everything (the buffers are kept for reuse, up to a bound).
    pub fn clear(&mut self) {
        while !self.slots.is_empty() {
            self.remove_oldest();
        }
    }

    /// Drops packets older than the maximum age from the front.
    fn expire(&mut self, now: Instant) {
        let max_age: Duration = self.config.max_age;
        while let Some(Some(front)) = self.slots.front() {
            if now.saturating_duration_since(front.stored_at) < max_age {
                break;
            }
            self.remove_oldest();
        }
    }

    /// Removes the oldest packet and the empty slots after it.
    fn remove_oldest(&mut self) {
        if let Some(Some(slot)) = self.slots.pop_front() {
            self.stored -= 1;
            if self.free.len() < MAX_FREE {
                self.free.push(slot.data);
            }
        }
        self.oldest += 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.oldest += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn store(max_items: u16) -> PacketStore {
        PacketStore::new(RetransmissionBufferConfig {
            max_items,
            ..RetransmissionBufferConfig::video()
        })
    }

    #[test]
    fn keeps_packets_by_extended_number_across_the_wrap() {
        let t0 = Instant::now();
        let mut s = store(100);
        let mut ext = Vec::new();
        for seq in [65534u16, 65535, 0, 1] {
            ext.push(s.insert(t0, seq, &[seq as u8; 3]).unwrap());
        }
        assert_eq!(ext[1] + 1, ext[2], "continuous across the wrap");
        assert_eq!(s.get(ext[2] as u32), Some(&[0u8; 3][..]));
        assert_eq!(s.get((ext[3] + 1) as u32), None);
        // A duplicate keeps the first copy; a late one fills its gap.
        assert_eq!(s.insert(t0, 0, b"x"), Some(ext[2]));
        assert_eq!(s.get(ext[2] as u32), Some(&[0u8; 3][..]));
        let e5 = s.insert(t0, 5, b"5").unwrap();
        let e3 = s.insert(t0, 3, b"3").unwrap();
        assert_eq!(
            (s.get(e3 as u32), s.get((e3 + 1) as u32), s.get(e5 as u32)),
            (Some(&b"3"[..]), None, Some(&b"5"[..]))
        );
        assert_eq!(s.len(), 6);
        assert_eq!(s.insert(t0, 9, &[0; MAX_PACKET_LEN + 1]), None);
    }

    #[test]
    fn bounded_by_count_and_age_with_recycled_buffers() {
        let t0 = Instant::now();
        let mut s = store(50);
        for i in 0..500u16 {
            s.insert(t0 + ms(u64::from(i)), i, b"p").unwrap();
            assert!(s.slots.len() <= 50);
        }
        assert_eq!(s.len(), 50);
        assert!(s.free.len() <= MAX_FREE);
        // 2 s later everything has expired, by the next insertion.
        let e = s.insert(t0 + ms(3000), 600, b"q").unwrap();
        assert_eq!((s.len(), s.get(e as u32)), (1, Some(&b"q"[..])));
        // A jump larger than the store clears it; a packet far older than it is refused.
        let e = s.insert(t0 + ms(3000), 30_000, b"j").unwrap();
        assert_eq!((s.len(), s.get(e as u32)), (1, Some(&b"j"[..])));
        assert_eq!(s.insert(t0 + ms(3000), 29_000, b"o"), None);
        s.clear();
        assert!(s.is_empty());
    }
}
