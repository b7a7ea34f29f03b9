//! A consumer's RTP timeline: the timestamps it sends continue across layer switches on
//! its producer's capture clock, and its sender reports carry the producer's NTP/RTP
//! mapping (RFC 3550 §6.4.1), so receivers keep the sender's lip sync.

use std::time::Instant;

use super::{Consumer, OWN_CLOCK_AFTER};
use crate::router::recv_stream::RecvStream;
use crate::rtp_stream::{SenderReportClock, ntp_add, rtp_ticks};

impl Consumer {
    /// The NTP and RTP timestamps of this consumer's next sender report (RFC 3550 §6.4.1),
    /// or `None` when none should be sent now.
    ///
    /// While the layer it forwards has had a sender report from the producer: that
    /// report's own NTP/RTP pair carried forward by the time since it arrived, its RTP
    /// side moved by this consumer's timestamp offset, so that receivers keep the sender's
    /// lip sync between its audio and video.
    ///
    /// Until then, nothing: a report on the worker's own clock (`wall_ntp` against the
    /// last timestamp sent) would map each timestamp to when its packet was forwarded
    /// rather than to when it was captured, tens of milliseconds apart and differently for
    /// audio and video; receivers fit one line through their last 20 reports, so those
    /// early reports would skew their audio/video sync for 20 s after the producer's
    /// reports take over (Chromium's first audio SR comes 2.5-7.5 s in). Only a producer
    /// that has sent no report at all [`OWN_CLOCK_AFTER`] after this consumer started
    /// gets reports on the worker's clock. `None` before anything was sent.
    ///
    /// With [`SenderReportClock::Forwarding`] (an operator's choice, for side-by-side
    /// measurements): always the worker's clock, as mediasoup writes them.
    pub fn sender_report_clock(
        &self,
        now: Instant,
        streams: &[RecvStream],
        wall_ntp: u64,
        mapping: SenderReportClock,
    ) -> Option<(u64, u32)> {
        let own = self.stream.rtp_time_at(now)?;
        if mapping == SenderReportClock::Forwarding {
            return Some((wall_ntp, own));
        }
        let layer_sr = self
            .current_layer()
            .and_then(|i| streams.get(i))
            .and_then(|s| s.stats.last_sr);
        if let Some((ntp, rtp, at)) = layer_sr {
            let elapsed = now.saturating_duration_since(at);
            let ticks = rtp_ticks(elapsed, self.clock_rate);
            return Some((
                ntp_add(ntp, elapsed),
                rtp.wrapping_add(ticks).wrapping_add(self.ts_offset),
            ));
        }
        let producer_reports = streams.iter().any(|s| s.stats.last_sr.is_some());
        let waited = self
            .first_sent_at
            .is_some_and(|t| now.saturating_duration_since(t) >= OWN_CLOCK_AFTER);
        (!producer_reports && waited).then_some((wall_ntp, own))
    }

    /// The timestamp offset for layer `to` when the consumer's timestamps so far followed
    /// layer `from` (with the current offset), `in_ts` being the timestamp of `to`'s first
    /// packet.
    ///
    /// With sender reports from both layers: the offset that gives a frame captured at one
    /// instant the same output timestamp on either layer, so the output stays on one
    /// capture clock and the producer's NTP/RTP mapping (which this consumer's own reports
    /// carry) stays true across the switch (as mediasoup's `SimulcastConsumer` does).
    /// Without them, `guess` (the last timestamp sent moved on by the time since it was
    /// sent): off by the difference between the layers' capture-to-forwarding delays,
    /// which receivers read as jitter and, through the mapping that then steps, as an
    /// audio/video offset. Output timestamps only move forward.
    pub(super) fn continued_offset(
        &self,
        streams: &[RecvStream],
        from: usize,
        to: usize,
        in_ts: u32,
        guess: u32,
    ) -> u32 {
        let guessed = guess.wrapping_sub(in_ts);
        let reports = streams
            .get(from)
            .and_then(|s| s.stats.last_sr)
            .zip(streams.get(to).and_then(|s| s.stats.last_sr));
        let Some(((ntp_from, rtp_from, _), (ntp_to, rtp_to, _))) = reports else {
            return guessed;
        };
        // At one instant, layer `from`'s RTP time minus layer `to`'s: the difference of
        // their reports' RTP times less the ticks between their NTP times.
        let ntp_delta = ntp_from.wrapping_sub(ntp_to) as i64;
        let ticks = ((i128::from(ntp_delta) * i128::from(self.clock_rate)) >> 32) as i64;
        let synced = self
            .ts_offset
            .wrapping_add(rtp_from.wrapping_sub(rtp_to))
            .wrapping_sub(ticks as u32);
        let ts = in_ts.wrapping_add(synced);
        let off_guess = ts.wrapping_sub(guess) as i32;
        tracing::debug!(
            target: "kolabmeet::simulcast",
            consumer = %self.id,
            from,
            to,
            off_guess_ms = f64::from(off_guess) * 1000.0 / f64::from(self.clock_rate),
            "timestamps continued from sender reports"
        );
        if off_guess.unsigned_abs() > self.clock_rate {
            // More than a second from the guess: a report is stale or wrong.
            return guessed;
        }
        if (ts.wrapping_sub(self.last_ts) as i32) <= 0 {
            // Captured no later than the last frame sent (the same instant on another
            // layer): just after it, for the receiver's frame order.
            return self.last_ts.wrapping_add(1).wrapping_sub(in_ts);
        }
        synced
    }
}
