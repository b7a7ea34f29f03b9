//! Bit rate over a sliding window, after mediasoup's `RTC::RateCalculator` (used for the
//! `bitrate` fields of stats and for layer selection).
//!
//! The window (default 1000 ms) is split into a fixed ring of items (default 100, so
//! 10 ms each, as mediasoup's `DefaultWindowItems`); each item counts the bytes of its
//! time slice. Memory is fixed at construction; bytes older than the window no longer
//! count. Like mediasoup, the rate is `bytes in window * 8 / window`, so it ramps up
//! during the first window.

use std::time::{Duration, Instant};

/// Default window (mediasoup `DefaultWindowSize`).
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(1000);
/// Default number of items in the window (mediasoup `DefaultWindowItems`).
pub const DEFAULT_WINDOW_ITEMS: u16 = 100;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Index of the time slice (`elapsed / item`) this bucket counts.
    slot: u64,
    bytes: u64,
}

/// Sliding-window bit rate; see the module docs.
#[derive(Debug, Clone)]
pub struct RateCalculator {
    window_ms: u64,
    item_ms: u64,
    buckets: Vec<Bucket>,
    origin: Option<Instant>,
    newest_slot: u64,
}

impl Default for RateCalculator {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW, DEFAULT_WINDOW_ITEMS)
    }
}

impl RateCalculator {
    /// A calculator over `window` split into `items` slices (each at least 1 ms; zero
    /// values are raised to 1).
    pub fn new(window: Duration, items: u16) -> Self {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let items = u64::from(items.max(1)).min(window_ms);
        let item_ms = (window_ms / items).max(1);
        Self {
            window_ms,
            item_ms,
            buckets: vec![Bucket::default(); items as usize],
            origin: None,
            newest_slot: 0,
        }
    }

    /// Counts `bytes` sent or received at `now`. Data older than the window (time going
    /// backwards) is ignored.
    pub fn update(&mut self, now: Instant, bytes: usize) {
        let origin = *self.origin.get_or_insert(now);
        if now < origin {
            return;
        }
        let slot = self.slot_of(origin, now);
        let n = self.buckets.len() as u64;
        if slot.saturating_add(n) <= self.newest_slot {
            return;
        }
        let Some(bucket) = self.buckets.get_mut((slot % n) as usize) else {
            return;
        };
        if bucket.slot != slot {
            if bucket.slot > slot {
                return;
            }
            *bucket = Bucket { slot, bytes: 0 };
        }
        bucket.bytes = bucket.bytes.saturating_add(bytes as u64);
        self.newest_slot = self.newest_slot.max(slot);
    }

    /// The rate in bits per second at `now`.
    pub fn rate(&self, now: Instant) -> u32 {
        let Some(origin) = self.origin else {
            return 0;
        };
        let current = self.slot_of(origin, now);
        let n = self.buckets.len() as u64;
        let bytes = self
            .buckets
            .iter()
            .filter(|b| b.slot <= current && b.slot.saturating_add(n) > current)
            .fold(0u64, |acc, b| acc.saturating_add(b.bytes));
        let bps = u128::from(bytes) * 8 * 1000 / u128::from(self.window_ms);
        u32::try_from(bps).unwrap_or(u32::MAX)
    }

    /// Forgets all data.
    pub fn reset(&mut self) {
        self.buckets.fill(Bucket::default());
        self.origin = None;
        self.newest_slot = 0;
    }

    fn slot_of(&self, origin: Instant, now: Instant) -> u64 {
        let ms =
            u64::try_from(now.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX);
        ms / self.item_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steady_rate() {
        let t0 = Instant::now();
        let mut r = RateCalculator::default();
        assert_eq!(r.rate(t0), 0);
        // 1250 bytes every 10 ms = 1 Mbit/s.
        for i in 0..300u64 {
            r.update(t0 + ms(i * 10), 1250);
        }
        let now = t0 + ms(2990);
        assert_eq!(r.rate(now), 1_000_000);
    }

    #[test]
    fn ramps_up_and_decays() {
        let t0 = Instant::now();
        let mut r = RateCalculator::default();
        r.update(t0, 1000);
        assert_eq!(r.rate(t0), 8000);
        r.update(t0 + ms(500), 1000);
        assert_eq!(r.rate(t0 + ms(500)), 16_000);
        assert_eq!(r.rate(t0 + ms(999)), 16_000);
        // First item leaves the window.
        assert_eq!(r.rate(t0 + ms(1000)), 8000);
        assert_eq!(r.rate(t0 + ms(1500)), 0);
        // Long silence, then data again.
        r.update(t0 + ms(60_000), 500);
        assert_eq!(r.rate(t0 + ms(60_000)), 4000);
    }

    #[test]
    fn old_data_is_ignored() {
        let t0 = Instant::now();
        let mut r = RateCalculator::default();
        r.update(t0 + ms(5000), 100);
        // Before the origin and far behind: ignored.
        r.update(t0, 1_000_000);
        r.update(t0 + ms(3000), 1_000_000);
        assert_eq!(r.rate(t0 + ms(5000)), 800);
        // Slightly late (within the window) still counts.
        r.update(t0 + ms(5500), 100);
        r.update(t0 + ms(5200), 100);
        assert_eq!(r.rate(t0 + ms(5500)), 2400);
    }

    #[test]
    fn custom_window_and_saturation() {
        let t0 = Instant::now();
        let mut r = RateCalculator::new(ms(100), 10);
        r.update(t0, usize::MAX);
        r.update(t0, usize::MAX);
        assert_eq!(r.rate(t0), u32::MAX);
        r.reset();
        assert_eq!(r.rate(t0), 0);
        let mut z = RateCalculator::new(Duration::ZERO, 0);
        z.update(t0, 1);
        assert_eq!(z.rate(t0), 8000);
    }
}
