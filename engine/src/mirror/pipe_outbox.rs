//! The messages one worker's core wrote for other workers during one call (issue 16):
//! the driver hands them to the bounded queues between the threads after the call. It is
//! bounded itself: what a client's packets make the core write here cannot grow it past
//! [`PipeOutbox::CAPACITY`]; beyond, a message is dropped and counted, as a full queue
//! between the threads would drop it.

use std::collections::VecDeque;

use super::pipe_message::PipeMessage;
use super::worker_index::WorkerIndex;

/// What one call wrote for other workers.
#[derive(Debug, Default)]
pub struct PipeOutbox {
    queue: VecDeque<(WorkerIndex, PipeMessage)>,
    /// Messages dropped because the outbox was full.
    pub dropped: u64,
}

impl PipeOutbox {
    /// Messages held at most between two drains.
    pub const CAPACITY: usize = 16_384;

    /// Queues `message` for worker `to`; gives it back when the outbox is full (the
    /// caller recycles its buffer).
    pub fn push(&mut self, to: WorkerIndex, message: PipeMessage) -> Result<(), PipeMessage> {
        if self.queue.len() >= Self::CAPACITY {
            self.dropped += 1;
            return Err(message);
        }
        self.queue.push_back((to, message));
        Ok(())
    }

    /// The oldest message and the worker it is for.
    pub fn pop(&mut self) -> Option<(WorkerIndex, PipeMessage)> {
        self.queue.pop_front()
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
