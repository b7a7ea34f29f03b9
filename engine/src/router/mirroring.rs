//! A router's side of rooms over several workers (issue 16): on the origin worker, which
//! workers a producer is mirrored on (each packet crosses to each once, see
//! `forwarding.rs`) and what a mirror of it is made from; on a far worker, the mirror
//! itself, a producer like any other whose packets, sender reports and key frame
//! requests travel through the pipes.

use std::time::{Duration, Instant};

use super::egress::Egress;
use super::producer::{Producer, ProducerInit, ProducerOrigin};
use super::room::Router;
use crate::ids::ProducerId;
use crate::media_engine::EngineError;
use crate::mirror::{MirrorSpec, PipeMessage, WorkerIndex};
use crate::ortc::RtpCapabilities;
use crate::rtp_stream::KeyFrameRequestManager;

impl Router {
    /// What a mirror of `producer` (one of this worker's own) is made from, `origin`
    /// being this worker.
    pub fn mirror_spec(&self, producer: ProducerId, origin: WorkerIndex) -> Option<MirrorSpec> {
        let p = self.producers.get(*self.producer_ids.get(&producer)?)?;
        if p.is_mirror() {
            return None;
        }
        Some(MirrorSpec {
            room: self.room,
            producer: p.id,
            peer: p.peer,
            kind: p.kind,
            rtp_parameters: p.rtp_parameters.clone(),
            consumable: p.consumable.clone(),
            mapping: p.mapping().clone(),
            source: p.source,
            paused: p.paused,
            origin,
        })
    }

    /// Starts handing `producer`'s packets to worker `to`, first with the sender
    /// reports the producer has had (so the mirror's consumers report the sender's
    /// mapping from their first report). `false` when it is not a producer of this
    /// worker's.
    pub fn add_mirror(
        &mut self,
        producer: ProducerId,
        to: WorkerIndex,
        egress: &mut Egress<'_>,
    ) -> bool {
        let Some(p) = self
            .producer_ids
            .get(&producer)
            .and_then(|k| self.producers.get_mut(*k))
            .filter(|p| !p.is_mirror())
        else {
            return false;
        };
        if !p.mirrors.contains(&to) {
            p.mirrors.push(to);
        }
        for (i, s) in p.streams.iter().enumerate() {
            if let Some((ntp, rtp, at)) = s.stats.last_sr {
                let message = PipeMessage::SenderReport {
                    room: self.room,
                    producer,
                    stream: i as u8,
                    ntp,
                    rtp,
                    at,
                };
                let _ = egress.pipes.push(to, message);
            }
        }
        true
    }

    /// Stops handing `producer`'s packets to worker `to` (its router there closed).
    pub fn remove_mirror(&mut self, producer: ProducerId, to: WorkerIndex) {
        if let Some(p) = self
            .producer_ids
            .get(&producer)
            .and_then(|k| self.producers.get_mut(*k))
        {
            p.mirrors.retain(|w| *w != to);
        }
    }

    /// Stops handing anything to worker `to` (it failed, or holds no router of the
    /// room any more).
    pub fn remove_mirrors_to(&mut self, to: WorkerIndex) {
        for p in self.producers.values_mut() {
            p.mirrors.retain(|w| *w != to);
        }
    }

    /// Creates the mirror of a producer of another worker (`spec`), with its id.
    pub fn create_mirror(
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

    /// The mirrors of worker `origin`'s producers (to close when it fails).
    pub fn mirrors_from(&self, origin: WorkerIndex) -> Vec<ProducerId> {
        self.producers
            .values()
            .filter(|p| p.origin == ProducerOrigin::Mirror(origin))
            .map(|p| p.id)
            .collect()
    }

    /// A message of another worker about a producer of this room: a packet or a sender
    /// report for a mirror here, or a key frame request for a producer of this worker's.
    /// `false` when it names no such producer (closed meanwhile: dropped).
    pub fn on_pipe_message(
        &mut self,
        now: Instant,
        message: &mut PipeMessage,
        egress: &mut Egress<'_>,
    ) -> bool {
        match message {
            PipeMessage::Rtp {
                producer,
                stream,
                packet,
                ..
            } => {
                let Some(pk) = self.mirror_key(*producer) else {
                    return false;
                };
                self.on_piped_rtp(now, pk, usize::from(*stream), packet, egress)
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
                    .mirror_key(*producer)
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
    pub fn mirror_of(&self, producer: ProducerId) -> Option<crate::arena::ProducerKey> {
        self.mirror_key(producer)
    }

    fn mirror_key(&self, producer: ProducerId) -> Option<crate::arena::ProducerKey> {
        let pk = *self.producer_ids.get(&producer)?;
        self.producers.get(pk)?.is_mirror().then_some(pk)
    }
}
