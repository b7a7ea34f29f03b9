//! The cost of forwarding a layer as the bandwidth allocation should see it (issues 9
//! and 17): a layer's rate over its last window, unless that window held a burst its
//! recent windows did not. A consumer switching up asks for a key frame, which is several
//! times a normal frame; over the next window the layer's measured rate jumps by a third
//! or more, the allocation read that as the layer no longer fitting, switched back down
//! and held the layer back for 10 s (seen with Chromium after a downlink cap was lifted).
//! A rate that falls is believed at once; a rate above the median of the last
//! [`RECENT`] windows counts only at that median.

use std::time::Instant;

/// Whole windows remembered.
pub const RECENT: usize = 5;
/// Windows needed before the median is used.
const MIN_SAMPLES: usize = 3;

/// A stream's rate sampled once per window.
#[derive(Debug, Clone, Default)]
pub struct RecentRates {
    samples: [u32; RECENT],
    len: usize,
    next: usize,
    due: Option<Instant>,
}

impl RecentRates {
    /// Takes `rate()` (the rate over the window ending `now`) if a window has passed
    /// since the last sample; `window` is the rate's window.
    pub fn sample(
        &mut self,
        now: Instant,
        window: std::time::Duration,
        rate: impl FnOnce() -> u32,
    ) {
        if self.due.is_some_and(|d| now < d) {
            return;
        }
        self.due = Some(now + window);
        self.samples[self.next] = rate();
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
    }

    /// Forgets the samples (the stream stopped: its old rates say nothing now).
    pub fn reset(&mut self) {
        *self = RecentRates::default();
    }

    /// The median of the remembered windows, once there are enough.
    pub fn median(&self) -> Option<u32> {
        if self.len < MIN_SAMPLES {
            return None;
        }
        let mut v = self.samples;
        let v = &mut v[..self.len];
        v.sort_unstable();
        Some(v[self.len / 2])
    }

    /// What to multiply costs measured at `live` by: 1, or less when `live` is above the
    /// median of the recent windows (a burst, see the module documentation).
    pub fn cost_scale(&self, live: u32) -> f64 {
        match self.median() {
            Some(m) if live > m && live > 0 => f64::from(m) / f64::from(live),
            _ => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const W: Duration = Duration::from_secs(1);

    #[test]
    fn a_key_frame_window_is_seen_at_the_median_and_a_fall_at_once() {
        let t0 = Instant::now();
        let mut r = RecentRates::default();
        // Too few windows: the live rate counts.
        r.sample(t0, W, || 500_000);
        r.sample(t0 + Duration::from_millis(400), W, || 900_000); // within the window: ignored
        r.sample(t0 + W, W, || 520_000);
        assert_eq!(r.cost_scale(800_000), 1.0);
        r.sample(t0 + 2 * W, W, || 510_000);
        // The window with the key frame: 800 kbit/s against a median of 510.
        assert!((r.cost_scale(800_000) - 510.0 / 800.0).abs() < 1e-9);
        r.sample(t0 + 3 * W, W, || 800_000);
        r.sample(t0 + 4 * W, W, || 505_000);
        // One burst among five windows moves nothing.
        assert_eq!(r.median(), Some(510_000));
        // A fall counts at once.
        assert_eq!(r.cost_scale(200_000), 1.0);
        // A lasting rise is believed once it is the median: three windows of it.
        for k in 5..8 {
            r.sample(t0 + k * W, W, || 900_000);
        }
        assert_eq!(r.cost_scale(900_000), 1.0);
        r.reset();
        assert_eq!(r.median(), None);
    }
}
