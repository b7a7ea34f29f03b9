//! The router of one room (mediasoup's `Router`): it owns the room's producers and
//! consumers in slab arenas, each producer its fan-out list, and the deadlines of their
//! timers; its transports live in the worker (they are reached by key through
//! [`Egress`](super::egress::Egress)). UUIDs are translated to keys here, at the edge.
//!
//! What a router does is split by concern: control operations (`control.rs`), the
//! forwarding of RTP (`forwarding.rs`), RTCP received (`rtcp_feedback.rs`) and sent
//! (`rtcp_reports.rs`), key frame requests (`key_frames.rs`) and its timers (`timers.rs`).

use super::report_interval::ReportInterval;
use std::collections::HashMap;
use std::time::Instant;

use super::consumer::Consumer;
use super::producer::Producer;
use crate::arena::{Arena, ConsumerKey, ProducerKey, TransportKey};
use crate::ids::{ConsumerId, PeerId, ProducerId, RoomId};
use crate::mirror::WorkerIndex;

/// Table sizes of one router.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterSizes {
    /// Producers.
    pub producers: usize,
    /// Consumers.
    pub consumers: usize,
    /// Fan-out entries and UUID index entries.
    pub routes: usize,
    /// Producer streams with a key frame request pending or delayed.
    pub key_frame_timers: usize,
}

/// The router of one room; see the module documentation.
#[derive(Debug)]
pub struct Router {
    /// Its room (the engine's edge).
    pub room: RoomId,
    pub(super) producers: Arena<ProducerKey, Producer>,
    pub(super) consumers: Arena<ConsumerKey, Consumer>,
    pub(super) producer_ids: HashMap<ProducerId, ProducerKey>,
    pub(super) consumer_ids: HashMap<ConsumerId, ConsumerKey>,
    /// The room's transports (hosted by the worker).
    pub(super) transports: Vec<TransportKey>,
    /// The earliest NACK deadline of a producer stream (may be early: a visit then finds
    /// nothing due and recomputes it).
    pub(super) nack_due: Option<Instant>,
    /// The earliest deadline of a producer's key frame requests (may be early).
    pub(super) key_frame_due: Option<Instant>,
    /// When the next round of RTCP reports is due (set once media flows).
    pub(super) next_report: Option<Instant>,
    /// The randomised intervals between those rounds.
    pub(super) report_interval: ReportInterval,
    /// The worker it runs on (what its producers' mirrors name as their origin).
    pub(super) worker: WorkerIndex,
    /// The room's other workers, where its own producers are mirrored (issue 16).
    pub(super) mirror_workers: Vec<WorkerIndex>,
}

impl Router {
    /// The router of `room` on worker `worker`, empty.
    pub fn new(room: RoomId, worker: WorkerIndex) -> Self {
        Router {
            room,
            producers: Arena::new(),
            consumers: Arena::new(),
            producer_ids: HashMap::new(),
            consumer_ids: HashMap::new(),
            transports: Vec::new(),
            nack_due: None,
            key_frame_due: None,
            next_report: None,
            report_interval: ReportInterval::for_room(room),
            worker,
            mirror_workers: Vec::new(),
        }
    }

    /// A transport joined the room.
    pub fn add_transport(&mut self, t: TransportKey) {
        self.transports.push(t);
    }

    /// The room's transports.
    pub fn transports(&self) -> &[TransportKey] {
        &self.transports
    }

    /// The producer `id` if `peer` owns it.
    pub fn producer_of(&self, peer: PeerId, id: ProducerId) -> Option<ProducerKey> {
        let key = *self.producer_ids.get(&id)?;
        (self.producers.get(key)?.peer == peer).then_some(key)
    }

    /// The consumer `id` if `peer` owns it.
    pub fn consumer_of(&self, peer: PeerId, id: ConsumerId) -> Option<ConsumerKey> {
        let key = *self.consumer_ids.get(&id)?;
        (self.consumers.get(key)?.peer == peer).then_some(key)
    }

    /// A producer, by key.
    pub fn producer(&self, key: ProducerKey) -> Option<&Producer> {
        self.producers.get(key)
    }

    /// A producer, by key, writable.
    pub fn producer_mut(&mut self, key: ProducerKey) -> Option<&mut Producer> {
        self.producers.get_mut(key)
    }

    /// Table sizes.
    pub fn sizes(&self) -> RouterSizes {
        RouterSizes {
            producers: self.producers.len(),
            consumers: self.consumers.len(),
            routes: self
                .producers
                .values()
                .map(|p| p.consumers.len())
                .sum::<usize>()
                + self.producer_ids.len()
                + self.consumer_ids.len(),
            key_frame_timers: self
                .producers
                .values()
                .map(|p| p.key_frames.active_ssrcs())
                .sum(),
        }
    }
}
