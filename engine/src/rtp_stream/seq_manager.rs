//! Sequence-number rewriting from a producer's sequence space onto a consumer's, as
//! mediasoup's `RTC::SeqManager<uint16_t>` does for `SimpleConsumer`, `SimulcastConsumer`
//! and `SvcConsumer`.
//!
//! A consumer must see a continuous RTP sequence (RFC 3550 §5.1: the receiver counts
//! gaps as loss and NACKs them) although the SFU drops some producer packets (padding
//! only, other temporal layers) and switches between producer streams (simulcast layer
//! switches). The manager keeps:
//!
//! * a `base` so that `output = input + base - (dropped inputs below input)`;
//! * the set of dropped inputs newer than the last synchronisation, so a reordered
//!   packet older than a dropped one still maps to the slot it would have had.
//!
//! Differences from mediasoup, deliberate:
//! * inputs are extended to 64 bits ([`SeqUnwrapper`]), so the dropped set is an ordered
//!   deque and no "previous cycle" heuristics are needed;
//! * the dropped set is bounded ([`MAX_DROPPED`] entries, and entries more than half the
//!   space behind the newest input are folded into `base`); inputs at or below a folded
//!   entry are refused rather than given a possibly duplicated output;
//! * [`SeqManager::sync`] takes the first input of the new stream (mediasoup's callers
//!   pass `seq - 1`), and inputs of the new stream older than it are refused, since
//!   their outputs would collide with outputs already sent.
//!
//! The caller must feed only packets of the stream it last synced on (filter by SSRC):
//! a packet of another stream is just a number here and would be mapped.

use std::collections::VecDeque;

use super::seq_num::{SeqUnwrapper, seq_newer};

/// Most dropped inputs remembered; older ones are folded into the base.
pub const MAX_DROPPED: usize = 1000;

/// Entries this far (half the 16-bit space) behind the newest input are folded.
const FOLD_AGE: u64 = 0x8000;

/// Maps producer sequence numbers to consumer sequence numbers; see the module docs.
#[derive(Debug, Clone)]
pub struct SeqManager {
    initial_output: u16,
    unwrapper: SeqUnwrapper,
    /// `output = input_ext + base - dropped_below(input_ext)` (wrapping); fixed by the
    /// first input or by a sync.
    base: Option<u64>,
    /// Newest extended input seen (forwarded or dropped).
    max_input: Option<u64>,
    /// Newest output produced (serial order).
    max_output: Option<u16>,
    /// Dropped extended inputs, ascending.
    dropped: VecDeque<u64>,
    /// Inputs at or below this extended value are refused.
    floor: Option<u64>,
}

impl SeqManager {
    /// A manager whose first forwarded input maps to `initial_output` (mediasoup picks a
    /// random value in `1000..32768` to avoid a libsrtp issue, mediasoup#1437).
    pub fn new(initial_output: u16) -> Self {
        Self {
            initial_output,
            unwrapper: SeqUnwrapper::new(),
            base: None,
            max_input: None,
            max_output: None,
            dropped: VecDeque::new(),
            floor: None,
        }
    }

    /// Re-synchronises on a new input sequence (e.g. a simulcast layer switch): `input`,
    /// the first packet to forward from the new sequence, will map to `max_output + 1`
    /// (or to the initial output if nothing was output yet). Older inputs are refused.
    pub fn sync(&mut self, input: u16) {
        self.unwrapper.reset();
        let ext = self.unwrapper.unwrap(input);
        self.dropped.clear();
        // Considered seen up to just before `input`, so `drop(input)` still works.
        self.max_input = Some(ext - 1);
        self.floor = Some(ext - 1);
        let next = self
            .max_output
            .map_or(self.initial_output, |m| m.wrapping_add(1));
        self.base = Some(u64::from(next).wrapping_sub(ext));
    }

    /// Marks `input` as not forwarded, so later inputs shift down and the consumer sees
    /// no gap. Like mediasoup, only inputs newer than every input seen are recorded; an
    /// older one leaves its output slot as a gap.
    pub fn drop(&mut self, input: u16) {
        let ext = self.unwrapper.peek(input);
        if self.max_input.is_some_and(|m| ext <= m) {
            return;
        }
        self.unwrapper.unwrap(input);
        self.max_input = Some(ext);
        self.dropped.push_back(ext);
        self.prune();
    }

    /// The output sequence number for `input`, or `None` when it was dropped, precedes
    /// the last sync, or is too old to be mapped without risking a duplicate output.
    /// A duplicated input gets the same output again.
    pub fn input(&mut self, input: u16) -> Option<u16> {
        let ext = self.unwrapper.peek(input);
        if self.floor.is_some_and(|f| ext <= f) {
            return None;
        }
        let below = self.dropped.partition_point(|&d| d < ext);
        if self.dropped.get(below) == Some(&ext) {
            return None;
        }
        let below = below as u64;
        let initial = u64::from(self.initial_output);
        let base = *self
            .base
            .get_or_insert_with(|| initial.wrapping_add(below).wrapping_sub(ext));
        let output = ext.wrapping_add(base).wrapping_sub(below) as u16;

        self.unwrapper.unwrap(input);
        if self.max_input.is_none_or(|m| ext > m) {
            self.max_input = Some(ext);
        }
        if self.max_output.is_none_or(|m| seq_newer(output, m)) {
            self.max_output = Some(output);
        }
        self.prune();
        Some(output)
    }

    /// The newest output produced, if any.
    pub fn max_output(&self) -> Option<u16> {
        self.max_output
    }

    /// The newest input seen (forwarded or dropped), if any.
    pub fn max_input(&self) -> Option<u16> {
        self.max_input.map(|m| m as u16)
    }

