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
        let tx = Duration::from_nanos(size as u64 * 8 * 1_000_000_000 / self.capacity_bps.max(1));
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
