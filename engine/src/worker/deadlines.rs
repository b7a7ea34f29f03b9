//! Deadlines by key, ordered by time (issue #4: "timers on a wheel or heap"): one per
//! transport (the earliest of its ICE consent expiry, DTLS retransmission, transport-cc
//! feedback and lifetime timers) and one per router (NACKs, key frame requests, reports),
//! so that serving timers costs O(due · log n), not a scan of every transport (a worker
//! may host 20,000). A deadline that moves later than scheduled is left in place and
//! costs one early visit; one that moves earlier is rescheduled where it can (a datagram,
//! a command, a timeout served).

use std::collections::BTreeSet;
use std::time::Instant;

use crate::arena::Key;

/// Scheduled deadlines of keys of type `K`, ordered by time.
#[derive(Debug)]
pub struct Deadlines<K> {
    order: BTreeSet<(Instant, K)>,
    /// The deadline of each key, by its slot index (keys are slab indices).
    at: Vec<Option<(K, Instant)>>,
    len: usize,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            order: BTreeSet::new(),
            at: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Key + Ord> Deadlines<K> {
    fn get(&self, key: K) -> Option<Instant> {
        match self.at.get(key.index()) {
            Some(Some((k, t))) if *k == key => Some(*t),
            _ => None,
        }
    }

    /// Sets (or clears, with `None`) the deadline of `key`.
    pub fn schedule(&mut self, key: K, deadline: Option<Instant>) {
        let old = self.get(key);
        if old == deadline {
            return;
        }
        if let Some(t) = old {
            self.order.remove(&(t, key));
            self.at[key.index()] = None;
            self.len -= 1;
        }
        if let Some(t) = deadline {
            if self.at.len() <= key.index() {
                self.at.resize(key.index() + 1, None);
            }
            // A stale key of the same slot (its value gone) loses its place.
            if let Some((stale, st)) = self.at[key.index()].take() {
                self.order.remove(&(st, stale));
                self.len -= 1;
            }
            self.order.insert((t, key));
            self.at[key.index()] = Some((key, t));
            self.len += 1;
        }
    }

    /// Moves the deadline of `key` earlier to `deadline` if that is earlier (or if none
    /// is set).
    pub fn schedule_earlier(&mut self, key: K, deadline: Instant) {
        if self.get(key).is_none_or(|t| deadline < t) {
            self.schedule(key, Some(deadline));
        }
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: K) {
        self.schedule(key, None);
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(t, _)| *t)
    }

    /// Takes every key whose deadline is `now` or earlier (they are no longer scheduled:
    /// the caller serves and reschedules them).
    pub fn take_due(&mut self, now: Instant, out: &mut Vec<K>) {
        while let Some(&(t, key)) = self.order.first() {
            if t > now {
                break;
            }
            self.order.pop_first();
            self.at[key.index()] = None;
            self.len -= 1;
            out.push(key);
        }
    }

    /// Keys scheduled.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::{Arena, TransportKey};
    use std::time::Duration;

    #[test]
    fn serves_due_deadlines_in_order_and_reschedules() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut keys: Arena<TransportKey, ()> = Arena::new();
        let (a, b, c) = (keys.insert(()), keys.insert(()), keys.insert(()));
        let mut timers = Deadlines::default();
        timers.schedule(a, Some(ms(30)));
        timers.schedule(b, Some(ms(10)));
        timers.schedule(c, Some(ms(20)));
        assert_eq!(timers.next(), Some(ms(10)));
        // Later: replaced; earlier-only: kept when not earlier.
        timers.schedule(b, Some(ms(40)));
        timers.schedule_earlier(a, ms(35));
        assert_eq!(timers.next(), Some(ms(20)));
        timers.schedule_earlier(a, ms(5));
        assert_eq!(timers.next(), Some(ms(5)));
        let mut due = Vec::new();
        timers.take_due(ms(20), &mut due);
        assert_eq!(due, vec![a, c]);
        assert_eq!(timers.len(), 1);
        timers.take_due(ms(39), &mut due);
        assert_eq!(due.len(), 2, "b is not due yet");
        timers.remove(b);
        assert!(timers.is_empty());
        assert_eq!(timers.next(), None);
        timers.schedule(c, None);
        assert!(timers.is_empty());
        // A key whose value is gone is not confused with the slot's next one.
        timers.schedule(c, Some(ms(50)));
        keys.remove(c);
        let d = keys.insert(());
        timers.remove(d);
        assert_eq!(timers.len(), 1);
        timers.schedule(d, Some(ms(60)));
        assert_eq!((timers.len(), timers.next()), (1, Some(ms(60))));
    }

    #[test]
    fn many_transports_cost_only_the_due_ones() {
        let t0 = Instant::now();
        let mut keys: Arena<TransportKey, ()> = Arena::new();
        let mut timers = Deadlines::default();
        for i in 0..20_000u64 {
            let k = keys.insert(());
            timers.schedule(k, Some(t0 + Duration::from_secs(30 + i % 30)));
        }
        let mut due = Vec::new();
        timers.take_due(t0 + Duration::from_secs(29), &mut due);
        assert!(due.is_empty());
        timers.take_due(t0 + Duration::from_secs(30), &mut due);
        assert_eq!(due.len(), 20_000 / 30 + 1);
        assert_eq!(timers.len(), 20_000 - due.len());
    }
}
