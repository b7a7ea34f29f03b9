//! A bitrate in bits per second.

use std::fmt;
use std::time::Duration;

/// Bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bitrate(pub u64);

impl Bitrate {
    /// `n` kilobits per second.
    pub const fn kbps(n: u64) -> Self {
        Self(n * 1000)
    }

    /// `n` megabits per second.
    pub const fn mbps(n: u64) -> Self {
        Self(n * 1_000_000)
    }

    /// Bits per second.
    pub const fn bps(self) -> u64 {
        self.0
    }

    /// The rate that carries `bytes` in `over`; zero for an empty span.
    pub fn from_bytes(bytes: u64, over: Duration) -> Self {
        let nanos = over.as_nanos();
        if nanos == 0 {
            return Self(0);
        }
        Self((u128::from(bytes) * 8 * 1_000_000_000 / nanos).min(u128::from(u64::MAX)) as u64)
    }

    /// The rate scaled by `f` (saturating, never negative).
    pub fn scale(self, f: f64) -> Self {
        let v = self.0 as f64 * f;
        if v.is_finite() && v > 0.0 {
            Self(v.min(u64::MAX as f64) as u64)
        } else {
            Self(0)
        }
    }

    /// How many bytes this rate carries in `span`.
    pub fn bytes_in(self, span: Duration) -> u64 {
        (u128::from(self.0) * span.as_nanos() / 8_000_000_000).min(u128::from(u64::MAX)) as u64
    }

    /// How long this rate takes to carry `bytes` (a zero rate: a day).
    pub fn time_for(self, bytes: u64) -> Duration {
        if self.0 == 0 {
            return Duration::from_secs(86_400);
        }
        let nanos = u128::from(bytes) * 8_000_000_000 / u128::from(self.0);
        Duration::from_nanos(nanos.min(86_400_000_000_000) as u64)
    }

    /// Clamped to `[min, max]`.
    pub fn clamp_to(self, min: Bitrate, max: Bitrate) -> Self {
        Self(self.0.clamp(min.0, max.0.max(min.0)))
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1_000_000 {
            write!(f, "{:.2} Mbps", self.0 as f64 / 1e6)
        } else {
            write!(f, "{:.0} kbps", self.0 as f64 / 1e3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_never_panics() {
        assert_eq!(
            Bitrate::from_bytes(1250, Duration::from_millis(10)),
            Bitrate::mbps(1)
        );
        assert_eq!(Bitrate::from_bytes(1, Duration::ZERO), Bitrate(0));
        assert_eq!(
            Bitrate::from_bytes(u64::MAX, Duration::from_nanos(1)),
            Bitrate(u64::MAX)
        );
        assert_eq!(Bitrate::kbps(100).scale(f64::NAN), Bitrate(0));
        assert_eq!(Bitrate::kbps(100).scale(-1.0), Bitrate(0));
        assert_eq!(Bitrate(u64::MAX).scale(2.0), Bitrate(u64::MAX));
        assert_eq!(
            Bitrate::kbps(5).clamp_to(Bitrate::kbps(30), Bitrate::kbps(10)),
            Bitrate::kbps(30)
        );
    }
}
