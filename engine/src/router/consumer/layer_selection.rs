//! Which layers a consumer forwards (issue 9), as the router and the bandwidth allocation
//! see it: what its transport's allocation gives it, the stream and layers its policy
//! targets and forwards, whether it waits for a key frame, and what it reports as
//! forwarded. The choices themselves are its layer policy's ([`super::layer_policy`]).

use std::time::Instant;

use super::{Allocated, Consumer, ConsumerType};
use crate::ortc::MediaKind;
use crate::router::recv_stream::RecvStream;

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
        self.policy.get_mut().set_allocated(allocated);
        let paused_now = allocated == Allocated::Paused;
        let changed = paused_now != (before == Allocated::Paused);
        if changed && paused_now {
            self.reset_layer();
            self.policy.get_mut().clear_target();
            self.reported_layers = None;
        }
        changed
    }

    /// Whether it can drop temporal layers (a VP8 consumer), so that the allocation may
    /// give it part of an encoding.
    pub fn filters_temporal_layers(&self) -> bool {
        self.policy.get().filters_temporal_layers()
    }

    /// Whether it selects spatial and temporal layers within one encoding (SVC), so that
    /// the allocation offers each of them.
    pub fn is_svc(&self) -> bool {
        self.consumer_type() == ConsumerType::Svc
    }

    /// The spatial layer it forwards now: the SVC filter's, else the simulcast stream's.
    pub fn current_spatial_layer(&self) -> Option<usize> {
        self.policy.get().current_spatial_layer()
    }

    /// The temporal layer it forwards now (VP8 with temporal layer ids, or SVC).
    pub fn current_temporal_layer(&self) -> Option<u8> {
        self.policy.get().current_temporal_layer()
    }

    /// The temporal layer the allocation limits it to, when it does (below `top`, the
    /// highest the encoding has); what `consumerLayersChanged` reports, so that the
    /// filter climbing back after each key frame (temporal layer 0) is not reported.
    pub fn limited_temporal_layer(&self, top: u8) -> u8 {
        match self.allocated {
            Allocated::UpTo(_, t) if self.filters_temporal_layers() || self.is_svc() => t.min(top),
            _ => top,
        }
    }

    /// The spatial layer the allocation lets it forward (`None`: paused for bandwidth):
    /// the SVC filter's target, else the simulcast stream.
    pub fn target_layer(&self) -> Option<usize> {
        self.policy.get().target_spatial_layer()
    }

    /// The stream (simulcast encoding) its policy targets.
    pub fn target_stream(&self) -> Option<usize> {
        self.policy.get().target_stream()
    }

    /// The layer wanted: the highest active stream up to what the allocation gives it
    /// (any active one when nothing above that arrives). Returns whether a key frame must
    /// be requested on the new target.
    pub fn update_target(&mut self, now: Instant, streams: &[RecvStream]) -> bool {
        self.policy
            .get_mut()
            .update_target(now, self.kind, self.allocated, streams)
    }

    /// The layer this consumer waits for a key frame on, if it is waiting (video that is
    /// active, has a target, and does not send it yet).
    pub fn waiting_for_key_frame(&self) -> Option<usize> {
        let policy = self.policy.get();
        let target = policy.target_stream();
        let switching = policy.current_stream() != target || policy.wants_key_frame();
        let waiting = self.kind == MediaKind::Video && self.is_active() && switching;
        target.filter(|_| waiting)
    }

    /// After a pause, a resume or a producer switch: the next packet starts afresh on a
    /// key frame (sequence and timestamps still continue).
    pub fn reset_layer(&mut self) {
        self.policy.get_mut().reset();
        self.stream.clear();
    }
}
