//! A router's side of rooms over several workers (issue 16). The origin worker of a
//! producer owns its mirrors: it knows the room's other workers
//! ([`Router::set_room_workers`], told by the engine), sends each a [`PipeMessage::Mirror`]
//! when the producer appears or the worker joins the room, then its packets (see
//! `forwarding.rs`), sender reports, pauses and its close, in order on one pipe. On a far
//! worker the mirror is a producer like any other; its key frame requests travel back.

use std::time::{Duration, Instant};

use super::egress::Egress;
use super::producer::{MirrorTarget, Producer, ProducerInit, ProducerOrigin};
use super::room::Router;
use crate::arena::ProducerKey;
use crate::ids::ProducerId;
use crate::media_engine::EngineError;
use crate::mirror::{MirrorSpec, PipeMessage, Want, WorkerIndex};
use crate::ortc::RtpCapabilities;
use crate::rtp_stream::KeyFrameRequestManager;

/// How long a stream a far consumer asked a key frame of is wanted whole, so that the
/// consumer can switch onto it when it comes.
pub const WANT_REQUESTED_FOR: Duration = Duration::from_secs(2);

impl Router {
    /// The room's workers are `workers` (this one among them): each producer of this
    /// worker's is mirrored on every other one, a worker that joined getting a mirror of
    /// each first; a worker that left gets nothing more, and the mirrors of its producers
    /// here close (their consumers' peers get `consumerClosed`).
    pub fn set_room_workers(&mut self, workers: &[WorkerIndex], egress: &mut Egress<'_>) {
        let others: Vec<WorkerIndex> = workers
            .iter()
            .copied()
            .filter(|w| *w != self.worker)
            .collect();
        let own: Vec<ProducerKey> = self.producers.keys_where(|p| !p.is_mirror());
        for pk in own {
            if let Some(p) = self.producers.get_mut(pk) {
                p.mirrors.retain(|m| others.contains(&m.worker));
            }
            for &w in &others {
                self.mirror_on(pk, w, egress);
            }
        }
        let orphans: Vec<ProducerKey> = self.producers.keys_where(|p| match p.origin {
            ProducerOrigin::Mirror(o) => !others.contains(&o),
            ProducerOrigin::Transport(_) => false,
        });
        for pk in orphans {
            self.close_producer(pk, egress);
        }
        self.mirror_workers = others;
    }

    /// Whether the room is on other workers too.
    pub fn is_spread(&self) -> bool {
        !self.mirror_workers.is_empty()
    }

    /// The room's workers as this router knows them (this one first).
    pub fn room_workers(&self) -> Vec<WorkerIndex> {
        std::iter::once(self.worker)
            .chain(self.mirror_workers.iter().copied())
            .collect()
    }

    /// A producer of this worker's appeared: mirrored on the room's other workers.
    pub(super) fn announce_producer(&mut self, pk: ProducerKey, egress: &mut Egress<'_>) {
        for w in self.mirror_workers.clone() {
            self.mirror_on(pk, w, egress);
        }
    }

    /// Mirrors producer `pk` on worker `to` unless it is already: the mirror's
    /// parameters, then the sender's last reports, then its packets as they come.
    fn mirror_on(&mut self, pk: ProducerKey, to: WorkerIndex, egress: &mut Egress<'_>) {
        let (room, origin) = (self.room, self.worker);
        let Some(p) = self.producers.get_mut(pk) else {
            return;
        };
        if p.is_mirror() || p.mirrors.iter().any(|m| m.worker == to) {
            return;
        }
        let spec = MirrorSpec {
            room,
            producer: p.id,
            peer: p.peer,
            kind: p.kind,
            rtp_parameters: p.rtp_parameters.clone(),
            consumable: p.consumable.clone(),
            mapping: p.mapping().clone(),
            source: p.source,
            paused: p.paused,
            origin,
        };
        if egress
            .pipes
            .push(to, PipeMessage::Mirror(Box::new(spec)))
            .is_err()
        {
            return;
        }
        p.mirrors.push(MirrorTarget {
            worker: to,
            want: Want::default(),
        });
        for (i, s) in p.streams.iter().enumerate() {
            if let Some((ntp, rtp, at)) = s.stats.last_sr {
                let message = PipeMessage::SenderReport {
                    room,
                    producer: p.id,
                    stream: i as u8,
                    ntp,
                    rtp,
                    at,
                };
                let _ = egress.pipes.push(to, message);
            }
        }
    }

    /// Tells a producer's mirrors that it was paused or resumed.
    pub(super) fn tell_mirrors(p: &Producer, room: crate::ids::RoomId, egress: &mut Egress<'_>) {
        for to in p.mirrors.iter().map(|m| m.worker) {
            let message = PipeMessage::Paused {
                room,
                producer: p.id,
                paused: p.paused,
            };
            let _ = egress.pipes.push(to, message);
        }
    }

