//! Delay-based congestion detection: the trend of the one-way delay variation between
//! packet groups, estimated by linear regression over a window of smoothed accumulated
//! delays (libwebrtc's trendline filter, which replaced GCC's Kalman filter of
//! draft-ietf-rmcat-gcc-02 §5.3), compared against an adaptive threshold (§5.4).

use std::collections::VecDeque;

use super::inter_arrival::GroupDelta;

/// Group deltas in the regression window.
const WINDOW: usize = 20;
/// Exponential smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// The trend is scaled by this gain (and the number of deltas seen, up to
/// [`MAX_DELTAS`]) before it is compared with the threshold.
const THRESHOLD_GAIN: f64 = 4.0;
const MAX_DELTAS: f64 = 60.0;
/// Over-use is signalled only after the trend stayed above the threshold this long.
const OVERUSING_TIME_MS: f64 = 10.0;
/// Adaptive threshold (§5.4): initial value, bounds, and its gains up and down.
const THRESHOLD_INIT: f64 = 12.5;
const THRESHOLD_MIN: f64 = 6.0;
const THRESHOLD_MAX: f64 = 600.0;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// A trend this far beyond the threshold is an outlier the threshold does not follow.
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// The lowest accumulated delay seen rises by this much per second of arrivals, so that a
/// path whose delay went up for good (a new route) is measured from its new floor.
const BASELINE_RISE_MS_PER_S: f64 = 1.0;

/// What the delay trend says about the path (§5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// Queues are stable.
    #[default]
    Normal,
    /// Queues grow: send less.
    Overusing,
    /// Queues drain: hold, they will be empty soon.
    Underusing,
}

/// The trendline filter and over-use detector of one transport.
#[derive(Debug)]
pub struct TrendlineDetector {
    window: VecDeque<(f64, f64)>,
    first_arrival_ms: Option<f64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    deltas: f64,
    threshold: f64,
    last_update_ms: Option<f64>,
    previous_trend: f64,
    time_over_using: f64,
    overuse_count: u32,
    usage: BandwidthUsage,
    /// The lowest accumulated delay seen (rising slowly), and when it was last moved: the
    /// queueing delay is measured from it.
    baseline_ms: Option<(f64, f64)>,
}

impl Default for TrendlineDetector {
    fn default() -> Self {
        Self {
            window: VecDeque::with_capacity(WINDOW + 1),
            first_arrival_ms: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            deltas: 0.0,
            threshold: THRESHOLD_INIT,
            last_update_ms: None,
            previous_trend: 0.0,
            time_over_using: -1.0,
            overuse_count: 0,
            usage: BandwidthUsage::Normal,
            baseline_ms: None,
        }
    }
}

impl TrendlineDetector {
    /// Takes one group delta; returns the current verdict.
    pub fn on_delta(&mut self, d: &GroupDelta) -> BandwidthUsage {
        let variation = d.arrival_ms - d.send_ms;
        // The inter-arrival stage bounds deltas; anything else is a lie to ignore.
        if !variation.is_finite() || variation.abs() > 10_000.0 || !d.arrival_time_ms.is_finite() {
            return self.usage;
        }
        self.deltas = (self.deltas + 1.0).min(MAX_DELTAS);
        self.accumulated_ms += variation;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let (base, at) = self
            .baseline_ms
            .get_or_insert((self.accumulated_ms, d.arrival_time_ms));
        let risen = *base + (d.arrival_time_ms - *at).max(0.0) / 1000.0 * BASELINE_RISE_MS_PER_S;
        *base = risen.min(self.accumulated_ms);
        *at = d.arrival_time_ms;
        let first = *self.first_arrival_ms.get_or_insert(d.arrival_time_ms);
        self.window
            .push_back((d.arrival_time_ms - first, self.smoothed_ms));
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        let trend = if self.window.len() == WINDOW {
            slope(&self.window).unwrap_or(self.previous_trend)
        } else {
            self.previous_trend
        };
        self.detect(trend, d.send_ms, d.arrival_time_ms);
        self.usage
    }

    /// The current verdict.
    pub fn usage(&self) -> BandwidthUsage {
        self.usage
    }

