//! A router's side of rooms over several workers (issue 16). The origin worker of a
//! producer owns its mirrors: it knows the room's other workers
//! ([`Router::set_room_workers`], told by the engine), sends each a [`PipeMessage::Mirror`]
//! when the producer appears or the worker joins the room, then its packets (see
//! `forwarding.rs`), sender reports, pauses and its close, in order on one pipe. On a far
//! worker the mirror is a producer like any other; its key frame requests travel back.

use std::time::{Duration, Instant};

use super::egress::Egress;
use super::producer::{Producer, ProducerInit, ProducerOrigin};
use super::room::Router;
use crate::arena::ProducerKey;
use crate::ids::ProducerId;
use crate::media_engine::EngineError;
use crate::mirror::{MirrorSpec, PipeMessage, WorkerIndex};
use crate::ortc::RtpCapabilities;
use crate::rtp_stream::KeyFrameRequestManager;

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
                p.mirrors.retain(|w| others.contains(w));
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
        if p.is_mirror() || p.mirrors.contains(&to) {
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
        p.mirrors.push(to);
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
        for &to in &p.mirrors {
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
            return Err(EngineError::Refused("the producer exists here".into()));
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

    /// The key of the mirror `producer`.
    pub fn mirror_of(&self, producer: ProducerId) -> Option<ProducerKey> {
        let pk = *self.producer_ids.get(&producer)?;
        self.producers.get(pk)?.is_mirror().then_some(pk)
    }
}
