//! Stream quality score 0–10, as mediasoup's `RtpStream::UpdateScore` with
//! `RtpStreamRecv::UpdateScore` (producer side, `producerScore`) and
//! `RtpStreamSend::UpdateScore` (consumer side, `consumerScore`, from RTCP receiver
//! reports, RFC 3550 §6.4.2).
//!
//! For each interval (one receiver report) a sample is computed from the packets lost
//! in it, discounting those repaired by retransmission:
//!
//! ```text
//! repaired_weight = (1 / (repaired/base + 1))^4 * (repaired / retransmitted)
//! lost'           = trunc(lost - repaired * repaired_weight)
//! sample          = round(((base - lost') / base)^4 * 10)
//! ```
//!
//! where `base` is the packets sent (consumer side) or received (producer side). The
//! score is the weighted average of the last [`SCORE_HISTORY_LEN`] samples, the newest
//! weighing most (weights 1, 2, 3, …), rounded.

use std::collections::VecDeque;

/// Samples kept (mediasoup `ScoreHistogramLength`).
pub const SCORE_HISTORY_LEN: usize = 24;
/// Best score.
pub const MAX_SCORE: u8 = 10;

/// Cumulative counters at the previous interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Prior {
    packets: u64,
    received: u64,
    lost: u64,
    repaired: u64,
    retransmitted: u64,
}

/// Score of one RTP stream; see the module docs.
#[derive(Debug, Clone)]
pub struct StreamScore {
    history: VecDeque<u8>,
    score: u8,
    prior: Prior,
}

impl Default for StreamScore {
    fn default() -> Self {
        Self::new(MAX_SCORE)
    }
}

impl StreamScore {
    /// A score starting at `initial` (mediasoup streams start at 10; clamped to 10).
    pub fn new(initial: u8) -> Self {
        Self {
            history: VecDeque::with_capacity(SCORE_HISTORY_LEN),
            score: initial.min(MAX_SCORE),
            prior: Prior::default(),
        }
    }

    /// The current score.
    pub fn score(&self) -> u8 {
        self.score
    }

    /// Adds one sample (clamped to 10); returns the new score if it changed.
    pub fn push_sample(&mut self, sample: u8) -> Option<u8> {
        if self.history.len() >= SCORE_HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(sample.min(MAX_SCORE));
        let (mut weights, mut total) = (0u64, 0u64);
        for (i, &s) in self.history.iter().enumerate() {
            let w = i as u64 + 1;
            weights += w;
            total += w * u64::from(s);
        }
        // Round half up: (2 * total + weights) / (2 * weights).
        let score = ((2 * total + weights) / (2 * weights.max(1))).min(u64::from(MAX_SCORE)) as u8;
        self.set(score)
    }

    /// Clears the history and sets the score (mediasoup `ResetScore`); returns the new
    /// score if it changed.
    pub fn reset(&mut self, score: u8) -> Option<u8> {
        self.history.clear();
        self.set(score.min(MAX_SCORE))
    }

    /// Consumer side: a receiver report for the stream we send arrived.
    /// `sent_total`, `repaired_total` (packets resent in answer to NACKs that the
    /// receiver had lost) and `retransmitted_total` are our cumulative counters;
    /// `rr_total_lost` is the report's cumulative number of packets lost (24-bit signed;
    /// negative counts as 0). Returns the new score if it changed.
    pub fn on_receiver_report(
        &mut self,
        sent_total: u64,
        rr_total_lost: i32,
        repaired_total: u64,
        retransmitted_total: u64,
    ) -> Option<u8> {
        let total_lost = u64::try_from(rr_total_lost).unwrap_or(0);
        let sent = sent_total.saturating_sub(self.prior.packets);
        let lost = total_lost.saturating_sub(self.prior.lost);
        let repaired = repaired_total.saturating_sub(self.prior.repaired);
        let retransmitted = retransmitted_total.saturating_sub(self.prior.retransmitted);
        self.prior.packets = sent_total;
        self.prior.lost = total_lost;
        self.prior.repaired = repaired_total;
        self.prior.retransmitted = retransmitted_total;
        if sent == 0 {
            return self.push_sample(MAX_SCORE);
        }
        self.push_sample(interval_score(sent, lost, repaired, retransmitted))
    }

    /// Producer side: at each receiver report we generate for a received stream.
    /// `expected_total` is the extended highest sequence number minus the first plus
    /// one (RFC 3550 §A.3), `received_total` the packets received, `repaired_total` the
    /// packets recovered after a NACK, `retransmitted_total` the RTX packets received.
    /// Returns the new score if it changed.
    pub fn on_receive_interval(
        &mut self,
        expected_total: u64,
        received_total: u64,
        repaired_total: u64,
        retransmitted_total: u64,
    ) -> Option<u8> {
        let expected = expected_total.saturating_sub(self.prior.packets);
        let received = received_total.saturating_sub(self.prior.received);
        let repaired = repaired_total.saturating_sub(self.prior.repaired);
        let retransmitted = retransmitted_total.saturating_sub(self.prior.retransmitted);
        self.prior.packets = expected_total;
        self.prior.received = received_total;
        self.prior.repaired = repaired_total;
        self.prior.retransmitted = retransmitted_total;
        if expected == 0 {
            return self.push_sample(MAX_SCORE);
        }
        // mediasoup divides by zero here; nothing received of what was expected is 0.
        if received == 0 {
            return self.push_sample(0);
        }
        let lost = expected.saturating_sub(received);
        self.push_sample(interval_score(received, lost, repaired, retransmitted))
    }

