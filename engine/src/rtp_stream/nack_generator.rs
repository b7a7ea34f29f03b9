//! Loss detection on a received RTP stream and scheduling of Generic NACKs
//! (RFC 4585 §6.2.1) towards its sender, after mediasoup's `RTC::NackGenerator`.
//!
//! Every received packet's sequence number is fed in. A packet newer than the newest
//! seen opens a gap: the missing numbers enter the NACK list and are NACKed as soon as
//! they are [`DEFAULT_SEND_NACK_DELAY`]-old (mediasoup's `Producer` uses 10 ms, to let
//! slightly reordered packets arrive first), then again every RTT (checked on a 40 ms
//! tick, default RTT 100 ms) up to [`MAX_NACK_RETRIES`] times. A packet older than the
//! newest is looked up in the list: it "fills a gap", and counts as *recovered*
//! (mediasoup's "repaired") when it had been NACKed.
//!
//! Bounds (mediasoup's): entries older than [`MAX_PACKET_AGE`] numbers are dropped, and
//! the list holds at most [`MAX_NACK_PACKETS`]; when a new gap would exceed it, entries
//! older than the oldest known key frame are dropped, and if still too many the list is
//! cleared and a key frame must be requested (RFC 4585 §6.3.1 PLI). The key-frame and
//! RTX-recovered sets are bounded by age and by [`MAX_TRACKED`].
//!
//! Unlike mediasoup, numbers are extended to 64 bits ([`SeqUnwrapper`]), so ordering in
//! the lists is correct across the 16-bit wrap.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::seq_num::SeqUnwrapper;

/// Numbers this far behind the newest are no longer NACKed (mediasoup `MaxPacketAge`).
pub const MAX_PACKET_AGE: u64 = 10_000;
/// Most entries in the NACK list (mediasoup `MaxNackPackets`).
pub const MAX_NACK_PACKETS: usize = 1000;
/// NACKs sent per missing packet at most (mediasoup `MaxNackRetries`).
pub const MAX_NACK_RETRIES: u8 = 10;
/// RTT assumed until one is measured (mediasoup `DefaultRtt`).
pub const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// Period of the retry tick (mediasoup `TimerInterval`).
pub const TIMER_INTERVAL: Duration = Duration::from_millis(40);
/// Age of a missing packet before its first NACK (mediasoup `Producer` `SendNackDelay`).
pub const DEFAULT_SEND_NACK_DELAY: Duration = Duration::from_millis(10);
/// Most entries in the key-frame and recovered sets.
pub const MAX_TRACKED: usize = 1000;

/// What one received packet meant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NackOutcome {
    /// The packet was in the NACK list (late or retransmitted).
    pub filled_gap: bool,
    /// It filled a gap that had been NACKed at least once: count it as repaired.
    pub recovered: bool,
    /// The NACK list overflowed and was cleared: request a key frame from the sender.
    pub key_frame_required: bool,
}

#[derive(Debug, Clone, Copy)]
struct NackInfo {
    created_at: Instant,
    sent_at: Option<Instant>,
    retries: u8,
}

/// Receiver-side NACK scheduling for one stream; see the module docs.
#[derive(Debug, Clone)]
pub struct NackGenerator {
    send_nack_delay: Duration,
    rtt: Duration,
    unwrapper: SeqUnwrapper,
    last_seq: Option<u64>,
    nack_list: BTreeMap<u64, NackInfo>,
    key_frames: BTreeSet<u64>,
    recovered: BTreeSet<u64>,
    /// Next retry tick; running while the list is not empty.
    next_tick: Option<Instant>,
    /// Earliest time an entry not yet NACKed becomes due.
    unsent_due: Option<Instant>,
}

impl Default for NackGenerator {
    fn default() -> Self {
        Self::new(DEFAULT_SEND_NACK_DELAY)
    }
}

impl NackGenerator {
    /// A generator that NACKs a missing packet once it is `send_nack_delay` old (zero:
    /// at the next poll).
    pub fn new(send_nack_delay: Duration) -> Self {
        Self {
            send_nack_delay,
            rtt: DEFAULT_RTT,
            unwrapper: SeqUnwrapper::new(),
            last_seq: None,
            nack_list: BTreeMap::new(),
            key_frames: BTreeSet::new(),
            recovered: BTreeSet::new(),
            next_tick: None,
            unsent_due: None,
        }
    }

