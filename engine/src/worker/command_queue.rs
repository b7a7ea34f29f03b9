//! The control plane's side of one worker's bounded, lock-free command queue: what happens
//! when it is full.
//!
//! A command that expects an answer (it has a [`RequestTag`]) and finds the queue full is
//! refused: the caller answers it with [`EngineError::Busy`](crate::EngineError::Busy), a
//! clear failure ack that the client may retry. A command without an answer (creating or
//! closing a router, closing a peer, a producer or a consumer) must never be lost, or the
//! worker would keep media flowing for someone who left: it waits in an overflow list,
//! in order, and moves to the queue as the worker drains it. The overflow is bounded by
//! what the control plane holds (every such command names a room, peer, producer or
//! consumer it had), not by the clients' request rate.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::worker_command::WorkerCommand;
use crate::media_engine::RequestTag;

/// What [`CommandQueue::push`] did with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the worker (wake it).
    Queued,
    /// Kept in the overflow list until the worker drains its queue.
    Deferred,
    /// Refused: answer the request with `Busy`.
    Refused(RequestTag),
}

/// One worker's command queue and its overflow.
pub struct CommandQueue {
    queue: Arc<ArrayQueue<WorkerCommand>>,
    overflow: VecDeque<WorkerCommand>,
}

impl CommandQueue {
    /// Wraps the queue the worker thread pops from.
    pub fn new(queue: Arc<ArrayQueue<WorkerCommand>>) -> Self {
        Self {
            queue,
            overflow: VecDeque::new(),
        }
    }

    /// Queues `command`, first moving what the overflow holds (commands keep their order:
    /// while anything waits there, nothing overtakes it).
    pub fn push(&mut self, command: impl Into<WorkerCommand>) -> Pushed {
        let command = command.into();
        self.flush();
        if self.overflow.is_empty() {
            match self.queue.push(command) {
                Ok(()) => return Pushed::Queued,
                Err(back) => return self.defer_or_refuse(back),
            }
        }
        self.defer_or_refuse(command)
    }

    fn defer_or_refuse(&mut self, command: WorkerCommand) -> Pushed {
        match command.tag() {
            Some(tag) => Pushed::Refused(tag),
            None => {
                self.overflow.push_back(command);
                Pushed::Deferred
            }
        }
    }

    /// Moves overflow into the queue as far as it has room; `true` when something moved
    /// (wake the worker).
    pub fn flush(&mut self) -> bool {
        let mut moved = false;
        while let Some(command) = self.overflow.pop_front() {
            if let Err(back) = self.queue.push(command) {
                self.overflow.push_front(back);
                break;
            }
            moved = true;
        }
        moved
    }

    /// Commands waiting in the overflow.
    pub fn deferred(&self) -> usize {
        self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PeerId, TransportId};
    use crate::media_engine::EngineCommand;

    fn close_peer(n: u8) -> EngineCommand {
        EngineCommand::ClosePeer {
            room: uuid::Uuid::from_bytes([n; 16]).into(),
            peer: PeerId::random(),
        }
    }

    fn restart(tag: u64) -> EngineCommand {
        EngineCommand::RestartIce {
            tag: RequestTag(tag),
            peer: PeerId::random(),
            transport: TransportId::random(),
        }
    }

    /// Issue 8: a full queue refuses requests (answered `Busy`) but never loses a close.
    #[test]
    fn full_queue_refuses_requests_and_defers_closes_in_order() {
        let worker = Arc::new(ArrayQueue::new(2));
        let mut q = CommandQueue::new(worker.clone());
        assert_eq!(q.push(restart(1)), Pushed::Queued);
        assert_eq!(q.push(close_peer(1)), Pushed::Queued);
        assert_eq!(q.push(restart(2)), Pushed::Refused(RequestTag(2)));
        assert_eq!(q.push(close_peer(2)), Pushed::Deferred);
        assert_eq!(q.push(close_peer(3)), Pushed::Deferred);
        // While closes wait, a request does not overtake them: refused.
        worker.pop();
        assert_eq!(q.push(restart(3)), Pushed::Refused(RequestTag(3)));
        assert_eq!(q.deferred(), 1, "one close moved into the freed slot");
        // The worker drains; everything arrives, in order.
        let mut seen = Vec::new();
        for _ in 0..4 {
            while let Some(c) = worker.pop() {
                seen.push(c);
            }
            q.flush();
        }
        let rooms: Vec<_> = seen
            .iter()
            .map(|c| match c {
                WorkerCommand::Engine(EngineCommand::ClosePeer { room, .. }) => {
                    room.as_uuid().as_bytes()[0]
                }
                _ => 0,
            })
            .collect();
        assert_eq!(rooms, vec![1, 2, 3]);
        assert_eq!(q.deferred(), 0);
        assert_eq!(q.push(restart(4)), Pushed::Queued);
    }
}