    /// How much later than at their quickest packets now arrive, in ms: the queue on the
    /// path, plus the jitter of the last packet. A trend says whether a queue grows; this
    /// says whether one is there (30 ms of jitter makes trends, not a 100 ms queue).
    pub fn queue_delay_ms(&self) -> f64 {
        self.baseline_ms
            .map_or(0.0, |(base, _)| (self.accumulated_ms - base).max(0.0))
    }

    /// The adaptive threshold, in ms (stats).
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    fn detect(&mut self, trend: f64, send_delta_ms: f64, now_ms: f64) {
        let modified = self.deltas * trend * THRESHOLD_GAIN;
        if modified > self.threshold {
            if self.time_over_using < 0.0 {
                // First time over: assume half the interval was.
                self.time_over_using = send_delta_ms / 2.0;
            } else {
                self.time_over_using += send_delta_ms;
            }
            self.overuse_count += 1;
            if self.time_over_using > OVERUSING_TIME_MS
                && self.overuse_count > 1
                && trend >= self.previous_trend
            {
                self.time_over_using = 0.0;
                self.overuse_count = 0;
                self.usage = BandwidthUsage::Overusing;
            }
        } else if modified < -self.threshold {
            self.time_over_using = -1.0;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Underusing;
        } else {
            self.time_over_using = -1.0;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Normal;
        }
        self.previous_trend = trend;
        self.adapt_threshold(modified, now_ms);
    }

    fn adapt_threshold(&mut self, modified: f64, now_ms: f64) {
        let last = *self.last_update_ms.get_or_insert(now_ms);
        if modified.abs() > self.threshold + MAX_ADAPT_OFFSET_MS {
            self.last_update_ms = Some(now_ms);
            return;
        }
        let k = if modified.abs() < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let dt = (now_ms - last).clamp(0.0, 100.0);
        self.threshold += k * (modified.abs() - self.threshold) * dt;
        self.threshold = self.threshold.clamp(THRESHOLD_MIN, THRESHOLD_MAX);
        self.last_update_ms = Some(now_ms);
    }
}

/// Least-squares slope of `(x, y)` points; `None` when x does not vary.
fn slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den > 0.0 && num.is_finite()).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut TrendlineDetector, n: usize, send_ms: f64, arrival_ms: f64) -> BandwidthUsage {
        let mut t = 0.0;
        let mut usage = BandwidthUsage::Normal;
        for _ in 0..n {
            t += arrival_ms;
            usage = d.on_delta(&GroupDelta {
                send_ms,
                arrival_ms,
                arrival_time_ms: t,
            });
        }
        usage
    }

    #[test]
    fn steady_delay_is_normal_growing_delay_is_overuse() {
        let mut d = TrendlineDetector::default();
        assert_eq!(feed(&mut d, 100, 10.0, 10.0), BandwidthUsage::Normal);
        // Each group arrives 2 ms later than it was sent after the previous: a queue grows.
        assert_eq!(feed(&mut d, 40, 10.0, 12.0), BandwidthUsage::Overusing);
        // Draining.
        assert_eq!(feed(&mut d, 40, 10.0, 6.0), BandwidthUsage::Underusing);
    }

    #[test]
    fn queue_delay_is_measured_from_the_quickest_arrivals() {
        let mut d = TrendlineDetector::default();
        feed(&mut d, 50, 10.0, 10.0);
        assert!(d.queue_delay_ms() < 1.0, "{}", d.queue_delay_ms());
        // 40 groups each 2 ms later: an 80 ms queue.
        feed(&mut d, 40, 10.0, 12.0);
        assert!(
            (79.0..=81.0).contains(&d.queue_delay_ms()),
            "{}",
            d.queue_delay_ms()
        );
        feed(&mut d, 40, 10.0, 8.0);
        assert!(d.queue_delay_ms() < 1.0, "{}", d.queue_delay_ms());
    }

    #[test]
    fn garbage_deltas_do_not_panic_or_stick() {
        let mut d = TrendlineDetector::default();
        for v in [f64::NAN, f64::INFINITY, -1e300, 1e300, 0.0] {
            d.on_delta(&GroupDelta {
                send_ms: 5.0,
                arrival_ms: v,
                arrival_time_ms: v,
            });
        }
        assert!(d.threshold().is_finite());
        assert!((THRESHOLD_MIN..=THRESHOLD_MAX).contains(&d.threshold()));
    }
}