    fn set(&mut self, score: u8) -> Option<u8> {
        if score == self.score {
            None
        } else {
            self.score = score;
            Some(score)
        }
    }
}

/// The sample of one interval (see the module docs); `base` 0 gives 10.
pub fn interval_score(base: u64, lost: u64, repaired: u64, retransmitted: u64) -> u8 {
    if base == 0 {
        return MAX_SCORE;
    }
    let lost = lost.min(base);
    let repaired = repaired.min(lost);
    let retransmitted = retransmitted.max(repaired);
    let (base_f, repaired_f) = (base as f64, repaired as f64);
    let mut repaired_weight = (1.0 / (repaired_f / base_f + 1.0)).powi(4);
    if retransmitted > 0 {
        repaired_weight *= repaired_f / retransmitted as f64;
    }
    let lost = (lost as f64 - repaired_f * repaired_weight)
        .max(0.0)
        .trunc();
    let delivered = (base_f - lost) / base_f;
    (delivered.powi(4) * 10.0).round().clamp(0.0, 10.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_samples() {
        assert_eq!(interval_score(100, 0, 0, 0), 10);
        assert_eq!(interval_score(100, 20, 0, 0), 4);
        assert_eq!(interval_score(100, 100, 0, 0), 0);
        assert_eq!(interval_score(100, 500, 0, 0), 0);
        assert_eq!(interval_score(0, 5, 0, 0), 10);
        // Repairs soften the loss: 20 lost, all repaired by 20 retransmissions.
        let repaired = interval_score(100, 20, 20, 20);
        assert!(repaired > 4, "{repaired}");
        // Wasteful retransmission repairs less.
        assert!(interval_score(100, 20, 20, 200) < repaired);
        assert_eq!(interval_score(u64::MAX, u64::MAX, u64::MAX, 0), 0);
    }

    #[test]
    fn weighted_history() {
        let mut s = StreamScore::new(0);
        assert_eq!(s.push_sample(1), Some(1));
        assert_eq!(s.push_sample(2), Some(2));
        // (1 + 4 + 9) / 6 = 2.33: unchanged.
        assert_eq!(s.push_sample(3), None);
        // (1 + 4 + 9 + 16) / 10 = 3.
        assert_eq!(s.push_sample(4), Some(3));
        assert_eq!(s.push_sample(200), Some(5));
        for _ in 0..SCORE_HISTORY_LEN {
            s.push_sample(7);
        }
        assert_eq!(s.score(), 7);
        assert_eq!(s.history.len(), SCORE_HISTORY_LEN);
        assert_eq!(s.reset(10), Some(10));
        assert!(s.history.is_empty());
        assert_eq!(s.reset(10), None);
    }

    #[test]
    fn consumer_score_no_loss_loss_and_recovery() {
        let mut s = StreamScore::new(10);
        // No loss: stays 10 (no change event).
        assert_eq!(s.on_receiver_report(100, 0, 0, 0), None);
        assert_eq!(s.score(), 10);
        s.reset(0);
        assert_eq!(s.on_receiver_report(200, 0, 0, 0), Some(10));
        s.reset(10);
        // 20 % loss.
        assert_eq!(s.on_receiver_report(300, 20, 0, 0), Some(4));
        // Recovery over several clean reports.
        let mut scores = Vec::new();
        for i in 1..=6 {
            if let Some(v) = s.on_receiver_report(300 + 100 * i, 20, 0, 0) {
                scores.push(v);
            }
        }
        assert_eq!(scores, vec![8, 9, 10]);
        assert_eq!(s.score(), 10);
    }

    #[test]
    fn consumer_score_counter_resets_and_silence() {
        let mut s = StreamScore::new(10);
        s.on_receiver_report(100, 50, 0, 0);
        assert!(s.score() < 10);
        // Cumulative lost going down (or negative) counts as no loss.
        s.on_receiver_report(200, -1, 0, 0);
        // Nothing sent: a 10.
        s.on_receiver_report(200, 0, 0, 0);
        s.on_receiver_report(200, 0, 0, 0);
        assert!(s.score() >= 8);
    }

    #[test]
    fn producer_score_from_expected_and_received() {
        let mut s = StreamScore::new(10);
        assert_eq!(s.on_receive_interval(100, 100, 0, 0), None);
        // 20 of 100 lost: sample (60/80)^4 -> 3; history [10, 3] -> 5.
        assert_eq!(s.on_receive_interval(200, 180, 0, 0), Some(5));
        // Nothing received at all.
        s.reset(10);
        assert_eq!(s.on_receive_interval(300, 180, 0, 0), Some(0));
        // Nothing expected: a 10.
        assert_eq!(s.on_receive_interval(300, 180, 0, 0), Some(7));
        // Sequence reset making totals go backwards does not panic.
        let _ = s.on_receive_interval(5, 2, 0, 0);
    }
}
