//! What goes into a worker's command queue: the control plane's commands, and the
//! engine's own about rooms over several workers (issue 16), which no client causes and
//! which are never refused (like closes, they wait in the overflow when the queue is
//! full; see `command_queue`).

use crate::ids::RoomId;
use crate::media_engine::{EngineCommand, RequestTag};
use crate::mirror::WorkerIndex;

/// One command for a worker.
#[derive(Debug)]
pub enum WorkerCommand {
    /// A command of the control plane.
    Engine(EngineCommand),
    /// `room` is on `workers` now (see `WorkerCore::set_room_workers`).
    RoomWorkers {
        /// The room.
        room: RoomId,
        /// Its workers, this one among them.
        workers: Vec<WorkerIndex>,
    },
    /// Worker `0` failed (see `WorkerCore::worker_lost`).
    WorkerLost(WorkerIndex),
}

impl WorkerCommand {
    /// The tag of a request that expects an answer.
    pub fn tag(&self) -> Option<RequestTag> {
        match self {
            WorkerCommand::Engine(c) => c.tag(),
            _ => None,
        }
    }
}

impl From<EngineCommand> for WorkerCommand {
    fn from(c: EngineCommand) -> Self {
        WorkerCommand::Engine(c)
    }
}
