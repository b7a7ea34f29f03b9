//! A min-heap of deadlines with lazy cancellation: an entry is checked against the
//! current state when it fires, so cancelling is free and rescheduling only pushes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A deadline heap over keys of type `K`.
#[derive(Debug)]
pub struct TimerHeap<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Default for TimerHeap<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Clone> TimerHeap<K> {
    /// Schedules `key` at `at`.
    pub fn push(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// The earliest deadline.
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Removes and returns an entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        if self.peek()? <= now {
            self.heap.pop().map(|Reverse(e)| e)
        } else {
            None
        }
    }

    /// Keeps only the entries for which `keep(at, key)` is true, and gives back the
    /// capacity a burst of stale entries left behind. Used to drop cancelled entries
    /// (lazy cancellation otherwise keeps them until they come due, which for long
    /// timers can be an hour).
    pub fn retain(&mut self, mut keep: impl FnMut(Instant, &K) -> bool) {
        self.heap.retain(|Reverse((at, key))| keep(*at, key));
        let floor = self.heap.len().saturating_mul(2).max(64);
        if self.heap.capacity() > floor.saturating_mul(2) {
            self.heap.shrink_to(floor);
        }
    }

    /// How many entries `live(at, key)` says are live (a console figure: O(n)).
    pub fn count(&self, mut live: impl FnMut(Instant, &K) -> bool) -> usize {
        self.heap
            .iter()
            .filter(|Reverse((at, key))| live(*at, key))
            .count()
    }

    /// Entries held (live and stale).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pops_in_order_when_due() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.push(t0 + Duration::from_secs(2), 2u32);
        h.push(t0 + Duration::from_secs(1), 1u32);
        assert_eq!(h.peek(), Some(t0 + Duration::from_secs(1)));
        assert!(h.pop_due(t0).is_none());
        assert_eq!(h.pop_due(t0 + Duration::from_secs(5)).unwrap().1, 1);
        assert_eq!(h.pop_due(t0 + Duration::from_secs(5)).unwrap().1, 2);
        assert!(h.is_empty());
    }

    #[test]
    fn retain_drops_stale_entries_and_capacity() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        for i in 0..10_000u32 {
            h.push(t0 + Duration::from_millis(u64::from(i)), i);
        }
        h.retain(|_, k| k % 1000 == 0);
        assert_eq!(h.len(), 10);
        assert!(h.heap.capacity() < 1000);
        assert_eq!(h.pop_due(t0 + Duration::from_secs(60)).unwrap().1, 0);
        assert_eq!(h.pop_due(t0 + Duration::from_secs(60)).unwrap().1, 1000);
    }
}
