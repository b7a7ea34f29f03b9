//! The loss-based rate (draft-ietf-rmcat-gcc-02 §6; libwebrtc's send-side loss control):
//! more than 10 % loss cuts the rate by half the loss fraction (and to at most what
//! arrived), less than 2 % lets it grow
//! by 8 % a second, in between it holds. It only ever caps the delay-based rate: a path
//! that loses packets at random without queueing (Wi-Fi) is left to NACK and RTX.

use std::time::{Duration, Instant};

use super::bitrate::Bitrate;

/// Reported packets a loss fraction is computed over, at least: with fewer, a steady 5 %
/// random loss shows windows over 10 % often enough to ratchet the cap down (seen with
/// 50 at 5 % loss in the shaped-link browser test); over 200 the fraction's standard
/// deviation at 5 % is 1.5 points.
const MIN_PACKETS: u32 = 200;
/// ...unless this many show heavy loss (over [`EARLY_LOSS`]): a queue overflowing after a
/// cut is acted on at once (at 5 % random loss, 50 packets show 20 % about once in ten
/// thousand windows).
const EARLY_PACKETS: u32 = 50;
const EARLY_LOSS: f64 = 0.2;
/// Loss above which the rate goes down, below which it may go up.
const HIGH_LOSS: f64 = 0.10;
const LOW_LOSS: f64 = 0.02;
/// Growth per second while the loss is low.
const INCREASE_PER_SECOND: f64 = 1.08;
/// Two decreases are at least this plus an RTT apart (the first one's effect must show).
const DECREASE_INTERVAL: Duration = Duration::from_millis(300);
/// A decrease never goes below this share of what the receiver acknowledged over the
/// last half second (libwebrtc bounds its loss-based decrease by the acknowledged rate
/// too): the path carried that much. Without it, a cap that made a queue overflow cut
/// the rate by a fifth to a third every 0.3 s down to nothing, and a VP9 SVC receiver
/// capped at 700 kbit/s had its video paused for 5 s (Chromium over UDP, 2026-12-07).
const ACKED_FLOOR: f64 = 0.5;

/// The loss controller of one transport.
#[derive(Debug, Default)]
pub struct LossBasedControl {
    cap: Option<Bitrate>,
    lost: u32,
    reported: u32,
    loss: f64,
    last_decrease: Option<Instant>,
    last_update: Option<Instant>,
}

impl LossBasedControl {
    /// Feedback reported `reported` packets, `lost` of them lost.
    pub fn on_feedback(&mut self, lost: u32, reported: u32) {
        self.lost = self.lost.saturating_add(lost.min(reported));
        self.reported = self.reported.saturating_add(reported);
    }

    /// The last loss fraction computed (stats).
    pub fn loss(&self) -> f64 {
        self.loss
    }

    /// A probe cluster arrived at `result` without loss enough to matter: the path carries
    /// that much now, so the cap (which otherwise grows 8 % a second) starts from there
    /// (libwebrtc's `SetSendBitrate` on a probe result).
    pub fn on_probe(&mut self, result: Bitrate) {
        if let Some(cap) = self.cap
            && result > cap
        {
            self.cap = Some(result);
        }
    }