    /// Creates the mirror of a producer of another worker (`spec`), with its id.
    fn create_mirror(
        &mut self,
        spec: MirrorSpec,
        caps: &RtpCapabilities,
    ) -> Result<(), EngineError> {
        if self.producer_ids.contains_key(&spec.producer) {
            return Err(EngineError::Refused(
                crate::media_engine::Refusal::ProducerExists,
            ));
        }
        let id = spec.producer;
        let mut producer = Producer::new(ProducerInit {
            id,
            peer: spec.peer,
            origin: ProducerOrigin::Mirror(spec.origin),
            kind: spec.kind,
            rtp_parameters: spec.rtp_parameters,
            consumable: spec.consumable,
            mapping: spec.mapping,
            router: caps,
            paused: spec.paused,
            source: spec.source,
        });
        // Its requests go to the origin's manager, which applies the delay: here only
        // coalesced while one is pending (and retried once), so that a far receiver's
        // requests reach the origin as a local receiver's would.
        producer.key_frames = KeyFrameRequestManager::new(Duration::ZERO);
        let key = self.producers.insert(producer);
        self.producer_ids.insert(id, key);
        tracing::debug!(target: "kolabmeet::producer", room = %self.room, producer = %id, origin = %spec.origin, "mirror created");
        Ok(())
    }

    /// The mirrors here of worker `origin`'s producers.
    pub fn mirrors_from(&self, origin: WorkerIndex) -> Vec<ProducerKey> {
        self.producers
            .keys_where(|p| p.origin == ProducerOrigin::Mirror(origin))
    }

    /// Mirrored producers here (`dumpWorkers`).
    pub fn mirror_count(&self) -> usize {
        self.producers.values().filter(|p| p.is_mirror()).count()
    }

