//! A network path in virtual time for the bandwidth estimation tests (issue 9): a
//! bottleneck of a given capacity with a drop-tail queue, propagation delay, jitter, random
//! loss and burst loss (a Gilbert-Elliott model), all seeded. Packets leave in order.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One direction of a path.
#[derive(Debug)]
pub struct LinkModel {
    rng: StdRng,
    /// Bottleneck capacity in bits per second.
    pub capacity_bps: u64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra delay, uniform in `[0, jitter]` (packets still leave in order).
    pub jitter: Duration,
    /// Probability that a packet is lost at random.
    pub loss: f64,
    /// Burst loss: probabilities of entering and of leaving the losing state per packet.
    pub burst: Option<(f64, f64)>,
    /// Queueing delay beyond which the queue drops what arrives (drop-tail).
    pub queue_limit: Duration,
    /// A token bucket's burst allowance in bytes (`tc tbf burst`; cable, DSL and Wi-Fi
    /// shapers): tokens fill at `capacity_bps` up to this, and a packet that finds enough
    /// tokens leaves at once. 0: a plain bottleneck, every packet serialised at the rate.
    pub bucket_bytes: u64,
    tokens: f64,
    busy_until: Option<Instant>,
    last_arrival: Option<Instant>,
    in_burst: bool,
    /// Packets dropped by the full queue.
    pub queue_drops: u64,
    /// Packets lost at random or in bursts.
    pub random_drops: u64,
}

impl LinkModel {
    /// A path of `capacity_bps` with `delay`, no jitter or loss, a 300 ms queue.
    pub fn new(capacity_bps: u64, delay: Duration, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            capacity_bps,
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
            burst: None,
            queue_limit: Duration::from_millis(300),
            bucket_bytes: 0,
            tokens: 0.0,
            busy_until: None,
            last_arrival: None,
            in_burst: false,
            queue_drops: 0,
            random_drops: 0,
        }
    }

    /// A packet of `size` bytes enters at `now`: when it arrives, or `None` if lost.
    pub fn send(&mut self, now: Instant, size: usize) -> Option<Instant> {
        let start = self.busy_until.map_or(now, |b| b.max(now));
        if start.saturating_duration_since(now) > self.queue_limit {
            self.queue_drops += 1;
            return None;
        }
        let bytes_per_s = self.capacity_bps.max(1) as f64 / 8.0;
        // Tokens gathered since the last packet left (none while the queue was busy).
        let idle = self
            .busy_until
            .map_or(Duration::MAX, |b| start.saturating_duration_since(b));
        self.tokens =
            (self.tokens + idle.as_secs_f64().min(1e6) * bytes_per_s).min(self.bucket_bytes as f64);
        let tx = if self.tokens >= size as f64 {
            self.tokens -= size as f64;
            Duration::ZERO
        } else {
            let missing = size as f64 - self.tokens;
            self.tokens = 0.0;
            Duration::from_secs_f64(missing / bytes_per_s)
        };
        self.busy_until = Some(start + tx);
        if let Some((enter, leave)) = self.burst {
            let flip = if self.in_burst { leave } else { enter };
            if self.rng.random_bool(flip.clamp(0.0, 1.0)) {
                self.in_burst = !self.in_burst;
            }
            if self.in_burst {
                self.random_drops += 1;
                return None;
            }
        }
        if self.loss > 0.0 && self.rng.random_bool(self.loss.clamp(0.0, 1.0)) {
            self.random_drops += 1;
            return None;
        }
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(self.rng.random::<f64>())
        };
        let arrival = (start + tx + self.delay + jitter).max(self.last_arrival.unwrap_or(now));
        self.last_arrival = Some(arrival);
        Some(arrival)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bucket_lets_its_burst_through_at_once_then_the_rate() {
        let t0 = Instant::now();
        let mut link = LinkModel::new(800_000, Duration::ZERO, 1);
        link.bucket_bytes = 10_000;
        // Idle long enough to fill the bucket: ten 1000-byte packets leave at once...
        let at: Vec<Instant> = (0..12)
            .map(|_| link.send(t0 + Duration::from_secs(1), 1000).unwrap())
            .collect();
        assert!(at[..10].iter().all(|a| *a == t0 + Duration::from_secs(1)));
        // ...the eleventh and twelfth wait for tokens at 100 bytes/ms: 10 ms each.
        assert_eq!(at[10] - at[9], Duration::from_millis(10));
        assert_eq!(at[11] - at[10], Duration::from_millis(10));
        // Without a bucket every packet is serialised at the rate.
        let mut plain = LinkModel::new(800_000, Duration::ZERO, 1);
        let a = plain.send(t0, 1000).unwrap();
        let b = plain.send(t0, 1000).unwrap();
        assert_eq!(
            (a - t0, b - a),
            (Duration::from_millis(10), Duration::from_millis(10))
        );
    }
}