    /// The cap on `estimate` (the transport's estimate before this cap) at `now`;
    /// `acked` is what the receiver acknowledged lately, if known.
    pub fn cap(
        &mut self,
        estimate: Bitrate,
        acked: Option<Bitrate>,
        rtt: Duration,
        now: Instant,
    ) -> Bitrate {
        let dt = self
            .last_update
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        self.last_update = Some(now);
        let heavy = self.reported >= EARLY_PACKETS
            && f64::from(self.lost) > EARLY_LOSS * f64::from(self.reported);
        if self.reported >= MIN_PACKETS || heavy {
            self.loss = f64::from(self.lost) / f64::from(self.reported);
            self.lost = 0;
            self.reported = 0;
            if self.loss > HIGH_LOSS {
                let due = self
                    .last_decrease
                    .is_none_or(|t| now.saturating_duration_since(t) >= DECREASE_INTERVAL + rtt);
                if due {
                    let base = self.cap.map_or(estimate, |c| c.min(estimate));
                    let floor = acked.map_or(Bitrate(0), |a| a.scale(ACKED_FLOOR));
                    // Nor above what arrived: a full drop-tail queue loses what does not
                    // fit at a steady delay, which the delay detector does not see, and
                    // cutting by a twelfth every two seconds left a layer 20 % over a
                    // link for ten (issue 17, the virtual-time bursty-shaper test).
                    let arrived = acked.unwrap_or(base);
                    self.cap = Some(
                        base.scale(1.0 - 0.5 * self.loss)
                            .min(arrived)
                            .max(floor.min(base)),
                    );
                    self.last_decrease = Some(now);
                }
            }
        }
        if self.loss < LOW_LOSS
            && let Some(cap) = self.cap
        {
            let grown = cap
                .scale(INCREASE_PER_SECOND.powf(dt.as_secs_f64()))
                .bps()
                .saturating_add((1000.0 * dt.as_secs_f64()) as u64);
            // Once it no longer limits the estimate, it is gone.
            self.cap = (grown < estimate.bps()).then_some(Bitrate(grown));
        }
        self.cap.map_or(estimate, |c| c.min(estimate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_loss_cuts_moderate_holds_low_recovers() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(50);
        let mut l = LossBasedControl::default();
        let est = Bitrate::mbps(2);
        assert_eq!(l.cap(est, None, rtt, t0), est, "no loss known: no cap");
        // Not judged before 200 packets were reported.
        l.on_feedback(20, 100);
        assert_eq!(l.cap(est, None, rtt, t0), est);
        l.on_feedback(20, 100);
        assert_eq!(l.cap(est, None, rtt, t0), Bitrate::mbps(2).scale(0.9));
        // Moderate loss holds.
        l.on_feedback(10, 200);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(l.cap(est, None, rtt, t1), Bitrate::mbps(2).scale(0.9));
        // No loss: grows 8 %/s until it no longer limits.
        l.on_feedback(0, 200);
        let mut now = t1;
        let mut last = Bitrate(0);
        for _ in 0..30 {
            now += Duration::from_secs(1);
            last = l.cap(est, None, rtt, now);
        }
        assert_eq!(last, est);
        l.on_feedback(u32::MAX, 1);
        assert!(l.cap(est, None, rtt, now + Duration::from_secs(2)) <= est);
    }

    #[test]
    fn heavy_loss_cuts_to_at_most_what_arrived() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(50);
        let mut l = LossBasedControl::default();
        // 772 kbit/s estimated over a 450 kbit/s link whose full queue drops 16 %, at a
        // steady delay: one decrease brings it to what arrived (427), not 772 x 0.92.
        l.on_feedback(32, 200);
        let cap = l.cap(Bitrate::kbps(772), Some(Bitrate::kbps(427)), rtt, t0);
        assert_eq!(cap, Bitrate::kbps(427));
    }

    #[test]
    fn heavy_loss_does_not_cut_below_half_of_what_arrived() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(50);
        let mut l = LossBasedControl::default();
        let est = Bitrate::kbps(2500);
        let acked = Some(Bitrate::kbps(700));
        // A cap at 700 kbit/s under a 2.5 Mbit/s stream: 60 % lost, every 0.5 s.
        let mut now = t0;
        let mut last = est;
        for _ in 0..20 {
            l.on_feedback(120, 200);
            last = l.cap(est, acked, rtt, now);
            now += Duration::from_millis(500);
        }
        assert_eq!(
            last,
            Bitrate::kbps(350),
            "half of the acknowledged 700 kbit/s"
        );
        // Without an acknowledged rate it goes on down.
        let mut l = LossBasedControl::default();
        for k in 0..20 {
            l.on_feedback(120, 200);
            last = l.cap(est, None, rtt, t0 + Duration::from_millis(500 * k));
        }
        assert!(last < Bitrate::kbps(50), "{last:?}");
    }
}
