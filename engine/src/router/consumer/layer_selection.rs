//! Which layers a consumer forwards (issue 9): what its transport's bandwidth allocation
//! gives it, the simulcast stream it targets (the highest usable one up to that), the SVC
//! and VP8 filters' targets within a stream, whether it waits for a key frame to switch,
//! and what it reports as forwarded.

use std::time::Instant;

use super::{Allocated, Consumer, ConsumerType};
use crate::codecs::vp8_layer_filter::Vp8LayerFilter;
use crate::codecs::vp9_svc_filter::Vp9SvcFilter;
use crate::ortc::MediaKind;
use crate::router::recv_stream::{RecvStream, is_usable};

impl Consumer {
    /// What the allocation gives it.
    pub fn allocated(&self) -> Allocated {
        self.allocated
    }

    /// The layer it is to forward: [`Allocated::UpTo`] its allocated layer, or below while
    /// that one does not arrive. Returns whether the consumer was paused or resumed for
    /// bandwidth by this (a paused one starts again on a key frame).
    pub fn set_allocated(&mut self, allocated: Allocated) -> bool {
        let before = self.allocated;
        self.allocated = allocated;
        if let Some(f) = self.vp8.as_mut() {
            f.set_target(match allocated {
                Allocated::UpTo(_, t) => t,
                _ => u8::MAX,
            });
        }
        if let Some(f) = self.vp9.as_mut() {
            let (s, t) = match allocated {
                Allocated::UpTo(s, t) => (u8::try_from(s).unwrap_or(u8::MAX), t),
                _ => (u8::MAX, u8::MAX),
            };
            f.set_target(s, t);
        }
        let paused_now = allocated == Allocated::Paused;
        let changed = paused_now != (before == Allocated::Paused);
        if changed && paused_now {
            self.reset_layer();
            self.target = None;
            self.reported_layers = None;
        }
        changed
    }

    /// Whether it can drop temporal layers (a VP8 consumer), so that the allocation may
    /// give it part of an encoding.
    pub fn filters_temporal_layers(&self) -> bool {
        self.vp8.is_some()
    }

    /// Whether it selects spatial and temporal layers within one encoding (SVC), so that
    /// the allocation offers each of them.
    pub fn is_svc(&self) -> bool {
        self.vp9.is_some()
    }

    /// The spatial layer it forwards now: the SVC filter's, else the simulcast stream's.
    pub fn current_spatial_layer(&self) -> Option<usize> {
        match self.vp9.as_ref() {
            Some(f) => f.current().map(|(s, _)| usize::from(s)),
            None => self.current,
        }
    }

    /// The temporal layer it forwards now (VP8 with temporal layer ids, or SVC).
    pub fn current_temporal_layer(&self) -> Option<u8> {
        match self.vp9.as_ref() {
            Some(f) => f.current().map(|(_, t)| t),
            None => self.vp8.as_ref().and_then(Vp8LayerFilter::current),
        }
    }

    /// The temporal layer the allocation limits it to, when it does (below `top`, the
    /// highest the encoding has); what `consumerLayersChanged` reports, so that the
    /// filter climbing back after each key frame (temporal layer 0) is not reported.
    pub fn limited_temporal_layer(&self, top: u8) -> u8 {
        match self.allocated {
            Allocated::UpTo(_, t) if self.vp8.is_some() || self.vp9.is_some() => t.min(top),
            _ => top,
        }
    }

    /// The spatial layer the allocation lets it forward (`None`: paused for bandwidth):
    /// the SVC filter's target, else the simulcast stream.
    pub fn target_layer(&self) -> Option<usize> {
        let svc = self.vp9.as_ref().map(|f| usize::from(f.target().0));
        self.target.map(|t| svc.unwrap_or(t))
    }

    /// The layer wanted: the highest active stream up to what the allocation gives it
    /// (any active one when nothing above that arrives). Returns whether a key frame must
    /// be requested on the new target.
    pub fn update_target(&mut self, now: Instant, streams: &[RecvStream]) -> bool {
        let target = match (self.allocated, self.consumer_type) {
            (Allocated::Paused, _) if self.kind == MediaKind::Video => None,
            (_, ConsumerType::Simple | ConsumerType::Svc) => Some(0),
            (allocated, ConsumerType::Simulcast) => {
                let top = match allocated {
                    Allocated::UpTo(layer, _) => layer.min(streams.len().saturating_sub(1)),
                    _ => streams.len().saturating_sub(1),
                };
                (0..=top)
                    .rev()
                    .find(|&i| is_usable(streams, i, now))
                    .or_else(|| (top + 1..streams.len()).find(|&i| is_usable(streams, i, now)))
            }
        };
        let changed = target != self.target;
        self.target = target;
        // An SVC consumer's spatial switch waits for a key picture of its one stream.
        let svc_target = self.vp9.as_ref().map(Vp9SvcFilter::target);
        let svc_switch = svc_target != self.svc_target_seen
            && self.vp9.as_ref().is_some_and(Vp9SvcFilter::wants_key_frame);
        self.svc_target_seen = svc_target;
        (changed && target.is_some() && target != self.current) || (target.is_some() && svc_switch)
    }

    /// The layer this consumer waits for a key frame on, if it is waiting (video that is
    /// active, has a target, and does not send it yet).
    pub fn waiting_for_key_frame(&self) -> Option<usize> {
        let switching = self.current != self.target
            || self.vp9.as_ref().is_some_and(Vp9SvcFilter::wants_key_frame);
        let waiting = self.kind == MediaKind::Video && self.is_active() && switching;
        self.target.filter(|_| waiting)
    }

    /// After a pause, a resume or a producer switch: the next packet starts afresh on a
    /// key frame (sequence and timestamps still continue).
    pub fn reset_layer(&mut self) {
        self.current = None;
        if let Some(f) = self.vp9.as_mut() {
            f.reset();
        }
        self.stream.clear();
    }
}
