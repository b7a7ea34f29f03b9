//! Rate limits for log lines that clients cause: failed requests, refused connections,
//! failed DTLS handshakes. An unauthenticated or broken client can cause them as fast as it
//! can send; the log must stay readable and cheap (issue 8: "lines caused by
//! unauthenticated or failing clients are rate-limited"). Time is a parameter.

use std::time::{Duration, Instant};

/// A token bucket for one kind of log line: `burst` lines at once, then one per `every`.
/// Lines held back are counted and reported with the next one written.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    burst: u32,
    every: Duration,
    tokens: u32,
    last_refill: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter allowing `burst` lines at once and one more per `every`.
    pub const fn new(burst: u32, every: Duration) -> Self {
        Self {
            burst,
            every,
            tokens: burst,
            last_refill: None,
            suppressed: 0,
        }
    }

    /// Ten lines at once, then one a second: the limit of every client-caused line.
    pub const fn per_second() -> Self {
        Self::new(10, Duration::from_secs(1))
    }

    /// Whether a line may be written at `now`: `Some(n)` when it may, `n` lines having
    /// been held back since the last one written (say so in the line); `None` when it is
    /// held back.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let last = *self.last_refill.get_or_insert(now);
        if self.every.is_zero() {
            self.tokens = self.burst;
        } else {
            let earned = now.saturating_duration_since(last).as_nanos() / self.every.as_nanos();
            if earned >= u128::from(self.burst) {
                self.tokens = self.burst;
                self.last_refill = Some(now);
            } else if earned > 0 {
                let earned = earned as u32; // below `burst`
                self.tokens = (self.tokens + earned).min(self.burst);
                self.last_refill = Some(last + self.every * earned);
            }
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::per_second()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_one_per_period_and_counts_what_it_held_back() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut l = LogLimiter::new(3, Duration::from_secs(1));
        let written: Vec<_> = (0..1000).map(|_| l.allow(t0)).collect();
        assert_eq!(written[..3], [Some(0), Some(0), Some(0)]);
        assert!(written[3..].iter().all(Option::is_none));
        assert_eq!(l.allow(ms(999)), None);
        // One earned after a second: it reports the 998 held back.
        assert_eq!(l.allow(ms(1000)), Some(998));
        assert_eq!(l.allow(ms(1500)), None);
        assert_eq!(l.allow(ms(2000)), Some(1));
        // A long quiet spell refills the burst, no more.
        let later: Vec<_> = (0..5).map(|_| l.allow(ms(60_000))).collect();
        assert_eq!(later, [Some(0), Some(0), Some(0), None, None]);
    }

    #[test]
    fn a_flood_over_a_minute_writes_a_bounded_number_of_lines() {
        let t0 = Instant::now();
        let mut l = LogLimiter::per_second();
        let written = (0..600_000u64)
            .filter(|i| l.allow(t0 + Duration::from_micros(i * 100)).is_some())
            .count();
        assert!((10..=10 + 61).contains(&written), "{written}");
    }
}
