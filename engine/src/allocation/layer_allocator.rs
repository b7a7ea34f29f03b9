//! Which layer each consumer of one transport forwards, given the transport's bandwidth
//! estimate (issue 9). The rules, in order:
//!
//! 1. Audio first and always: an audio consumer is never paused for bandwidth (contract
//!    section 5: audio gets the highest priority).
//! 2. Then every video consumer gets its lowest layer, screen shares before webcams; one
//!    whose lowest layer does not fit what is left is paused (and says so with
//!    `consumerLayersChanged`), to resume when it fits.
//! 3. Then layer steps (the next temporal layer, or the next spatial layer) are handed out
//!    round-robin, one step per consumer per round, in the same priority order, while they
//!    fit.
//!
//! Stability: the allocation is redone only when the estimate moved past a hysteresis band
//! (or the consumers changed), and a consumer moved down a spatial layer for bandwidth is
//! not moved up a spatial layer again for [`AllocatorConfig::up_switch_hold`] (mediasoup
//! holds 10 s), so layers do not flap (mediasoup #804, #1462).
//!
//! Trials (issue 17, bursty shapers): a spatial up-switch is made only after the estimate
//! has allowed it for [`UP_SWITCH_AFTER`] (longer after a setback, `up_switch_backoff`),
//! and meanwhile [`Allocation::trial`] asks the
//! transport to pad the link by what the switch would add. A token-bucket shaper lets a
//! short probe through at full speed and says nothing of its rate; the padding spends the
//! bucket, so a link that cannot carry the switch shows it (queueing delay, loss) before
//! the switch instead of after it: the estimate falls, the trial ends without a layer
//! change, and the consumer waits [`AllocatorConfig::up_switch_hold`] before the next.
//! An up-switch undone all the same holds the next one back longer each time
//! ([`UpSwitchBackoff`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::layer::{Layer, LayerRates};
use super::pause_delay::PauseDelay;
use super::up_switch_backoff::UpSwitchBackoff;
use crate::bwe::Bitrate;

/// The order consumers are served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Microphones: first and always.
    Audio,
    /// Screen shares, before webcams.
    Screen,
    /// Webcams.
    Webcam,
}

/// What one consumer could forward.
#[derive(Debug, Clone)]
pub struct ConsumerDemand<K> {
    /// The consumer.
    pub key: K,
    /// How it is served.
    pub priority: Priority,
    /// The layers its producer sends and their rates (audio: one layer, 0/0).
    pub rates: LayerRates,
    /// The highest layer its client wants (preferred layers).
    pub max: Layer,
}

/// What a consumer forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// This layer.
    Layer(Layer),
    /// Nothing: even its lowest layer does not fit (video only).
    Paused,
}

/// The result of one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<K> {
    /// Each consumer's target, in the order of the demands.
    pub targets: Vec<(K, Target)>,
    /// The estimate it was made for.
    pub estimate: Bitrate,
    /// What the targets cost together.
    pub used: Bitrate,
    /// The total the next step up would need (what the targets cost plus the smallest
    /// step one consumer may take now: a paused video's lowest layer, or the next layer
    /// of one not held back after a down-switch); `None` when no consumer may step up.
    /// Probes aim at this (issue 9: "probe clusters sized to the next layer's step").
    pub next_step: Option<Bitrate>,
    /// What the spatial up-switches on trial would add (zero: none): the transport pads
    /// its link by this much until they are made or dropped (module documentation).
    pub trial: Bitrate,
    /// A consumer moved up a spatial layer in this allocation (its key frame follows).
    pub switched_up: bool,
}

/// Tuning of the allocator.
#[derive(Debug, Clone, Copy)]
pub struct AllocatorConfig {
    /// The estimate must move by more than this fraction before the allocation is redone.
    pub hysteresis: f64,
    /// How long a consumer moved down a spatial layer for bandwidth waits before moving up
    /// one again.
    pub up_switch_hold: Duration,
    /// A consumer keeps a layer it already has while that overshoots the estimate by at
    /// most this fraction of it (all such overshoots together): a layer's measured rate
    /// swings by a tenth or more from second to second (key frames, motion), and the
    /// estimate of a link the transport does not fill stays close above what it carries,
    /// so without this band a layer that fits on average is dropped and regained over and
    /// over. The allocator is given a share of the estimate (85 %), so this stays within
    /// what the link was estimated to carry.
    pub keep_tolerance: f64,
}

