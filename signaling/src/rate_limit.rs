//! A token bucket that bounds how many requests one socket may make (a client that floods
//! requests gets failure acks for the excess, contract section 4's "say why").

use std::time::{Duration, Instant};

/// Requests a socket may burst.
pub const DEFAULT_BURST: u32 = 100;
/// Requests per second a socket may sustain.
pub const DEFAULT_PER_SECOND: u32 = 50;

/// A token bucket, refilled continuously; time is a parameter.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u32, per_second: u32, now: Instant) -> Self {
        Self {
            capacity: f64::from(capacity),
            per_second: f64::from(per_second),
            tokens: f64::from(capacity),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until one token is available again.
    pub fn time_to_next(&self) -> Duration {
        if self.tokens >= 1.0 || self.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, 10, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(b.time_to_next() > Duration::ZERO);
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(110)));
        // Never more than the capacity, however long the pause.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut b = TokenBucket::new(1, 1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(1)));
    }
}
