//! How a router shares each of its transports' outgoing bandwidth among the consumers
//! sending on it (issue 9; contract section 5, "Audio consumers get the highest priority
//! when bandwidth is shared", and section 6, "Bandwidth"): it states what each consumer
//! could forward (its producer's layers and what each costs, measured on arrival), the
//! transport's [`SendBandwidth`](crate::transport::SendBandwidth) allocates its estimate
//! over them, and each consumer is given its layer: a simulcast consumer switches on the
//! next key frame of the new layer (`consumerLayersChanged` once that has gone out); a
//! video consumer whose lowest layer does not fit is paused (`consumerLayersChanged` with
//! `null`) and starts again on a key frame once it fits. Audio is never paused.
//!
//! Decision (the contract is silent): until the receiver has reported anything
//! (transport-cc feedback or REMB), nothing is limited: an estimate that is only its start
//! value says nothing about the link, and a receiver that never reports (no congestion
//! control negotiated) would otherwise be held at the start value for ever.

use std::time::Instant;

use super::consumer::{Allocated, ConsumerType};
use super::egress::Egress;
use super::recv_stream::is_usable;
use super::room::Router;
use crate::allocation::load_shed::shed_cap;
use crate::allocation::{ConsumerDemand, Layer, LayerRates, Priority, Target};
use crate::arena::{ConsumerKey, TransportKey};
use crate::bwe::Bitrate;
use crate::media_engine::{EngineEvent, ProducerSource};
use crate::ortc::MediaKind;

impl Router {
    /// Redoes the allocation of every transport of the room that asks for it (its estimate
    /// moved past the hysteresis band, its consumers changed, or a second passed).
    pub(super) fn allocate_due(&mut self, now: Instant, egress: &mut Egress<'_>) {
        for i in 0..self.transports.len() {
            let tk = self.transports[i];
            if egress
                .transports
                .get(tk)
                .is_some_and(|t| t.consumer_count() > 0 && t.bandwidth.needs_allocation(now))
            {
                self.allocate(now, tk, egress);
            }
        }
    }

    /// Allocates transport `tk`'s estimate over its consumers and applies the result.
    pub(super) fn allocate(&mut self, now: Instant, tk: TransportKey, egress: &mut Egress<'_>) {
        let mut demands = Vec::new();
        // Consumers whose producer has no layer measured yet (just started): they follow
        // the highest layer that arrives until the next allocation has rates.
        let mut unmeasured = Vec::new();
        let mut desired = 0u64;
        // What the worker's overload shed leaves each consumer (issue 16).
        let mut caps: Vec<(ConsumerKey, (u8, u8))> = Vec::new();
        for (ck, c) in self.consumers.iter() {
            if c.transport != tk || !c.is_active() {
                continue;
            }
            let Some(p) = self.producers.get(c.producer) else {
                continue;
            };
            let priority = match (c.kind, p.source) {
                (MediaKind::Audio, _) => Priority::Audio,
                (_, ProducerSource::Screen) => Priority::Screen,
                _ => Priority::Webcam,
            };
            let (layers, top_spatial, top_temporal) = offered_layers(c, p, priority, now);
            desired += layers.last().map_or(0, |(_, r)| r.bps());
            if layers.is_empty() {
                unmeasured.push(ck);
            }
            let top = match c.consumer_type() {
                ConsumerType::Simulcast => p.streams.len().saturating_sub(1) as u8,
                ConsumerType::Svc => top_spatial,
                ConsumerType::Simple => 0,
            };
            demands.push(ConsumerDemand {
                key: ck,
                priority,
                rates: LayerRates::new(layers),
                max: Layer::new(top, top_temporal),
            });
            if let Some(cap) = shed_cap(egress.shed, priority, top, top_temporal) {
                caps.push((ck, cap));
            }
        }
        let Some(transport) = egress.transports.get_mut(tk) else {
            return;
        };
        let heard = transport.bandwidth.heard_from_receiver();
        let allocation = transport
            .bandwidth
            .allocate(now, &demands, Bitrate(desired));
        tracing::trace!(target: "kolabmeet::bwe", estimate = %allocation.estimate, used = %allocation.used, desired, consumers = demands.len(), "allocation");
        for (ck, target) in allocation.targets {
            let Some(c) = self.consumers.get_mut(ck) else {
                continue;
            };
            let allocated = match target {
                _ if !heard => Allocated::Unknown,
                Target::Layer(_) if unmeasured.contains(&ck) => Allocated::Unknown,
                Target::Layer(l) => Allocated::UpTo(usize::from(l.spatial), l.temporal),
                Target::Paused => Allocated::Paused,
            };
            // Under overload, never above the shed cap (and never paused for it).
            let allocated = match (allocated, caps.iter().find(|(k, _)| *k == ck)) {
                (Allocated::Paused, _) | (_, None) => allocated,
                (Allocated::Unknown, Some((_, (s, t)))) => Allocated::UpTo(usize::from(*s), *t),
                (Allocated::UpTo(s, t), Some((_, (cs, ct)))) => {
                    Allocated::UpTo(s.min(usize::from(*cs)), t.min(*ct))
                }
            };
            if c.set_allocated(allocated) {
                if allocated == Allocated::Paused {
                    tracing::debug!(target: "kolabmeet::bwe", consumer = %c.id, estimate = %allocation.estimate, "video paused: its lowest layer does not fit");
                    egress.events.push_back(EngineEvent::ConsumerLayersChanged {
                        peer: c.peer,
                        consumer: c.id,
                        layers: None,
                    });
                } else {
                    tracing::debug!(target: "kolabmeet::bwe", consumer = %c.id, estimate = %allocation.estimate, "video resumed: its lowest layer fits");
                }
            }
        }
        self.request_key_frames_for_targets(now, tk, egress);
    }

