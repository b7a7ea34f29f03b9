//! The delay-based rate (draft-ietf-rmcat-gcc-02 §5.5; libwebrtc's `AimdRateControl`):
//! multiplicative increase while the path is far from its known capacity, additive near
//! it, and a decrease to a fraction of what the receiver acknowledged when the delay
//! detector says over-use.

use std::time::{Duration, Instant};

use super::bitrate::Bitrate;
use super::trendline::BandwidthUsage;

/// Decrease factor on over-use (§5.5: beta).
const BETA: f64 = 0.85;
/// Multiplicative increase per second, far from the link capacity (§5.5: eta).
const MULTIPLICATIVE_PER_SECOND: f64 = 1.08;
/// The estimate is not raised above this multiple of the acknowledged rate (plus
/// [`HEADROOM`]): an estimate nothing has tested is a guess.
const MAX_OVER_ACKED: f64 = 1.5;
const HEADROOM: Bitrate = Bitrate::kbps(10);
/// Bits per packet assumed for the additive increase (1200-byte packets).
const PACKET_BITS: f64 = 1200.0 * 8.0;

/// The rate controller's state (§5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// The link capacity as seen at over-use: an average and its variance, in kbps.
#[derive(Debug, Clone, Copy)]
struct LinkCapacity {
    kbps: f64,
    var: f64,
}

impl LinkCapacity {
    fn update(&mut self, sample_kbps: f64) {
        const ALPHA: f64 = 0.05;
        self.kbps = (1.0 - ALPHA) * self.kbps + ALPHA * sample_kbps;
        let norm = self.kbps.max(1.0);
        let err = self.kbps - sample_kbps;
        self.var = ((1.0 - ALPHA) * self.var + ALPHA * err * err / norm).clamp(0.4, 2.5);
    }

    fn std_kbps(&self) -> f64 {
        (self.var * self.kbps).sqrt()
    }
}

/// The AIMD controller of one transport.
#[derive(Debug)]
pub struct AimdRateControl {
    current: Bitrate,
    min: Bitrate,
    max: Bitrate,
    state: State,
    last_update: Option<Instant>,
    capacity: Option<LinkCapacity>,
    rtt: Duration,
}

impl AimdRateControl {
    /// Starts at `start`, staying within `[min, max]`.
    pub fn new(start: Bitrate, min: Bitrate, max: Bitrate) -> Self {
        Self {
            current: start.clamp_to(min, max),
            min,
            max,
            state: State::Hold,
            last_update: None,
            capacity: None,
            rtt: Duration::from_millis(200),
        }
    }

    /// The round-trip time the additive increase paces itself by.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt.clamp(Duration::from_millis(1), Duration::from_secs(2));
    }

    /// Sets the rate (a probe measured the path), within bounds.
    pub fn set_rate(&mut self, rate: Bitrate) {
        self.current = rate.clamp_to(self.min, self.max);
    }

    /// The current rate.
    pub fn rate(&self) -> Bitrate {
        self.current
    }

    /// Moves the rate for the detector's verdict at `now`, given the acknowledged rate.
    pub fn update(
        &mut self,
        usage: BandwidthUsage,
        acked: Option<Bitrate>,
        now: Instant,
    ) -> Bitrate {
        let dt = self
            .last_update
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            .min(Duration::from_secs(1));
        self.last_update = Some(now);
        self.state = match (usage, self.state) {
            (BandwidthUsage::Overusing, _) => State::Decrease,
            (BandwidthUsage::Underusing, _) => State::Hold,
            (BandwidthUsage::Normal, State::Hold | State::Decrease) => State::Increase,
            (BandwidthUsage::Normal, State::Increase) => State::Increase,
        };
        match self.state {
            State::Hold => {}
            State::Increase => self.increase(acked, dt),
            State::Decrease => {
                self.decrease(acked);
                self.state = State::Hold;
            }
        }
        self.current = self.current.clamp_to(self.min, self.max);
        self.current
    }

    fn increase(&mut self, acked: Option<Bitrate>, dt: Duration) {
        if let (Some(cap), Some(acked)) = (self.capacity, acked) {
            // Well above what the link carried at the last over-use: it changed.
            if acked.bps() as f64 / 1000.0 > cap.kbps + 3.0 * cap.std_kbps() {
                self.capacity = None;
            }
        }
        let secs = dt.as_secs_f64();
        let increase = if self.capacity.is_some() {
            // Near the capacity: about one packet per response time (RTT + 100 ms).
            let response = self.rtt.as_secs_f64() + 0.1;
            let per_second = (PACKET_BITS / response).max(4000.0);
            per_second * secs
        } else {
            (self.current.bps() as f64 * (MULTIPLICATIVE_PER_SECOND.powf(secs) - 1.0))
                .max(1000.0 * secs)
        };
        let mut next = Bitrate(self.current.bps().saturating_add(increase as u64));
        if let Some(acked) = acked {
            let cap = Bitrate(
                acked
                    .scale(MAX_OVER_ACKED)
                    .bps()
                    .saturating_add(HEADROOM.bps()),
            );
            if next > cap {
                next = self.current.max(cap);
            }
        }
        self.current = next;
    }

    fn decrease(&mut self, acked: Option<Bitrate>) {
        let Some(acked) = acked else {
            self.current = self.current.scale(BETA);
            return;
        };
        let decreased = acked.scale(BETA);
        if decreased < self.current {
            self.current = decreased;
        }
        let sample = acked.bps() as f64 / 1000.0;
        // Far below what the link carried before: it changed; start the estimate over.
        if self
            .capacity
            .is_some_and(|c| sample < c.kbps - 3.0 * c.std_kbps())
        {
            self.capacity = None;
        }
        match &mut self.capacity {
            Some(c) => c.update(sample),
            None => {
                self.capacity = Some(LinkCapacity {
                    kbps: sample,
                    var: 0.4,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_multiplicatively_decreases_to_beta_of_acked() {
        let t0 = Instant::now();
        let mut c = AimdRateControl::new(Bitrate::kbps(300), Bitrate::kbps(30), Bitrate::mbps(10));
        let mut now = t0;
        for _ in 0..100 {
            now += Duration::from_millis(100);
            c.update(BandwidthUsage::Normal, None, now);
        }
        // 10 s at 8 %/s: about 2.16x.
        let r = c.rate().bps();
        assert!((600_000..=700_000).contains(&r), "{r}");
        let r = c.update(BandwidthUsage::Overusing, Some(Bitrate::kbps(500)), now);
        assert_eq!(r, Bitrate::kbps(425));
        // Acked caps the increase.
        now += Duration::from_secs(1);
        let r = c.update(BandwidthUsage::Normal, Some(Bitrate::kbps(100)), now);
        assert_eq!(r, Bitrate::kbps(425), "not raised past 1.5x acked");
    }

    #[test]
    fn stays_within_bounds_whatever_it_is_told() {
        let t0 = Instant::now();
        let mut c = AimdRateControl::new(Bitrate::kbps(300), Bitrate::kbps(30), Bitrate::mbps(10));
        for i in 0..10_000u64 {
            let usage = [
                BandwidthUsage::Normal,
                BandwidthUsage::Overusing,
                BandwidthUsage::Underusing,
            ][(i % 3) as usize];
            let acked = [None, Some(Bitrate(0)), Some(Bitrate(u64::MAX))][(i % 7 % 3) as usize];
            let r = c.update(usage, acked, t0 + Duration::from_millis(i * 37));
            assert!(r >= Bitrate::kbps(30) && r <= Bitrate::mbps(10));
        }
    }
}
