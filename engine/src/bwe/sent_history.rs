//! What the worker sent on one transport, by transport-wide sequence number
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2): the send time and size of each
//! packet, so that feedback naming its number can be turned into delay and rate.

use std::time::Instant;

/// Packets remembered (about 5 s at 800 packets/s, 0.4 s at 10,000: feedback comes every
/// 50-100 ms); older ones fall out. 48 bytes each, allocated with the first packet sent,
/// so a transport that sends nothing with a transport-wide number costs nothing here.
const CAPACITY: usize = 4096;

/// One packet sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPacket {
    /// The extended (unwrapped) transport-wide sequence number.
    pub seq: i64,
    /// When it was sent.
    pub sent: Instant,
    /// Its size on the wire, in bytes.
    pub size: u32,
    /// Whether feedback already reported it (a later report of it is ignored).
    pub reported: bool,
    /// The probe cluster it belongs to, if it is probe padding.
    pub cluster: Option<u32>,
}

/// A ring of the last [`CAPACITY`] packets sent.
#[derive(Debug, Default)]
pub struct SentHistory {
    ring: Vec<Option<SentPacket>>,
    highest: Option<i64>,
}

impl SentHistory {
    /// Records a packet sent with transport-wide number `seq`; returns its extended number.
    pub fn on_sent(&mut self, now: Instant, seq: u16, size: usize, cluster: Option<u32>) -> i64 {
        let ext = self.extend(seq).unwrap_or(i64::from(seq));
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        if self.ring.is_empty() {
            self.ring = vec![None; CAPACITY];
        }
        self.ring[slot(ext)] = Some(SentPacket {
            seq: ext,
            sent: now,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            reported: false,
            cluster,
        });
        ext
    }

    /// The extended number closest to the highest sent that ends in `seq`.
    pub fn extend(&self, seq: u16) -> Option<i64> {
        let h = self.highest?;
        let diff = i64::from(seq.wrapping_sub(h as u16) as i16);
        Some(h + diff)
    }

    /// The packet with extended number `seq`, if still remembered.
    pub fn get_mut(&mut self, seq: i64) -> Option<&mut SentPacket> {
        self.ring
            .get_mut(slot(seq))?
            .as_mut()
            .filter(|p| p.seq == seq)
    }

    /// The highest extended number sent.
    pub fn highest(&self) -> Option<i64> {
        self.highest
    }
}

fn slot(seq: i64) -> usize {
    seq.rem_euclid(CAPACITY as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_across_the_wrap_and_forgets_the_oldest() {
        let t0 = Instant::now();
        let mut h = SentHistory::default();
        assert_eq!(h.on_sent(t0, 65534, 100, None), 65534);
        assert_eq!(h.on_sent(t0, 65535, 100, None), 65535);
        assert_eq!(h.on_sent(t0, 0, 100, None), 65536);
        assert_eq!(h.extend(65535), Some(65535));
        assert_eq!(h.get_mut(65536).map(|p| p.size), Some(100));
        for i in 1..=CAPACITY as u16 {
            h.on_sent(t0, i, 10, None);
        }
        assert!(h.get_mut(65534).is_none(), "overwritten");
        assert!(h.get_mut(i64::MIN).is_none() && h.get_mut(i64::MAX).is_none());
    }
}
