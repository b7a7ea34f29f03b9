//! A worker's side of the shared, bounded event queue towards the control plane: what
//! happens when it is full.
//!
//! Events that change what the control plane knows (replies to requests, closed consumers
//! and transports, paused producers) are never dropped: every one of them answers a command
//! that came through a bounded queue or ends an object that exists, so holding them back
//! is bounded by what the worker hosts. Events that a later one supersedes (a consumer's
//! score, its current layers) are dropped first, oldest first, once [`MAX_HELD`] are held,
//! and counted.

use std::collections::VecDeque;

use crossbeam_queue::ArrayQueue;

use crate::media_engine::EngineEvent;

/// Events held back while the shared queue is full, before superseded ones are dropped.
pub const MAX_HELD: usize = 65_536;

/// Events waiting for room in the shared queue.
#[derive(Default)]
pub struct EventOutbox {
    held: VecDeque<EngineEvent>,
    /// How many of `held` are superseded kinds (so a full outbox of replies is not scanned).
    droppable: usize,
    dropped: u64,
}

/// Whether a later event makes this one useless (its loss costs no state).
fn superseded_later(event: &EngineEvent) -> bool {
    matches!(
        event,
        EngineEvent::ConsumerScoreChanged { .. } | EngineEvent::ConsumerLayersChanged { .. }
    )
}

impl EventOutbox {
    /// Holds `event` behind what is already held.
    pub fn push(&mut self, event: EngineEvent) {
        if self.held.len() >= MAX_HELD {
            if superseded_later(&event) {
                self.dropped += 1;
                return;
            }
            if self.droppable > 0
                && let Some(i) = self.held.iter().position(superseded_later)
            {
                self.held.remove(i);
                self.droppable -= 1;
                self.dropped += 1;
            }
        }
        if superseded_later(&event) {
            self.droppable += 1;
        }
        self.held.push_back(event);
    }

    /// Moves held events into `queue` in order, as far as it has room; `true` when any
    /// moved (wake the control plane).
    pub fn publish(&mut self, queue: &ArrayQueue<EngineEvent>) -> bool {
        let mut moved = false;
        while let Some(event) = self.held.pop_front() {
            let droppable = superseded_later(&event);
            if let Err(back) = queue.push(event) {
                self.held.push_front(back);
                break;
            }
            if droppable {
                self.droppable -= 1;
            }
            moved = true;
        }
        moved
    }

    /// Events still held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Superseded events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConsumerId, PeerId};
    use crate::media_engine::{ConsumerScore, RequestTag};

    fn reply(n: u64) -> EngineEvent {
        EngineEvent::Reply {
            tag: RequestTag(n),
            result: Ok(crate::media_engine::EngineReply::Done),
        }
    }

    fn score() -> EngineEvent {
        EngineEvent::ConsumerScoreChanged {
            peer: PeerId::random(),
            consumer: ConsumerId::random(),
            score: ConsumerScore {
                score: 10,
                producer_score: 10,
                producer_scores: vec![10],
            },
        }
    }

    /// Issue 8: replies are never dropped, however long the control plane lags; score
    /// updates give way, and are counted.
    #[test]
    fn replies_survive_a_full_queue_scores_give_way() {
        let queue = ArrayQueue::new(4);
        let mut outbox = EventOutbox::default();
        outbox.push(score());
        for n in 0..(MAX_HELD as u64 + 10) {
            outbox.push(reply(n));
        }
        outbox.push(score());
        assert_eq!(outbox.dropped(), 2);
        assert_eq!(outbox.len(), MAX_HELD + 10, "every reply held");
        let mut tags = Vec::new();
        while !outbox.is_empty() {
            assert!(outbox.publish(&queue));
            while let Some(e) = queue.pop() {
                match e {
                    EngineEvent::Reply { tag, .. } => tags.push(tag.0),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(tags, (0..MAX_HELD as u64 + 10).collect::<Vec<_>>());
        assert!(!outbox.publish(&queue));
    }
}
