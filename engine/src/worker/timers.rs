//! The worker's transport timers: one deadline per transport (the earliest of its ICE
//! consent expiry, DTLS retransmission, transport-cc feedback and abandonment timers), kept
//! ordered so that serving timers costs O(due transports · log n), not a scan of every
//! transport (a worker may host 20,000). Deadlines that move later than scheduled are
//! left in place and cost one spurious visit; deadlines that move earlier are rescheduled
//! by the core where they can (a datagram, a command, a timeout served).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::ids::TransportId;

/// Scheduled deadlines by transport, ordered by time.
#[derive(Debug, Default)]
pub struct TransportTimers {
    order: BTreeSet<(Instant, TransportId)>,
    at: HashMap<TransportId, Instant>,
}

impl TransportTimers {
    /// Sets (or clears, with `None`) the deadline of `id`.
    pub fn schedule(&mut self, id: TransportId, deadline: Option<Instant>) {
        let old = self.at.get(&id).copied();
        if old == deadline {
            return;
        }
        if let Some(t) = old {
            self.order.remove(&(t, id));
            self.at.remove(&id);
        }
        if let Some(t) = deadline {
            self.order.insert((t, id));
            self.at.insert(id, t);
        }
    }

    /// Moves the deadline of `id` earlier to `deadline` if that is earlier (or if none
    /// is set).
    pub fn schedule_earlier(&mut self, id: TransportId, deadline: Instant) {
        if self.at.get(&id).is_none_or(|t| deadline < *t) {
            self.schedule(id, Some(deadline));
        }
    }

    /// Forgets `id`.
    pub fn remove(&mut self, id: TransportId) {
        self.schedule(id, None);
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(t, _)| *t)
    }

    /// Takes every transport whose deadline is `now` or earlier (they are no longer
    /// scheduled: the caller serves and reschedules them).
    pub fn take_due(&mut self, now: Instant, out: &mut Vec<TransportId>) {
        while let Some(&(t, id)) = self.order.first() {
            if t > now {
                break;
            }
            self.order.pop_first();
            self.at.remove(&id);
            out.push(id);
        }
    }

    /// Transports scheduled.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether none is scheduled.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn serves_due_deadlines_in_order_and_reschedules() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let (a, b, c) = (
            TransportId::random(),
            TransportId::random(),
            TransportId::random(),
        );
        let mut timers = TransportTimers::default();
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
    }

    #[test]
    fn many_transports_cost_only_the_due_ones() {
        let t0 = Instant::now();
        let mut timers = TransportTimers::default();
        let ids: Vec<TransportId> = (0..20_000).map(|_| TransportId::random()).collect();
        for (i, id) in ids.iter().enumerate() {
            timers.schedule(*id, Some(t0 + Duration::from_secs(30 + i as u64 % 30)));
        }
        let mut due = Vec::new();
        timers.take_due(t0 + Duration::from_secs(29), &mut due);
        assert!(due.is_empty());
        timers.take_due(t0 + Duration::from_secs(30), &mut due);
        assert_eq!(due.len(), 20_000 / 30 + 1);
        assert_eq!(timers.len(), 20_000 - due.len());
    }
}
