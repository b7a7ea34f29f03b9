//! What the worker sent on one transport, by transport-wide sequence number
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2): the send time and size of each
//! packet, so that feedback naming its number can be turned into delay and rate.
//!
//! Written once for every packet a transport sends, so its slots are small (16 bytes: the
//! number's low 32 bits, the send time in microseconds, the size, the probe cluster and
//! flags): the ring of a transport is 64 KB, and the forwarding path touches a new cache
//! line every fourth packet rather than every packet.

use std::time::{Duration, Instant};

/// Packets remembered (about 5 s at 800 packets/s, 0.4 s at 10,000: feedback comes every
/// 50-100 ms); older ones fall out. Allocated with the first packet sent, so a transport
/// that sends nothing with a transport-wide number costs nothing here.
const CAPACITY: usize = 4096;

/// One packet sent, as [`SentHistory::get`] gives it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPacket {
    /// The extended (unwrapped) transport-wide sequence number.
    pub seq: i64,
    /// When it was sent.
    pub sent: Instant,
    /// Its size on the wire, in bytes (at most 65,535 counted).
    pub size: u32,
    /// Whether feedback already reported it (a later report of it is ignored).
    pub reported: bool,
    /// The probe cluster it belongs to, if it is probe padding.
    pub cluster: Option<u32>,
}

const USED: u8 = 1;
const REPORTED: u8 = 2;
const PROBE: u8 = 4;

/// One slot of the ring.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The extended number's low 32 bits (the ring holds far fewer).
    seq: u32,
    /// Microseconds since the history's epoch, wrapping (read back against the newest).
    sent_us: u32,
    cluster: u32,
    size: u16,
    flags: u8,
}

/// A ring of the last [`CAPACITY`] packets sent.
#[derive(Debug, Default)]
pub struct SentHistory {
    ring: Vec<Slot>,
    highest: Option<i64>,
    /// The first send time (the epoch of `sent_us`), and the newest send time with its
    /// `sent_us`: every packet still in the ring was sent a little before it.
    epoch: Option<Instant>,
    newest: Option<(Instant, u32)>,
}

impl SentHistory {
    /// Records a packet sent with transport-wide number `seq`; returns its extended number.
    pub fn on_sent(&mut self, now: Instant, seq: u16, size: usize, cluster: Option<u32>) -> i64 {
        let ext = self.extend(seq).unwrap_or(i64::from(seq));
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        if self.ring.is_empty() {
            self.ring = vec![Slot::default(); CAPACITY];
        }
        let epoch = *self.epoch.get_or_insert(now);
        let sent_us = now.saturating_duration_since(epoch).as_micros() as u32;
        if self.newest.is_none_or(|(t, _)| now >= t) {
            self.newest = Some((now, sent_us));
        }
        self.ring[slot(ext)] = Slot {
            seq: ext as u32,
            sent_us,
            cluster: cluster.unwrap_or(0),
            size: u16::try_from(size).unwrap_or(u16::MAX),
            flags: USED | if cluster.is_some() { PROBE } else { 0 },
        };
        ext
    }

    /// The extended number closest to the highest sent that ends in `seq`.
    pub fn extend(&self, seq: u16) -> Option<i64> {
        let h = self.highest?;
        let diff = i64::from(seq.wrapping_sub(h as u16) as i16);
        Some(h + diff)
    }

    /// The packet with extended number `seq`, if still remembered.
    pub fn get(&self, seq: i64) -> Option<SentPacket> {
        let s = self.ring.get(slot(seq))?;
        if s.flags & USED == 0 || s.seq != seq as u32 || self.highest.is_none_or(|h| seq > h) {
            return None;
        }
        let (newest, newest_us) = self.newest?;
        let before = Duration::from_micros(u64::from(newest_us.wrapping_sub(s.sent_us)));
        Some(SentPacket {
            seq,
            sent: newest.checked_sub(before).unwrap_or(newest),
            size: u32::from(s.size),
            reported: s.flags & REPORTED != 0,
            cluster: (s.flags & PROBE != 0).then_some(s.cluster),
        })
    }

    /// Marks the packet with extended number `seq` as reported by feedback.
    pub fn mark_reported(&mut self, seq: i64) {
        if let Some(s) = self.ring.get_mut(slot(seq))
            && s.flags & USED != 0
            && s.seq == seq as u32
        {
            s.flags |= REPORTED;
        }
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
        assert_eq!(h.on_sent(t0, 0, 100, Some(7)), 65536);
        assert_eq!(h.extend(65535), Some(65535));
        let p = h.get(65536).unwrap();
        assert_eq!((p.size, p.cluster, p.reported), (100, Some(7), false));
        h.mark_reported(65536);
        assert!(h.get(65536).unwrap().reported);
        for i in 1..=CAPACITY as u16 {
            h.on_sent(t0, i, 10, None);
        }
        assert!(h.get(65534).is_none(), "overwritten");
        assert!(h.get(i64::MIN).is_none() && h.get(i64::MAX).is_none());
    }

    #[test]
    fn send_times_come_back_to_the_microsecond_across_the_wrap_of_their_counter() {
        let t0 = Instant::now();
        let mut h = SentHistory::default();
        // 80 minutes in: the 32-bit microsecond counter wrapped once.
        let late = t0 + Duration::from_secs(80 * 60);
        h.on_sent(t0, 1, 10, None);
        h.on_sent(late, 2, 10, None);
        h.on_sent(late + Duration::from_micros(1500), 3, 1500, None);
        assert_eq!(h.get(2).unwrap().sent, late);
        assert_eq!(h.get(3).unwrap().sent, late + Duration::from_micros(1500));
        assert_eq!(h.get(3).unwrap().size, 1500);
        // A size beyond what is counted.
        h.on_sent(late, 4, 100_000, None);
        assert_eq!(h.get(4).unwrap().size, 65_535);
    }
}
