//! A worker core's side of rooms over several workers (issue 16): the engine tells the
//! origin worker of a producer which workers to mirror it on and tells those workers to
//! create the mirrors; the cores exchange [`PipeMessage`]s, which the driver carries
//! between the threads ([`WorkerCore::poll_pipe`] out, [`WorkerCore::handle_pipe`] in).

use std::time::Instant;

use super::core::WorkerCore;
use crate::ids::{ProducerId, RoomId};
use crate::media_engine::EngineError;
use crate::mirror::{MirrorSpec, PipeMessage, WorkerIndex};

impl WorkerCore {
    /// What a mirror of `producer` of `room` (one of this worker's) is made from.
    pub fn mirror_spec(&self, room: RoomId, producer: ProducerId) -> Option<MirrorSpec> {
        let router = self.routers.get(*self.rooms.get(&room)?)?;
        router.mirror_spec(producer, self.index)
    }

    /// Starts handing `producer`'s packets (and its sender's reports) to worker `to`.
    /// `false` when this worker has no such producer of its own.
    pub fn add_mirror(&mut self, room: RoomId, producer: ProducerId, to: WorkerIndex) -> bool {
        let Some(rk) = self.rooms.get(&room).copied() else {
            return false;
        };
        self.router_and_egress(rk)
            .is_some_and(|(router, mut egress)| router.add_mirror(producer, to, &mut egress))
    }

    /// Stops handing `producer`'s packets to worker `to`.
    pub fn remove_mirror(&mut self, room: RoomId, producer: ProducerId, to: WorkerIndex) {
        if let Some(router) = self
            .rooms
            .get(&room)
            .and_then(|rk| self.routers.get_mut(*rk))
        {
            router.remove_mirror(producer, to);
        }
    }

    /// Stops handing anything to worker `to` (it failed).
    pub fn remove_mirrors_to(&mut self, to: WorkerIndex) {
        for router in self.routers.values_mut() {
            router.remove_mirrors_to(to);
        }
    }

    /// Creates a mirror of another worker's producer, and the room's router here if
    /// there is none yet.
    pub fn create_mirror(&mut self, spec: MirrorSpec) -> Result<(), EngineError> {
        let rk = self.router_of_room(spec.room);
        let router = self
            .routers
            .get_mut(rk)
            .ok_or(EngineError::Refused("no router".into()))?;
        router.create_mirror(spec, &self.capabilities)
    }

    /// Closes a mirror (its producer closed, or its origin worker failed): its consumers
    /// close and their peers are told (`consumerClosed`).
    pub fn close_mirror(&mut self, room: RoomId, producer: ProducerId) {
        let Some(rk) = self.rooms.get(&room).copied() else {
            return;
        };
        if let Some((router, mut egress)) = self.router_and_egress(rk)
            && let Some(pk) = router.mirror_of(producer)
        {
            router.close_producer(pk, &mut egress);
        }
        self.schedule_router(rk);
    }

    /// Closes every mirror of worker `origin`'s producers (it failed): their consumers'
    /// peers are told (`consumerClosed`).
    pub fn close_mirrors_from(&mut self, origin: WorkerIndex) {
        let rooms: Vec<(RoomId, Vec<ProducerId>)> = self
            .routers
            .values()
            .map(|r| (r.room, r.mirrors_from(origin)))
            .filter(|(_, p)| !p.is_empty())
            .collect();
        for (room, producers) in rooms {
            for p in producers {
                self.close_mirror(room, p);
            }
        }
    }

    /// Pauses or resumes a mirror as its producer was.
    pub fn set_mirror_paused(
        &mut self,
        now: Instant,
        room: RoomId,
        producer: ProducerId,
        paused: bool,
    ) {
        let Some(rk) = self.rooms.get(&room).copied() else {
            return;
        };
        if let Some((router, mut egress)) = self.router_and_egress(rk)
            && let Some(pk) = router.mirror_of(producer)
        {
            router.set_producer_paused(now, pk, paused, &mut egress);
        }
        self.schedule_router(rk);
    }

    /// A message from another worker: a mirror's packet or sender report, or a key frame
    /// request for a producer of this worker's. One naming a room or producer that is
    /// gone is dropped and counted. A packet's buffer goes to this worker's pool.
    pub fn handle_pipe(&mut self, now: Instant, mut message: PipeMessage) {
        let room = message.room();
        let handled = match self.rooms.get(&room).copied() {
            Some(rk) => {
                let handled = self
                    .router_and_egress(rk)
                    .is_some_and(|(router, mut egress)| {
                        router.on_pipe_message(now, &mut message, &mut egress)
                    });
                self.schedule_router_earlier(rk);
                handled
            }
            None => false,
        };
        if !handled {
            self.counters.pipe_dropped += 1;
        }
        if let Some(buf) = message.into_buffer() {
            self.recycle(buf);
        }
    }

    /// The next message for another worker, and which.
    pub fn poll_pipe(&mut self) -> Option<(WorkerIndex, PipeMessage)> {
        self.pipes.pop()
    }
}