impl Default for AllocatorConfig {
    fn default() -> Self {
        Self {
            hysteresis: 0.1,
            up_switch_hold: Duration::from_secs(10),
            keep_tolerance: 0.1,
        }
    }
}

/// The allocator of one transport.
#[derive(Debug)]
pub struct LayerAllocator<K> {
    config: AllocatorConfig,
    last_estimate: Option<Bitrate>,
    last: HashMap<K, Target>,
    held_until: HashMap<K, (Instant, u8)>,
    /// Each consumer's up-switches and how many in a row were undone.
    backoff: HashMap<K, UpSwitchBackoff>,
    /// Since when each consumer's spatial up-switch has fitted (it is made only once it
    /// has fitted for [`UP_SWITCH_AFTER`]).
    up_since: HashMap<K, Instant>,
    /// Since when each video's lowest layer has not fitted (paused only after a while).
    pause_delay: PauseDelay<K>,
}

/// After a failed trial, the next waits this long: shorter than the hold after a
/// down-switch (a failed trial changed no layer), so that a link that got better is found
/// within 15 s of it (the hold, a probe and a 4 s trial; with 10 s a lifted cap was found
/// after 14.0 s in one Chromium run).
pub const FAILED_TRIAL_HOLD: Duration = Duration::from_secs(6);

/// A spatial up-switch is made only once the estimate has allowed it this long, the link
/// padded meanwhile by what the switch adds (a trial, module documentation): an estimate
/// that touched the next layer for a moment (a probe through a token bucket, a lull in
/// the delay) would otherwise switch up onto a link that cannot carry it, and back down
/// (flapping, mediasoup #804). With the padding at what the switch needs with its
/// headroom, 2 s spent 15 and 30 KB buckets on links 20-40 % short of the switch in the
/// virtual-time test (issue 17); 3 s put the top layer 6 s after a start instead of 3.
pub const UP_SWITCH_AFTER: Duration = Duration::from_secs(2);

impl<K: Copy + Eq + Hash> LayerAllocator<K> {
    /// An allocator that has allocated nothing yet.
    pub fn new(config: AllocatorConfig) -> Self {
        Self {
            config,
            last_estimate: None,
            last: HashMap::new(),
            held_until: HashMap::new(),
            backoff: HashMap::new(),
            up_since: HashMap::new(),
            pause_delay: PauseDelay::default(),
        }
    }

    /// Whether `estimate` moved past the hysteresis band around the last allocation's.
    pub fn needs_allocation(&self, estimate: Bitrate) -> bool {
        let Some(last) = self.last_estimate else {
            return true;
        };
        let band = last.bps() as f64 * self.config.hysteresis;
        (estimate.bps() as f64 - last.bps() as f64).abs() > band
    }

    /// Forgets a consumer that closed.
    pub fn forget(&mut self, key: K) {
        self.last.remove(&key);
        self.held_until.remove(&key);
        self.backoff.remove(&key);
        self.up_since.remove(&key);
        self.pause_delay.forget(&key);
    }