    /// After an allocation: every consumer of `tk` whose target changed asks its
    /// producer for a key frame on the new layer (the switch happens on its arrival).
    fn request_key_frames_for_targets(
        &mut self,
        now: Instant,
        tk: TransportKey,
        egress: &mut Egress<'_>,
    ) {
        let mut wanted: Vec<ConsumerKey> = Vec::new();
        for (ck, c) in self.consumers.iter_mut() {
            if c.transport != tk {
                continue;
            }
            let Some(p) = self.producers.get(c.producer) else {
                continue;
            };
            if c.update_target(now, &p.streams) && c.waiting_for_key_frame().is_some() {
                wanted.push(ck);
            }
        }
        for ck in wanted {
            self.request_key_frame_for(now, ck, egress);
        }
    }
}

/// The layers a consumer could forward and what each costs, lowest first, with the highest
/// spatial and temporal layer among them.
///
/// Each usable encoding (simulcast), or each spatial layer that arrives (SVC, whose
/// spatial layer costs include the ones below), and within it each temporal layer a
/// consumer that can drop temporal layers could stop at. A webcam's frame rate comes
/// before its resolution: only its lowest encoding or spatial layer is offered in
/// temporal parts (the others whole); for a screen share the resolution comes first, and
/// every temporal layer is a step. A layer that costs at least as much as a higher one
/// (Chromium's lowest simulcast encoding can take more than the next one) is never worth
/// forwarding instead of it and is left out, once the higher one's rate has been measured
/// over a whole window (a layer that just started looks cheap while its rate ramps up).
fn offered_layers(
    c: &super::consumer::Consumer,
    p: &super::producer::Producer,
    priority: Priority,
    now: Instant,
) -> (Vec<(Layer, Bitrate)>, u8, u8) {
    // (spatial index, cumulative temporal costs, rate measured over a whole window).
    let encodings: Vec<(u8, Vec<u64>, bool)> = if c.is_svc() {
        let Some(s) = p.streams.first().filter(|_| is_usable(&p.streams, 0, now)) else {
            return (Vec::new(), 0, 0);
        };
        let scale = s.cost_scale(now);
        let costs: Vec<Vec<u64>> = s
            .layer_costs(now)
            .into_iter()
            .map(|row| row.into_iter().map(|c| scaled(c, scale)).collect())
            .collect();
        let settled = s.rate_settled(now);
        let mut out: Vec<(u8, Vec<u64>, bool)> = Vec::new();
        for (i, row) in costs.iter().enumerate() {
            // A spatial layer that brings nothing of its own does not arrive.
            let below = i.checked_sub(1).and_then(|b| costs[b].last().copied());
            let whole = row.last().copied().unwrap_or(0);
            if whole == 0 || below.is_some_and(|b| whole <= b) {
                continue;
            }
            out.push((i as u8, row.clone(), settled));
        }
        out
    } else {
        let temporal = c.filters_temporal_layers();
        p.streams
            .iter()
            .enumerate()
            .filter(|(i, _)| is_usable(&p.streams, *i, now))
            .map(|(i, s)| {
                let rates = if temporal {
                    s.temporal_layer_rates(now)
                } else {
                    Vec::new()
                };
                let rates = if rates.len() > 1 {
                    rates
                } else {
                    vec![u64::from(s.rate.rate(now))]
                };
                let scale = s.cost_scale(now);
                let rates = rates.into_iter().map(|r| scaled(r, scale)).collect();
                (i as u8, rates, s.rate_settled(now))
            })
            .collect()
    };
    let mut layers: Vec<(Layer, Bitrate)> = Vec::new();
    let mut top_temporal = 0u8;
    let mut top_spatial = 0u8;
    let mut lowest = true;
    for (i, rates, _) in &encodings {
        let parts = priority != Priority::Webcam || lowest;
        lowest = false;
        top_spatial = top_spatial.max(*i);
        if rates.len() > 1 && !parts {
            let top = (rates.len() - 1) as u8;
            let whole = rates.last().copied().unwrap_or(0).max(1);
            layers.push((Layer::new(*i, top), Bitrate(whole)));
            top_temporal = top_temporal.max(top);
        } else if rates.len() > 1 {
            for (t, r) in rates.iter().enumerate() {
                layers.push((Layer::new(*i, t as u8), Bitrate((*r).max(1))));
            }
            top_temporal = top_temporal.max((rates.len() - 1) as u8);
        } else {
            let rate = rates.first().copied().unwrap_or(0).max(1);
            layers.push((Layer::new(*i, 0), Bitrate(rate)));
        }
    }
    // An encoding without temporal layers is whole at temporal layer 0: make it whole at
    // every temporal layer the others have, so the order stays by cost.
    if top_temporal > 0 {
        let whole: Vec<(Layer, Bitrate)> = layers
            .iter()
            .filter(|(l, _)| {
                l.temporal == 0
                    && !layers
                        .iter()
                        .any(|(m, _)| m.spatial == l.spatial && m.temporal > 0)
            })
            .copied()
            .collect();
        for (l, r) in whole {
            layers.retain(|(m, _)| *m != l);
            layers.push((Layer::new(l.spatial, top_temporal), r));
        }
    }
    layers.sort_by_key(|(l, _)| *l);
    let settled = |spatial: u8| encodings.iter().any(|(i, _, s)| *i == spatial && *s);
    let layers = cheaper_than_higher(layers, settled);
    (layers, top_spatial, top_temporal)
}