    /// Sets the RTT between retries of one NACK; zero means unknown ([`DEFAULT_RTT`]).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = if rtt.is_zero() { DEFAULT_RTT } else { rtt };
    }

    /// Feeds a received packet: `is_key_frame` when it starts a key frame,
    /// `is_recovered` when it arrived by RTX (RFC 4588).
    pub fn received(
        &mut self,
        now: Instant,
        seq: u16,
        is_key_frame: bool,
        is_recovered: bool,
    ) -> NackOutcome {
        let mut outcome = NackOutcome::default();
        let Some(last) = self.last_seq else {
            let ext = self.unwrapper.unwrap(seq);
            self.last_seq = Some(ext);
            if is_key_frame {
                insert_bounded(&mut self.key_frames, ext);
            }
            return outcome;
        };
        let ext = self.unwrapper.peek(seq);
        if ext == last {
            return outcome;
        }
        if ext < last {
            // Late, retransmitted or duplicated.
            if let Some(info) = self.nack_list.remove(&ext) {
                outcome.filled_gap = true;
                outcome.recovered = info.retries > 0;
            }
            return outcome;
        }

        let oldest_kept = ext.saturating_sub(MAX_PACKET_AGE);
        if is_key_frame {
            insert_bounded(&mut self.key_frames, ext);
        }
        remove_below(&mut self.key_frames, oldest_kept);
        if is_recovered {
            // Newer than anything seen yet but via RTX: remember it so it is not NACKed,
            // but do not let it move the stream forward (as mediasoup).
            insert_bounded(&mut self.recovered, ext);
            remove_below(&mut self.recovered, oldest_kept);
            return outcome;
        }

        outcome.key_frame_required = self.add_to_nack_list(now, last + 1, ext);
        self.last_seq = Some(ext);
        self.unwrapper.unwrap(seq);
        if !self.nack_list.is_empty() && self.next_tick.is_none() {
            self.next_tick = Some(later(now, TIMER_INTERVAL));
        }
        outcome
    }

    /// Appends the sequence numbers to NACK now, ascending, and records them as sent.
    pub fn poll_nacks(&mut self, now: Instant, out: &mut Vec<u16>) {
        let tick = self.next_tick.is_some_and(|t| now >= t);
        let (delay, rtt) = (self.send_nack_delay, self.rtt);
        let mut unsent_due: Option<Instant> = None;
        self.nack_list.retain(|&seq, info| {
            if now.saturating_duration_since(info.created_at) < delay {
                let due = later(info.created_at, delay);
                unsent_due = Some(unsent_due.map_or(due, |u| u.min(due)));
                return true;
            }
            let due = match info.sent_at {
                None => true,
                Some(sent) => tick && now.saturating_duration_since(sent) >= rtt,
            };
            if !due {
                return true;
            }
            out.push(seq as u16);
            info.retries = info.retries.saturating_add(1);
            info.sent_at = Some(now);
            info.retries < MAX_NACK_RETRIES
        });
        self.unsent_due = unsent_due;
        if self.nack_list.is_empty() {
            self.next_tick = None;
        } else if tick {
            self.next_tick = Some(later(now, TIMER_INTERVAL));
        }
    }

    /// When [`Self::poll_nacks`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.unsent_due, self.next_tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of missing packets being NACKed.
    pub fn nack_list_len(&self) -> usize {
        self.nack_list.len()
    }

    /// Forgets everything (e.g. on a sequence-number reset of the stream).
    pub fn reset(&mut self) {
        self.unwrapper.reset();
        self.last_seq = None;
        self.nack_list.clear();
        self.key_frames.clear();
        self.recovered.clear();
        self.next_tick = None;
        self.unsent_due = None;
    }

    /// Adds `start..end` to the list; returns whether a key frame is required instead.
    fn add_to_nack_list(&mut self, now: Instant, start: u64, end: u64) -> bool {
        remove_below_map(&mut self.nack_list, end.saturating_sub(MAX_PACKET_AGE));
        let new = usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX);
        let too_many =
            |list: &BTreeMap<u64, NackInfo>| list.len().saturating_add(new) > MAX_NACK_PACKETS;
        if too_many(&self.nack_list) {
            while self.remove_until_key_frame() && too_many(&self.nack_list) {}
            if too_many(&self.nack_list) {
                self.nack_list.clear();
                self.unsent_due = None;
                return true;
            }
        }
        let mut added = false;
        for seq in start..end {
            if self.recovered.contains(&seq) {
                continue;
            }
            self.nack_list.insert(
                seq,
                NackInfo {
                    created_at: now,
                    sent_at: None,
                    retries: 0,
                },
            );
            added = true;
        }
        if added {
            let due = later(now, self.send_nack_delay);
            self.unsent_due = Some(self.unsent_due.map_or(due, |u| u.min(due)));
        }
        false
    }

    /// Drops list entries older than the oldest key frame that is newer than at least
    /// one of them; returns whether anything was dropped.
    fn remove_until_key_frame(&mut self) -> bool {
        while let Some(&key_frame) = self.key_frames.first() {
            if self
                .nack_list
                .first_key_value()
                .is_some_and(|(&s, _)| s < key_frame)
            {
                remove_below_map(&mut self.nack_list, key_frame);
                return true;
            }
            self.key_frames.pop_first();
        }
        false
    }
}

fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

fn insert_bounded(set: &mut BTreeSet<u64>, v: u64) {
    set.insert(v);
    while set.len() > MAX_TRACKED {
        set.pop_first();
    }
}

fn remove_below(set: &mut BTreeSet<u64>, min: u64) {
    while set.first().is_some_and(|&v| v < min) {
        set.pop_first();
    }
}

fn remove_below_map(map: &mut BTreeMap<u64, NackInfo>, min: u64) {
    while map.first_key_value().is_some_and(|(&k, _)| k < min) {
        map.pop_first();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn poll(g: &mut NackGenerator, now: Instant) -> Vec<u16> {
        let mut out = Vec::new();
        g.poll_nacks(now, &mut out);
        out
    }

    #[test]
    fn in_order_stream_needs_nothing() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        for i in 0..100u16 {
            let o = g.received(t0 + ms(u64::from(i)), i.wrapping_add(65500), false, false);
            assert_eq!(o, NackOutcome::default());
        }
        assert_eq!(g.poll_timeout(), None);
        assert!(poll(&mut g, t0 + ms(200)).is_empty());
    }

    #[test]
    fn gap_across_wrap_is_nacked_immediately_then_retried() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 65533, false, false);
        g.received(t0, 65534, false, false);
        g.received(t0, 1, false, false);
        assert_eq!(g.poll_timeout(), Some(t0));
        assert_eq!(poll(&mut g, t0), vec![65535, 0]);
        // Next tick at 40 ms: not yet an RTT since the NACK.
        assert_eq!(g.poll_timeout(), Some(t0 + ms(40)));
        assert!(poll(&mut g, t0 + ms(40)).is_empty());
        assert!(poll(&mut g, t0 + ms(80)).is_empty());
        assert_eq!(poll(&mut g, t0 + ms(120)), vec![65535, 0]);
        // Retransmission of 0 arrives via RTX.
        let o = g.received(t0 + ms(130), 0, false, true);
        assert!(o.filled_gap && o.recovered);
        assert_eq!(poll(&mut g, t0 + ms(240)), vec![65535]);
        assert_eq!(g.nack_list_len(), 1);
    }

    #[test]
    fn send_delay_lets_reordered_packets_arrive() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        g.received(t0, 10, false, false);
        g.received(t0, 12, false, false);
        assert_eq!(g.poll_timeout(), Some(t0 + DEFAULT_SEND_NACK_DELAY));
        assert!(poll(&mut g, t0 + ms(5)).is_empty());
        // Reordered (not NACKed yet): fills the gap but is not "recovered".
        let o = g.received(t0 + ms(6), 11, false, false);
        assert!(o.filled_gap && !o.recovered);
        assert_eq!(g.nack_list_len(), 0);
        assert!(poll(&mut g, t0 + ms(40)).is_empty());
        assert_eq!(g.poll_timeout(), None);
    }

    #[test]
    fn duplicates_and_old_packets_are_ignored() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 100, false, false);
        assert_eq!(g.received(t0, 100, false, false), NackOutcome::default());
        g.received(t0, 101, false, false);
        assert_eq!(g.received(t0, 99, false, false), NackOutcome::default());
        assert_eq!(g.received(t0, 100, false, false), NackOutcome::default());
        assert_eq!(g.nack_list_len(), 0);
    }

    #[test]
    fn retries_are_capped() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 1, false, false);
        g.received(t0, 3, false, false);
        let mut sent = 0;
        let mut now = t0;
        for _ in 0..200 {
            sent += poll(&mut g, now).len();
            match g.poll_timeout() {
                Some(t) => now = t.max(now + ms(1)),
                None => break,
            }
        }
        assert_eq!(sent, usize::from(MAX_NACK_RETRIES));
        assert_eq!(g.nack_list_len(), 0);
        assert_eq!(g.poll_timeout(), None);
    }

    #[test]
    fn rtt_drives_retry_interval() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.set_rtt(ms(30));
        g.received(t0, 1, false, false);
        g.received(t0, 3, false, false);
        assert_eq!(poll(&mut g, t0), vec![2]);
        assert_eq!(poll(&mut g, t0 + ms(40)), vec![2]);
        g.set_rtt(Duration::ZERO);
        assert!(poll(&mut g, t0 + ms(80)).is_empty());
        assert_eq!(poll(&mut g, t0 + ms(160)), vec![2]);
    }

    #[test]
    fn overflow_without_key_frame_requests_one() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 65000, false, false);
        let o = g.received(t0, 65000u16.wrapping_add(1502), false, false);
        assert!(o.key_frame_required);
        assert_eq!(g.nack_list_len(), 0);
        assert!(poll(&mut g, t0).is_empty());
    }

    #[test]
    fn overflow_trims_up_to_key_frame() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 0, false, false);
        // 600 missing.
        g.received(t0, 601, false, false);
        g.received(t0, 700, true, false);
        // 98 more missing (602..700) -> 698 total.
        assert_eq!(g.nack_list_len(), 698);
        // 500 more would exceed 1000: entries before the key frame at 700 are dropped.
        let o = g.received(t0, 1201, false, false);
        assert!(!o.key_frame_required);
        assert_eq!(g.nack_list_len(), 500);
        let mut out = Vec::new();
        g.poll_nacks(t0, &mut out);
        assert_eq!(out.first(), Some(&701));
        assert_eq!(out.last(), Some(&1200));
    }

    #[test]
    fn rtx_packet_ahead_is_not_nacked_later() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 10, false, false);
        // 12 arrives via RTX before 11 and 13 are seen.
        assert_eq!(g.received(t0, 12, false, true), NackOutcome::default());
        g.received(t0, 13, false, false);
        assert_eq!(poll(&mut g, t0), vec![11]);
    }

    #[test]
    fn very_old_entries_age_out() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 0, false, false);
        g.received(t0, 2, false, false);
        let mut seq = 2u16;
        for _ in 0..10_001 {
            seq = seq.wrapping_add(1);
            g.received(t0, seq, false, false);
        }
        assert_eq!(g.nack_list_len(), 0);
        // After aging out, the late packet is not a gap filler.
        assert!(!g.received(t0, 1, false, false).filled_gap);
    }

    #[test]
    fn reset_forgets_state() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        g.received(t0, 1, false, false);
        g.received(t0, 5, false, false);
        g.reset();
        assert_eq!(g.nack_list_len(), 0);
        assert_eq!(g.poll_timeout(), None);
        g.received(t0, 40000, false, false);
        g.received(t0, 40001, false, false);
        assert!(poll(&mut g, t0).is_empty());
    }

    #[test]
    fn hostile_input_is_bounded() {
        let t0 = Instant::now();
        let mut g = NackGenerator::new(Duration::ZERO);
        let mut x: u32 = 7;
        let mut out = Vec::new();
        for i in 0..30_000u64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let now = t0 + ms(i);
            let _ = g.received(now, (x >> 9) as u16, x & 1 == 0, x & 2 == 0);
            out.clear();
            g.poll_nacks(now, &mut out);
            assert!(g.nack_list_len() <= MAX_NACK_PACKETS);
            assert!(g.key_frames.len() <= MAX_TRACKED && g.recovered.len() <= MAX_TRACKED);
        }
    }
}