    /// Number of dropped inputs currently remembered (at most [`MAX_DROPPED`]).
    pub fn dropped_len(&self) -> usize {
        self.dropped.len()
    }

    /// Folds dropped entries that are too old or too many into the base.
    fn prune(&mut self) {
        let Some(max) = self.max_input else {
            return;
        };
        while let Some(&d) = self.dropped.front() {
            if d.saturating_add(FOLD_AGE) >= max && self.dropped.len() <= MAX_DROPPED {
                break;
            }
            self.dropped.pop_front();
            // Every input still accepted is above `d`, so it is one dropped input fewer
            // to subtract per input: move it into the base.
            if let Some(base) = self.base.as_mut() {
                *base = base.wrapping_sub(1);
            }
            self.floor = Some(self.floor.map_or(d, |f| f.max(d)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_without_drops() {
        let mut m = SeqManager::new(1000);
        assert_eq!(m.max_output(), None);
        assert_eq!(m.input(50), Some(1000));
        assert_eq!(m.input(51), Some(1001));
        assert_eq!(m.input(52), Some(1002));
        assert_eq!(m.max_output(), Some(1002));
        assert_eq!(m.max_input(), Some(52));
        // Duplicate maps to the same output.
        assert_eq!(m.input(51), Some(1001));
        assert_eq!(m.max_output(), Some(1002));
    }

    #[test]
    fn drops_shift_later_inputs() {
        let mut m = SeqManager::new(10);
        assert_eq!(m.input(1), Some(10));
        m.drop(2);
        m.drop(3);
        assert_eq!(m.input(4), Some(11));
        m.drop(5);
        assert_eq!(m.input(6), Some(12));
        // Dropped inputs are refused.
        assert_eq!(m.input(3), None);
        assert_eq!(m.input(5), None);
        // Drop of an already-passed input is ignored: its slot stays a gap.
        m.drop(4);
        assert_eq!(m.input(4), Some(11));
    }

    #[test]
    fn reordered_packet_older_than_a_dropped_one() {
        let mut m = SeqManager::new(100);
        assert_eq!(m.input(1), Some(100));
        assert_eq!(m.input(2), Some(101));
        // 3 is late; 4 is dropped; 5 arrives.
        m.drop(4);
        assert_eq!(m.input(5), Some(103));
        // 3 arrives late and gets the slot before 5.
        assert_eq!(m.input(3), Some(102));
        assert_eq!(m.max_output(), Some(103));
    }

    #[test]
    fn input_and_output_wraparound() {
        let mut m = SeqManager::new(65534);
        assert_eq!(m.input(65533), Some(65534));
        assert_eq!(m.input(65534), Some(65535));
        m.drop(65535);
        m.drop(0);
        assert_eq!(m.input(1), Some(0));
        assert_eq!(m.input(2), Some(1));
        // Late packet from before the input wrap.
        assert_eq!(m.input(65533), Some(65534));
        assert_eq!(m.max_output(), Some(1));
    }

    #[test]
    fn drops_before_first_input() {
        let mut m = SeqManager::new(500);
        m.drop(7);
        m.drop(8);
        assert_eq!(m.input(9), Some(500));
        assert_eq!(m.input(10), Some(501));
        // A reordered older packet maps before the first output.
        assert_eq!(m.input(6), Some(499));
        assert_eq!(m.max_output(), Some(501));
    }

    #[test]
    fn sync_continues_output_and_refuses_older() {
        let mut m = SeqManager::new(20);
        assert_eq!(m.input(100), Some(20));
        assert_eq!(m.input(101), Some(21));
        m.drop(102);
        // Layer switch to a stream numbered around 40000.
        m.sync(40000);
        assert_eq!(m.input(40000), Some(22));
        assert_eq!(m.input(40001), Some(23));
        assert_eq!(m.input(39999), None);
        assert_eq!(m.max_output(), Some(23));
    }

    #[test]
    fn sync_before_any_output_and_drop_of_sync_input() {
        let mut m = SeqManager::new(7);
        m.sync(300);
        m.drop(300);
        assert_eq!(m.input(301), Some(7));
        assert_eq!(m.input(300), None);
        m.sync(9);
        assert_eq!(m.input(9), Some(8));
    }

    #[test]
    fn dropped_set_is_bounded_by_count() {
        let mut m = SeqManager::new(0);
        assert_eq!(m.input(0), Some(0));
        let mut seq = 1u16;
        for _ in 0..5000 {
            m.drop(seq);
            seq = seq.wrapping_add(1);
        }
        assert!(m.dropped_len() <= MAX_DROPPED);
        // Still continuous after folding.
        assert_eq!(m.input(seq), Some(1));
        // Inputs below the folded entries are refused, not mis-mapped.
        assert_eq!(m.input(2), None);
    }

    #[test]
    fn dropped_set_is_bounded_by_age() {
        let mut m = SeqManager::new(0);
        assert_eq!(m.input(0), Some(0));
        m.drop(1);
        let mut seq = 2u16;
        let mut expect = 1u16;
        // Walk more than a full cycle with one drop long ago.
        for _ in 0..70_000u32 {
            assert_eq!(m.input(seq), Some(expect));
            seq = seq.wrapping_add(1);
            expect = expect.wrapping_add(1);
        }
        assert_eq!(m.dropped_len(), 0);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let mut m = SeqManager::new(u16::MAX);
        let mut x: u32 = 12345;
        for i in 0..20_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let s = (x >> 8) as u16;
            match i % 7 {
                0 => m.drop(s),
                1 => m.sync(s),
                _ => {
                    let _ = m.input(s);
                }
            }
            assert!(m.dropped_len() <= MAX_DROPPED);
        }
    }
}