/// `rate` times `scale` (at most 1: a burst counted at the stream's recent median).
fn scaled(rate: u64, scale: f64) -> u64 {
    (rate as f64 * scale.clamp(0.0, 1.0)) as u64
}

/// `layers` (lowest first) without those that cost at least as much as a higher one of a
/// spatial layer whose rate is `settled`.
fn cheaper_than_higher(
    layers: Vec<(Layer, Bitrate)>,
    settled: impl Fn(u8) -> bool,
) -> Vec<(Layer, Bitrate)> {
    let mut kept = Vec::with_capacity(layers.len());
    let mut cheapest_above = u64::MAX;
    for (l, r) in layers.into_iter().rev() {
        if r.bps() < cheapest_above {
            kept.push((l, r));
        }
        if settled(l.spatial) {
            cheapest_above = cheapest_above.min(r.bps());
        }
    }
    kept.reverse();
    kept
}

impl Router {
    /// The layers of every consumer sending on transport `tk` (console and stats).
    pub fn consumer_layer_stats(
        &self,
        tk: TransportKey,
    ) -> Vec<kolabmeet_media_types::bandwidth_stats::ConsumerLayerStats> {
        self.consumers
            .values()
            .filter(|c| c.transport == tk)
            .map(layer_stats)
            .collect()
    }
}

/// A consumer's layers, allocation and score (console and stats).
pub(super) fn layer_stats(
    c: &super::consumer::Consumer,
) -> kolabmeet_media_types::bandwidth_stats::ConsumerLayerStats {
    kolabmeet_media_types::bandwidth_stats::ConsumerLayerStats {
        consumer_id: c.id,
        kind: c.kind,
        current_layer: c.current_spatial_layer().map(|l| l as u8),
        current_temporal_layer: c.current_temporal_layer(),
        target_layer: c.target_layer().map(|l| l as u8),
        allocation: match c.allocated() {
            Allocated::Unknown => "highest".to_owned(),
            Allocated::UpTo(s, t) => format!("upTo:{s}/{t}"),
            Allocated::Paused => "paused".to_owned(),
        },
        paused: !c.is_active(),
        packets_sent: c.packets_sent,
        score: c.stream.score(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_costing_as_much_as_a_higher_one_is_not_offered() {
        let l = |s, t, kbps: u64| (Layer::new(s, t), Bitrate(kbps * 1000));
        // Chromium's lowest encoding over its next one: its top temporal layer (400) is
        // dearer than the next encoding whole (290); its lower temporal layers are not.
        let layers = vec![
            l(0, 0, 100),
            l(0, 1, 200),
            l(0, 2, 400),
            l(1, 2, 290),
            l(2, 2, 900),
        ];
        let kept = cheaper_than_higher(layers.clone(), |_| true);
        assert_eq!(
            kept,
            vec![l(0, 0, 100), l(0, 1, 200), l(1, 2, 290), l(2, 2, 900)]
        );
        // A higher layer whose rate is still ramping up prunes nothing.
        assert_eq!(cheaper_than_higher(layers.clone(), |s| s != 1), layers);
        // Costs in order: all kept.
        let ordered = vec![l(0, 0, 100), l(1, 0, 300), l(2, 0, 900)];
        assert_eq!(cheaper_than_higher(ordered.clone(), |_| true), ordered);
    }
}
