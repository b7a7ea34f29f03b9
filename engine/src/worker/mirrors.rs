//! A worker core's side of rooms over several workers (issue 16): the engine tells each
//! worker of a room which workers the room is on ([`WorkerCore::set_room_workers`]) and
//! which worker is gone ([`WorkerCore::worker_lost`]); the routers do the rest, and the
//! cores exchange [`PipeMessage`]s, which the driver carries between the threads
//! ([`WorkerCore::poll_pipe`] out, [`WorkerCore::handle_pipe`] in).

use std::time::Instant;

use super::core::WorkerCore;
use crate::ids::RoomId;
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
    pub fn handle_pipe(&mut self, now: Instant, mut message: PipeMessage) {
        let room = message.room();
        let packet = matches!(message, PipeMessage::Rtp { .. });
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
    }

    /// The next message for another worker, and which.
    pub fn poll_pipe(&mut self) -> Option<(WorkerIndex, PipeMessage)> {
        self.pipes.pop()
    }
}
