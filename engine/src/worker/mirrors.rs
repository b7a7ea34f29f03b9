//! A worker core's side of rooms over several workers (issue 16): the engine tells each
//! worker of a room which workers the room is on ([`WorkerCore::set_room_workers`]) and
//! which worker is gone ([`WorkerCore::worker_lost`]); the routers do the rest, and the
//! cores exchange [`PipeMessage`]s, which the driver carries between the threads
//! ([`WorkerCore::poll_pipe`] out, [`WorkerCore::handle_pipe`] in).

use std::time::Instant;

use super::core::WorkerCore;
use crate::ids::RoomId;
use crate::media_engine::EngineCommand;
use crate::mirror::{PipeMessage, WorkerIndex};

impl WorkerCore {
    /// `room` is on `workers` (this one among them, or the room has no router here and
    /// nothing happens): its producers here are mirrored on the others, mirrors of
    /// workers no longer listed close.
    pub fn set_room_workers(&mut self, room: RoomId, workers: &[WorkerIndex]) {
        let Some(rk) = self.rooms.get(&room).copied() else {
            return;
        };
        if let Some((router, mut egress)) = self.router_and_egress(rk) {
            router.set_room_workers(workers, &mut egress);
        }
        self.schedule_router(rk);
    }

    /// Worker `lost` failed: nothing more goes to it, and the mirrors of its producers
    /// close here (their consumers' peers get `consumerClosed`).
    pub fn worker_lost(&mut self, lost: WorkerIndex) {
        let routers: Vec<_> = self.routers.keys_where(|_| true);
        for rk in routers {
            if let Some((router, mut egress)) = self.router_and_egress(rk) {
                let mut workers = router.room_workers();
                workers.retain(|w| *w != lost);
                router.set_room_workers(&workers, &mut egress);
            }
            self.schedule_router(rk);
        }
    }

    /// A message from another worker: a mirror's creation, packet, sender report, pause
    /// or close, or a key frame request for a producer of this worker's. One naming a
    /// room or producer that is gone is dropped and counted. A packet's buffer goes to
    /// this worker's pool.
    pub fn handle_pipe(&mut self, now: Instant, message: PipeMessage) {
        if let Some(m) = self.try_pipe(now, message) {
            self.drop_pipe(m);
        }
    }

    /// [`WorkerCore::handle_pipe`], but a message for a room with no router here is
    /// given back: its router may be in the command queue still (a room that spreads
    /// here is created by a command, its mirrors come through the pipes). The driver
    /// runs the commands and tries again once, then drops it ([`WorkerCore::drop_pipe`]).
    pub fn try_pipe(&mut self, now: Instant, mut message: PipeMessage) -> Option<PipeMessage> {
        let room = message.room();
        if !self.rooms.contains_key(&room) {
            return Some(message);
        }
        let packet = matches!(message, PipeMessage::Rtp { .. });
        let mirrored = match &message {
            PipeMessage::Mirror(spec) => Some(spec.producer),
            _ => None,
        };
        let handled = match self.rooms.get(&room).copied() {
            Some(rk) => {
                let handled = self.router_call(rk).is_some_and(|call| {
                    let mut egress = call.egress;
                    call.router
                        .on_pipe_message(now, &mut message, call.capabilities, &mut egress)
                });
                // A packet can only bring its router's deadlines earlier.
                if packet {
                    self.schedule_router_earlier(rk);
                } else {
                    self.schedule_router(rk);
                }
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
        if let Some(producer) = mirrored.filter(|_| handled) {
            for command in self.parked.take_for(producer) {
                self.run_parked(now, command, true);
            }
        }
        None
    }

    /// A message for another worker found its queue full and is dropped (counted by the
    /// caller). A packet's loss breaks the picture it belongs to on that worker: its
    /// producer is asked for a key frame of its stream, through its key frame request
    /// manager (throttled as any other request).
    pub fn pipe_full(&mut self, now: Instant, message: PipeMessage) {
        if let PipeMessage::Rtp {
            room,
            producer,
            stream,
            ..
        } = &message
            && let Some(rk) = self.rooms.get(room).copied()
        {
            if let Some((router, mut egress)) = self.router_and_egress(rk) {
                router.request_key_frame_of(now, *producer, usize::from(*stream), &mut egress);
            }
            self.schedule_router(rk);
        }
        if let Some(buf) = message.into_buffer() {
            self.recycle(buf);
        }
    }

    /// Drops a message from another worker that names nothing here, counted.
    pub fn drop_pipe(&mut self, message: PipeMessage) {
        self.counters.pipe_dropped += 1;
        if let Some(buf) = message.into_buffer() {
            self.recycle(buf);
        }
    }

    /// Runs a parked `consume` again now that its mirror came (`again`: parked again if
    /// it still fails so) or answers it after its wait.
    pub(super) fn run_parked(&mut self, now: Instant, command: EngineCommand, again: bool) {
        if again {
            self.handle_command(now, command);
            return;
        }
        if let Some(tag) = command.tag() {
            let producer = match &command {
                EngineCommand::Consume { producer, .. } => *producer,
                _ => return,
            };
            self.events
                .push_back(crate::media_engine::EngineEvent::Reply {
                    tag,
                    result: Err(crate::media_engine::EngineError::ProducerNotFound(producer)),
                });
        }
    }

    /// The next message for another worker, and which.
    pub fn poll_pipe(&mut self) -> Option<(WorkerIndex, PipeMessage)> {
        self.pipes.pop()
    }
}
