//! The rate the receiver acknowledged: bytes of packets reported received over a sliding
//! window of their arrival times (libwebrtc's `AcknowledgedBitrateEstimator`, simplified
//! to a window). The delay-based controller decreases relative to it and caps its
//! increases by it.

use std::collections::VecDeque;

use super::bitrate::Bitrate;

/// The window the rate is measured over, in µs of receiver time.
const WINDOW_US: i64 = 500_000;
/// The rate is not trusted before this much receiver time is covered.
const MIN_SPAN_US: i64 = 150_000;
/// Arrivals kept at most (a flood of tiny reports must not grow it).
const MAX_ENTRIES: usize = 4096;

/// Acknowledged bytes by arrival time.
#[derive(Debug, Default)]
pub struct AckedBitrate {
    arrivals: VecDeque<(i64, u32)>,
    bytes: u64,
}

impl AckedBitrate {
    /// A packet of `size` bytes arrived at `arrival_us` (receiver clock).
    pub fn on_arrival(&mut self, arrival_us: i64, size: u32) {
        if self.arrivals.back().is_some_and(|(last, _)| {
            arrival_us < last.saturating_sub(WINDOW_US)
                || arrival_us > last.saturating_add(10_000_000)
        }) {
            // The receiver's clock went far back or forth: start over.
            self.arrivals.clear();
            self.bytes = 0;
        }
        self.arrivals.push_back((arrival_us, size));
        self.bytes += u64::from(size);
        let newest = self
            .arrivals
            .iter()
            .map(|a| a.0)
            .max()
            .unwrap_or(arrival_us);
        while self.arrivals.len() > MAX_ENTRIES
            || self
                .arrivals
                .front()
                .is_some_and(|(t, _)| *t < newest.saturating_sub(WINDOW_US))
        {
            if let Some((_, s)) = self.arrivals.pop_front() {
                self.bytes -= u64::from(s);
            }
        }
    }

    /// The acknowledged rate, once enough time is covered.
    pub fn rate(&self) -> Option<Bitrate> {
        let first = self.arrivals.front()?.0;
        let last = self.arrivals.iter().map(|a| a.0).max()?;
        let span = last.saturating_sub(first);
        if span < MIN_SPAN_US {
            return None;
        }
        Some(Bitrate::from_bytes(
            self.bytes,
            std::time::Duration::from_micros(span as u64),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_window_and_survives_clock_jumps() {
        let mut a = AckedBitrate::default();
        assert_eq!(a.rate(), None);
        // 1000 bytes every 10 ms: 800 kbps.
        for i in 0..200 {
            a.on_arrival(i * 10_000, 1000);
        }
        let r = a.rate().unwrap().bps();
        assert!((780_000..=820_000).contains(&r), "{r}");
        a.on_arrival(i64::MIN / 2, 1000);
        assert_eq!(a.rate(), None, "started over");
        a.on_arrival(i64::MAX / 2, u32::MAX);
        assert_eq!(a.rate(), None);
    }
}