    /// Allocates `estimate` over `demands` at `now`.
    pub fn allocate(
        &mut self,
        now: Instant,
        estimate: Bitrate,
        demands: &[ConsumerDemand<K>],
    ) -> Allocation<K> {
        let mut budget = estimate.bps();
        let mut targets: Vec<Option<(Layer, u64)>> = vec![None; demands.len()];
        // Serving order: audio, screens, webcams; the demands' order within each.
        let mut order: Vec<usize> = (0..demands.len()).collect();
        order.sort_by_key(|i| demands[*i].priority);
        // What a consumer keeping a layer it has may overshoot by, all together.
        let mut slack = (estimate.bps() as f64 * self.config.keep_tolerance.clamp(0.0, 1.0)) as u64;
        let mut overshoot = 0u64;
        let had = |key: &K, layer: Layer| matches!(self.last.get(key), Some(Target::Layer(old)) if layer <= *old);
        // 1 and 2: audio always; every video its lowest layer if it fits.
        for &i in &order {
            let d = &demands[i];
            let lowest = d.rates.lowest().filter(|(l, _)| *l <= d.max);
            match (d.priority, lowest) {
                (Priority::Audio, lowest) => {
                    let (layer, rate) = lowest.unwrap_or((Layer::new(0, 0), Bitrate(0)));
                    budget = budget.saturating_sub(rate.bps());
                    targets[i] = Some((layer, rate.bps()));
                }
                // Nothing measured yet (the producer just started): its lowest layer, at
                // no known cost; the next allocation has rates.
                (_, None) => targets[i] = Some((Layer::new(0, 0), 0)),
                (_, Some((layer, rate))) if rate.bps() <= budget => {
                    budget -= rate.bps();
                    targets[i] = Some((layer, rate.bps()));
                    self.pause_delay.fits(&d.key);
                }
                (_, Some((layer, rate))) if had(&d.key, layer) && rate.bps() <= budget + slack => {
                    let over = rate.bps() - budget;
                    (slack, overshoot, budget) = (slack - over, overshoot + over, 0);
                    targets[i] = Some((layer, rate.bps()));
                    self.pause_delay.fits(&d.key);
                }
                // Short: a video that had a layer keeps its lowest a while (pause_delay).
                (_, Some((layer, rate))) => {
                    let had_layer = matches!(self.last.get(&d.key), Some(Target::Layer(_)));
                    if self.pause_delay.keep(now, d.key, had_layer) {
                        overshoot += rate.bps() - budget;
                        budget = 0;
                        targets[i] = Some((layer, rate.bps()));
                    }
                }
            }
        }
        // 3: steps round-robin while they fit.
        loop {
            let mut stepped = false;
            for &i in &order {
                let d = &demands[i];
                let Some((layer, cost)) = targets[i] else {
                    continue;
                };
                if d.priority == Priority::Audio {
                    continue;
                }
                let mut max = d.max;
                if let Some((until, spatial)) = self.held_until.get(&d.key)
                    && now < *until
                {
                    max.spatial = max.spatial.min(*spatial);
                }
                let Some((next, rate)) = d.rates.next_above(layer, max) else {
                    continue;
                };
                let step = rate.bps().saturating_sub(cost);
                if step <= budget {
                    budget -= step;
                    targets[i] = Some((next, rate.bps()));
                    stepped = true;
                } else if had(&d.key, next) && step <= budget + slack {
                    let over = step - budget;
                    (slack, overshoot, budget) = (slack - over, overshoot + over, 0);
                    targets[i] = Some((next, rate.bps()));
                    stepped = true;
                }
            }
            if !stepped {
                break;
            }
        }
        // Spatial up-switches wait until they have fitted for UP_SWITCH_AFTER, on trial.
        let mut trial = 0u64;
        let mut switched_up = false;
        for (i, d) in demands.iter().enumerate() {
            let (Some((layer, cost)), Some(Target::Layer(old))) =
                (targets[i], self.last.get(&d.key))
            else {
                self.up_since.remove(&d.key);
                continue;
            };
            if layer.spatial <= old.spatial {
                // A trial that no longer fits failed: the link could not carry it.
                if self.up_since.remove(&d.key).is_some() && d.max.spatial > old.spatial {
                    tracing::debug!(target: "kolabmeet::bwe", spatial = old.spatial + 1, "up-switch trial failed");
                    self.backoff.entry(d.key).or_default().on_failed_trial(now);
                    self.held_until
                        .insert(d.key, (now + FAILED_TRIAL_HOLD, old.spatial));
                }
                continue;
            }
            let since = *self.up_since.entry(d.key).or_insert(now);
            let length = self
                .backoff
                .get(&d.key)
                .map_or(UP_SWITCH_AFTER, |b| b.trial_length(since, UP_SWITCH_AFTER));
            if now.saturating_duration_since(since) >= length {
                self.up_since.remove(&d.key);
                self.backoff.entry(d.key).or_default().on_up(now);
                switched_up = true;
                continue;
            }
            // Not yet: the highest layer of the old spatial layer that is received.
            let stay = d
                .rates
                .layers()
                .filter(|(l, _)| l.spatial == old.spatial && *l <= d.max)
                .last();
            if let Some((l, r)) = stay {
                budget = budget.saturating_add(cost).saturating_sub(r.bps());
                trial = trial.saturating_add(cost.saturating_sub(r.bps()));
                targets[i] = Some((l, r.bps()));
            }
        }
        // Spatial down-switches for bandwidth hold the next spatial up-switch back, longer
        // after each up-switch that was undone.
        for (i, d) in demands.iter().enumerate() {
            let new_spatial = targets[i].map(|(l, _)| l.spatial);
            if let Some(Target::Layer(old)) = self.last.get(&d.key)
                && new_spatial.is_none_or(|s| s < old.spatial)
                && d.max.spatial >= old.spatial
            {
                let hold = self
                    .backoff
                    .entry(d.key)
                    .or_default()
                    .on_down(now, self.config.up_switch_hold);
                self.held_until
                    .insert(d.key, (now + hold, new_spatial.unwrap_or(0)));
            }
        }
        let targets: Vec<(K, Target)> = demands
            .iter()
            .zip(&targets)
            .map(|(d, t)| (d.key, t.map_or(Target::Paused, |(l, _)| Target::Layer(l))))
            .collect();
        self.last = targets.iter().copied().collect();
        self.held_until.retain(|_, (until, _)| *until > now);
        self.last_estimate = Some(estimate);
        let used = (estimate.bps() - budget.min(estimate.bps())).saturating_add(overshoot);
        let smallest_step = demands
            .iter()
            .zip(&targets)
            .filter(|(d, _)| d.priority != Priority::Audio)
            .filter_map(|(d, t)| match t.1 {
                Target::Paused => d.rates.lowest().map(|(_, r)| r.bps()),
                Target::Layer(layer) => {
                    let mut max = d.max;
                    if let Some((_, spatial)) = self.held_until.get(&d.key) {
                        max.spatial = max.spatial.min(*spatial);
                    }
                    let cost = d.rates.rate(layer).map_or(0, Bitrate::bps);
                    let (_, next) = d.rates.next_above(layer, max)?;
                    Some(next.bps().saturating_sub(cost))
                }
            })
            .min();
        Allocation {
            targets,
            estimate,
            used: Bitrate(used),
            next_step: smallest_step.map(|step| Bitrate(used + step)),
            trial: Bitrate(trial),
            switched_up,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulcast webcam: 3 spatial x 3 temporal layers, ~150/500/1500 kbps on top.
    fn webcam() -> LayerRates {
        let mut v = Vec::new();
        for (s, top) in [(0u8, 150u64), (1, 500), (2, 1500)] {
            for t in 0..3u8 {
                v.push((
                    Layer::new(s, t),
                    Bitrate::kbps(top * (u64::from(t) + 2) / 4),
                ));
            }
        }
        LayerRates::new(v)
    }

    fn audio() -> LayerRates {
        LayerRates::new(vec![(Layer::new(0, 0), Bitrate::kbps(40))])
    }

    fn demand(key: u32, priority: Priority, rates: LayerRates) -> ConsumerDemand<u32> {
        ConsumerDemand {
            key,
            priority,
            rates,
            max: Layer::new(2, 2),
        }
    }

    fn target(a: &Allocation<u32>, key: u32) -> Target {
        a.targets.iter().find(|(k, _)| *k == key).unwrap().1
    }

    #[test]
    fn audio_first_and_always_then_screen_before_webcam() {
        let t0 = Instant::now();
        let mut al = LayerAllocator::new(AllocatorConfig::default());
        let demands = [
            demand(1, Priority::Webcam, webcam()),
            demand(2, Priority::Audio, audio()),
            demand(3, Priority::Screen, webcam()),
        ];
        // Nothing at all: audio still flows, video pauses.
        let a = al.allocate(t0, Bitrate(0), &demands);
        assert_eq!(target(&a, 2), Target::Layer(Layer::new(0, 0)));
        assert_eq!(target(&a, 1), Target::Paused);
        assert_eq!(target(&a, 3), Target::Paused);
        // Room for audio and one low layer: the screen share gets it.
        let a = al.allocate(t0, Bitrate::kbps(40 + 80), &demands);
        assert_eq!(target(&a, 3), Target::Layer(Layer::new(0, 0)));
        assert_eq!(target(&a, 1), Target::Paused);
        // Plenty: both at the top, once that has fitted for UP_SWITCH_AFTER (the screen
        // share moves up a spatial layer; the webcam starts at its lowest).
        let a = al.allocate(t0, Bitrate::mbps(10), &demands);
        assert_eq!(target(&a, 3), Target::Layer(Layer::new(0, 2)), "not yet");
        let a = al.allocate(t0 + UP_SWITCH_AFTER, Bitrate::mbps(10), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(2, 2)));
        assert_eq!(target(&a, 3), Target::Layer(Layer::new(2, 2)));
        assert!(a.used <= a.estimate);
    }

    #[test]
    fn steps_are_shared_round_robin_and_fit_the_estimate() {
        let t0 = Instant::now();
        let mut al = LayerAllocator::new(AllocatorConfig::default());
        let demands: Vec<_> = (0..4)
            .map(|k| demand(k, Priority::Webcam, webcam()))
            .collect();
        let a = al.allocate(t0, Bitrate::kbps(2000), &demands);
        let spatial: Vec<u8> = a
            .targets
            .iter()
            .map(|(_, t)| match t {
                Target::Layer(l) => l.spatial,
                Target::Paused => 99,
            })
            .collect();
        let (lo, hi) = (spatial.iter().min().unwrap(), spatial.iter().max().unwrap());
        assert!(hi - lo <= 1, "evenly shared: {spatial:?}");
        assert!(a.used <= Bitrate::kbps(2000), "{:?}", a.used);
        // The client's preferred layers are a ceiling.
        let mut low = demand(9, Priority::Webcam, webcam());
        low.max = Layer::new(0, 2);
        let a = al.allocate(t0, Bitrate::mbps(10), &[low]);
        assert_eq!(target(&a, 9), Target::Layer(Layer::new(0, 2)));
    }

    #[test]
    fn a_layer_it_has_is_kept_within_the_tolerance() {
        let t0 = Instant::now();
        let mut al = LayerAllocator::new(AllocatorConfig::default());
        // The top layer costs 1500 kbit/s.
        let demands = [demand(1, Priority::Webcam, webcam())];
        let a = al.allocate(t0, Bitrate::kbps(1600), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(2, 2)));
        // 1400: the layer overshoots by 7 % of the estimate: kept.
        let a = al.allocate(t0, Bitrate::kbps(1400), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(2, 2)));
        assert_eq!(a.used, Bitrate::kbps(1500));
        // 1300: by 15 %: down to the best that fits (1.5 Mbit/s x 3/4 on layer 2).
        let a = al.allocate(t0, Bitrate::kbps(1300), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(2, 1)));
        // A consumer that did not have the layer does not get it on the tolerance.
        let mut fresh = LayerAllocator::new(AllocatorConfig::default());
        let a = fresh.allocate(t0, Bitrate::kbps(1400), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(2, 1)));
    }

    #[test]
    fn hysteresis_and_the_spatial_up_switch_hold() {
        let t0 = Instant::now();
        let mut al = LayerAllocator::new(AllocatorConfig::default());
        let demands = [demand(1, Priority::Webcam, webcam())];
        assert!(al.needs_allocation(Bitrate::mbps(2)));
        let a = al.allocate(t0, Bitrate::mbps(2), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(2, 2)));
        assert!(!al.needs_allocation(Bitrate::kbps(1900)), "within the band");
        assert!(al.needs_allocation(Bitrate::kbps(1700)));
        // The estimate drops: down a spatial layer.
        let a = al.allocate(t0, Bitrate::kbps(600), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(1, 2)));
        // It comes back at once: the temporal layer may rise, the spatial one waits 10 s.
        let t1 = t0 + Duration::from_secs(3);
        let a = al.allocate(t1, Bitrate::mbps(2), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(1, 2)));
        // After the hold, the up-switch waits until it has fitted UP_SWITCH_AFTER.
        let t2 = t0 + Duration::from_secs(11);
        let a = al.allocate(t2, Bitrate::mbps(2), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(1, 2)));
        // Meanwhile the switch is on trial: the transport pads by what it would add.
        assert_eq!(a.trial, Bitrate::kbps(1500 - 500), "{a:?}");
        assert!(!a.switched_up);
        // A dip in between fails the trial: no switch, and the next one waits the hold.
        let a = al.allocate(t2 + Duration::from_secs(1), Bitrate::kbps(600), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(1, 2)));
        assert_eq!(a.trial, Bitrate(0));
        let t3 = t2 + Duration::from_secs(2);
        let a = al.allocate(t3, Bitrate::mbps(2), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(1, 2)));
        assert_eq!(a.trial, Bitrate(0), "held after the failed trial");
        let t4 = t2 + Duration::from_secs(12);
        let a = al.allocate(t4, Bitrate::mbps(2), &demands);
        assert_eq!(a.trial, Bitrate::kbps(1000), "on trial again");
        // After setbacks a trial lasts longer.
        let a = al.allocate(t4 + UP_SWITCH_AFTER, Bitrate::mbps(2), &demands);
        assert_eq!(a.trial, Bitrate::kbps(1000), "a long trial after a setback");
        let t4 = t4 + crate::allocation::up_switch_backoff::LONG_TRIAL - UP_SWITCH_AFTER;
        let a = al.allocate(t4 + UP_SWITCH_AFTER, Bitrate::mbps(2), &demands);
        assert_eq!(target(&a, 1), Target::Layer(Layer::new(2, 2)));
        assert!(a.switched_up);
        assert_eq!(a.trial, Bitrate(0));
        // Undone 1 s later: the hold doubles (20 s).
        let t5 = t4 + UP_SWITCH_AFTER + Duration::from_secs(1);
        al.allocate(t5, Bitrate::kbps(600), &demands);
        let a = al.allocate(t5 + Duration::from_secs(15), Bitrate::mbps(2), &demands);
        assert_eq!(a.trial, Bitrate(0), "still held 15 s later");
        let a = al.allocate(t5 + Duration::from_secs(21), Bitrate::mbps(2), &demands);
        assert_eq!(a.trial, Bitrate::kbps(1000), "on trial after 20 s");
        al.forget(1);
        assert!(al.last.is_empty() && al.held_until.is_empty());
    }

    /// A video that had a layer keeps its lowest while the estimate dips for less than
    /// PAUSE_AFTER, and is paused when the dip lasts.
    #[test]
    fn a_dip_does_not_pause_a_video_that_a_lasting_shortfall_does() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut al = LayerAllocator::new(AllocatorConfig::default());
        let demands = [
            demand(1, Priority::Audio, audio()),
            demand(2, Priority::Webcam, webcam()),
            demand(3, Priority::Webcam, webcam()),
        ];
        let both = Bitrate::kbps(40 + 2 * 80);
        let a = al.allocate(t0, both, &demands);
        assert_eq!(target(&a, 3), Target::Layer(Layer::new(0, 0)));
        // A dip to audio and one low layer, 800 ms long: both webcams keep their lowest.
        let dip = Bitrate::kbps(40 + 80);
        for k in 1..=4 {
            let a = al.allocate(t0 + ms(200 * k), dip, &demands);
            assert_eq!(target(&a, 3), Target::Layer(Layer::new(0, 0)), "{k}");
        }
        al.allocate(t0 + ms(1000), both, &demands);
        // A second dip that lasts: paused once it has for PAUSE_AFTER, and not before.
        let start = t0 + ms(2000);
        let a = al.allocate(start, dip, &demands);
        assert_eq!(target(&a, 3), Target::Layer(Layer::new(0, 0)));
        let a = al.allocate(start + ms(1900), dip, &demands);
        assert_eq!(target(&a, 3), Target::Layer(Layer::new(0, 0)));
        let a = al.allocate(start + super::super::PAUSE_AFTER, dip, &demands);
        assert_eq!(target(&a, 2), Target::Layer(Layer::new(0, 0)));
        assert_eq!(target(&a, 3), Target::Paused);
        // Paused, it stays paused while short (no overshoot for it any more).
        let a = al.allocate(start + ms(2500), dip, &demands);
        assert_eq!(target(&a, 3), Target::Paused);
        assert!(a.used <= a.estimate);
    }

    #[test]
    fn a_thousand_consumers_never_exceed_the_estimate_with_video() {
        let t0 = Instant::now();
        let mut al = LayerAllocator::new(AllocatorConfig::default());
        let demands: Vec<_> = (0..1000)
            .map(|k| {
                demand(
                    k,
                    if k % 3 == 0 {
                        Priority::Screen
                    } else {
                        Priority::Webcam
                    },
                    webcam(),
                )
            })
            .collect();
        for kbps in [0u64, 100, 1000, 10_000, 100_000, 1_000_000] {
            let a = al.allocate(t0, Bitrate::kbps(kbps), &demands);
            assert!(a.used <= a.estimate, "{kbps}: {:?}", a.used);
        }
        // Falling estimates: what consumers keep overshoots by at most the tolerance, once
        // the videos that no longer fit have been short for PAUSE_AFTER (until then each
        // keeps its lowest layer).
        let lowest_all = 1000 * webcam().lowest().unwrap().1.bps();
        let mut t = t0;
        for kbps in [1_000_000u64, 900_000, 800_000, 100_000, 1000, 900, 0] {
            let a = al.allocate(t, Bitrate::kbps(kbps), &demands);
            assert!(
                a.used.bps() as f64 <= a.estimate.bps() as f64 * 1.1 + lowest_all as f64,
                "{kbps}: {:?}",
                a.used
            );
            t += super::super::PAUSE_AFTER;
            let a = al.allocate(t, Bitrate::kbps(kbps), &demands);
            assert!(
                a.used.bps() as f64 <= a.estimate.bps() as f64 * 1.1 + 1.0,
                "{kbps}: {:?}",
                a.used
            );
        }
    }
}