    /// A message of another worker about a producer of this room: a mirror's creation,
    /// packet, sender report, pause or close here, or a key frame request for a producer
    /// of this worker's. `false` when it names no such producer (closed meanwhile:
    /// dropped).
    pub fn on_pipe_message(
        &mut self,
        now: Instant,
        message: &mut PipeMessage,
        caps: &RtpCapabilities,
        egress: &mut Egress<'_>,
    ) -> bool {
        match message {
            PipeMessage::Mirror(spec) => {
                let spec = (**spec).clone();
                match self.create_mirror(spec, caps) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::debug!(target: "kolabmeet::producer", error = %e, "mirror not created");
                        false
                    }
                }
            }
            PipeMessage::Rtp {
                producer,
                stream,
                packet,
                ..
            } => {
                let Some(pk) = self.mirror_of(*producer) else {
                    return false;
                };
                self.on_piped_rtp(now, pk, usize::from(*stream), packet, egress)
            }
            PipeMessage::Notice {
                producer,
                stream,
                len,
                spatial,
                temporal,
                ..
            } => {
                let Some(pk) = self.mirror_of(*producer) else {
                    return false;
                };
                let Some(s) = self
                    .producers
                    .get_mut(pk)
                    .and_then(|p| p.streams.get_mut(usize::from(*stream)))
                else {
                    return false;
                };
                s.on_media(now, usize::from(*len), *spatial, *temporal);
                // A consumer here may want this stream now (its own stopped): it asks
                // for it, as a packet it does not take would make it ask.
                self.retarget_consumers(now, pk, egress);
                true
            }
            PipeMessage::Want {
                producer,
                from,
                want,
                ..
            } => {
                let Some(p) = self
                    .producer_ids
                    .get(producer)
                    .and_then(|pk| self.producers.get_mut(*pk))
                    .filter(|p| !p.is_mirror())
                else {
                    return false;
                };
                if let Some(m) = p.mirrors.iter_mut().find(|m| m.worker == *from) {
                    m.want = *want;
                }
                true
            }
            PipeMessage::Paused {
                producer, paused, ..
            } => {
                let Some(pk) = self.mirror_of(*producer) else {
                    return false;
                };
                self.set_producer_paused(now, pk, *paused, egress);
                true
            }
            PipeMessage::Closed { producer, .. } => {
                let Some(pk) = self.mirror_of(*producer) else {
                    return false;
                };
                self.close_producer(pk, egress);
                true
            }
            PipeMessage::SenderReport {
                producer,
                stream,
                ntp,
                rtp,
                at,
                ..
            } => {
                let Some(s) = self
                    .mirror_of(*producer)
                    .and_then(|pk| self.producers.get_mut(pk))
                    .and_then(|p| p.streams.get_mut(usize::from(*stream)))
                else {
                    return false;
                };
                s.stats.on_sender_report(*at, *ntp, *rtp);
                true
            }
            PipeMessage::KeyFrameRequest {
                producer, stream, ..
            } => {
                let Some(pk) = self.producer_ids.get(producer).copied() else {
                    return false;
                };
                if self.producers.get(pk).is_none_or(Producer::is_mirror) {
                    return false;
                }
                self.request_key_frame(now, pk, usize::from(*stream), egress);
                true
            }
        }
    }

    /// Tells the origin of mirror `pk` what this worker wants of it, if that changed:
    /// whether it has consumers, and the streams any active one of them forwards,
    /// targets, or asked a key frame of within [`WANT_REQUESTED_FOR`] (issue 16: "only
    /// what is watched crosses").
    pub(super) fn update_want(&mut self, now: Instant, pk: ProducerKey, egress: &mut Egress<'_>) {
        let Some(p) = self.producers.get(pk) else {
            return;
        };
        let ProducerOrigin::Mirror(origin) = p.origin else {
            return;
        };
        let mut want = Want {
            consumers: !p.consumers.is_empty(),
            streams: 0,
        };
        let mut take = |s: Option<usize>| {
            if let Some(s) = s {
                want.add(s);
            }
        };
        for c in p.consumers.iter().filter_map(|ck| self.consumers.get(*ck)) {
            if c.is_active() {
                take(c.current_layer());
                take(c.target_stream());
            }
        }
        for (s, at) in p.mirror_want.requested.iter().enumerate() {
            if at.is_some_and(|at| now.saturating_duration_since(at) < WANT_REQUESTED_FOR) {
                take(Some(s));
            }
        }
        if p.mirror_want.sent == Some(want) {
            return;
        }
        let message = PipeMessage::Want {
            room: self.room,
            producer: p.id,
            from: self.worker,
            want,
        };
        if egress.pipes.push(origin, message).is_ok()
            && let Some(p) = self.producers.get_mut(pk)
        {
            p.mirror_want.sent = Some(want);
        }
    }

    /// Tells the origin of mirror `pk`, which has no consumer here any more, that nothing
    /// of it needs to cross.
    pub(super) fn update_want_without_consumers(
        &mut self,
        pk: ProducerKey,
        egress: &mut Egress<'_>,
    ) {
        let Some(p) = self.producers.get_mut(pk) else {
            return;
        };
        let ProducerOrigin::Mirror(origin) = p.origin else {
            return;
        };
        let want = Want::default();
        if p.mirror_want.sent == Some(want) {
            return;
        }
        p.mirror_want.requested = [None; 8];
        let message = PipeMessage::Want {
            room: self.room,
            producer: p.id,
            from: self.worker,
            want,
        };
        if egress.pipes.push(origin, message).is_ok() {
            p.mirror_want.sent = Some(want);
        }
    }

    /// [`Router::update_want`] for every mirror here (after its timers: wants that went
    /// down, consumers that left).
    pub(super) fn update_wants(&mut self, now: Instant, egress: &mut Egress<'_>) {
        for pk in self.producers.keys_where(Producer::is_mirror) {
            self.update_want(now, pk, egress);
        }
    }

    /// Brings the targets of mirror `pk`'s consumers that forward something up to date
    /// with its streams and asks for the key frames a consumer waits for (whole packets
    /// do so in `forwarding.rs`; notices do it here). One that has not started yet waits
    /// for the stream it asked for (the allocation's rounds move it if that never
    /// comes): a notice of another stream arriving first must not turn it away.
    fn retarget_consumers(&mut self, now: Instant, pk: ProducerKey, egress: &mut Egress<'_>) {
        let Some(p) = self.producers.get(pk) else {
            return;
        };
        let mut wanted: Vec<usize> = Vec::new();
        for &ck in &p.consumers {
            if let Some(c) = self
                .consumers
                .get_mut(ck)
                .filter(|c| c.current_layer().is_some())
            {
                c.update_target(now, &p.streams);
                if let Some(s) = c.waiting_for_key_frame()
                    && !wanted.contains(&s)
                {
                    wanted.push(s);
                }
            }
        }
        for s in wanted {
            self.request_key_frame(now, pk, s, egress);
        }
    }

    /// Asks this worker's own producer `producer` for a key frame of `stream` (a packet
    /// of it was lost on its way to a mirror).
    pub fn request_key_frame_of(
        &mut self,
        now: Instant,
        producer: ProducerId,
        stream: usize,
        egress: &mut Egress<'_>,
    ) {
        if let Some(pk) = self
            .producer_ids
            .get(&producer)
            .copied()
            .filter(|pk| self.producers.get(*pk).is_some_and(|p| !p.is_mirror()))
        {
            self.request_key_frame(now, pk, stream, egress);
        }
    }

    /// The key of the mirror `producer`.
    pub fn mirror_of(&self, producer: ProducerId) -> Option<ProducerKey> {
        let pk = *self.producer_ids.get(&producer)?;
        self.producers.get(pk)?.is_mirror().then_some(pk)
    }
}
