//! The worker's timers (issue #4: "timers on a wheel or heap"). Transport timers: one
//! deadline per transport (the earliest of its ICE
//! consent expiry, DTLS retransmission, transport-cc feedback and abandonment timers), kept
//! ordered so that serving timers costs O(due transports · log n), not a scan of every
//! transport (a worker may host 20,000). Deadlines that move later than scheduled are
//! left in place and cost one spurious visit; deadlines that move earlier are rescheduled
//! by the core where they can (a datagram, a command, a timeout served).

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::core::{TIMER_TICK, WorkerCore};
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

impl WorkerCore {
    /// When [`WorkerCore::handle_timeout`] must next run: the earliest deadline, but not
    /// sooner than [`TIMER_TICK`] after the last run (deadlines close together are
    /// served in one run).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let earliest = self.earliest_deadline()?;
        Some(match self.last_tick {
            Some(t) => earliest.max(t + TIMER_TICK),
            None => earliest,
        })
    }

    /// The earliest deadline of every timer of the core.
    pub fn earliest_deadline(&self) -> Option<Instant> {
        [
            self.timers.next(),
            self.key_frame_timeout(),
            self.media.nack_due,
            self.media.next_report,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A transport's next deadline: ICE consent expiry, DTLS retransmission,
    /// transport-cc feedback, abandonment.
    pub(super) fn schedule(&mut self, id: TransportId) {
        let deadline = self.transports.get(&id).and_then(|e| e.poll_timeout());
        self.timers.schedule(id, deadline);
    }

    /// After media on `id`: only its transport-cc feedback deadline may have come
    /// earlier.
    pub(super) fn schedule_twcc(&mut self, id: TransportId) {
        if let Some(t) = self.transports.get(&id).and_then(|e| e.twcc_timeout()) {
            self.timers.schedule_earlier(id, t);
        }
    }

    /// Drives every timer that is due: only the transports whose deadline came.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_tick = Some(now);
        let mut due = Vec::new();
        self.timers.take_due(now, &mut due);
        for id in due {
            let Some(entry) = self.transports.get_mut(&id) else {
                continue;
            };
            entry.handle_timeout(now, &mut self.transmits);
            // It may close (DTLS over, abandoned, never connected).
            self.drain_transport(now, id);
            self.schedule(id);
        }
        self.handle_key_frame_timers(now);
        if self.media.nack_due.is_some_and(|t| t <= now) {
            self.send_nacks(now);
        }
        if self.media.next_report.is_some_and(|t| t <= now) {
            self.send_reports(now);
        }
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

    /// Issue 8: a transport asked to connect that never completes ICE and DTLS closes by
    /// itself after [`CONNECT_TIMEOUT`] and tells the control plane; one never asked to
    /// connect stays (mediasoup-client connects its receiving transport at first consume).
    #[test]
    fn transports_that_never_connect_are_abandoned() {
        use super::super::core::WorkerSettings;
        use crate::crypto::DtlsCertificate;
        use crate::ids::{PeerId, RoomId};
        use crate::media_engine::{EngineCommand, EngineEvent, EngineReply, RequestTag};
        use crate::ortc::{DtlsParameters, DtlsRole};
        use crate::transport::CONNECT_TIMEOUT;
        use rand::SeedableRng;

        let t0 = Instant::now();
        let cert = DtlsCertificate::generate().unwrap();
        let settings = WorkerSettings {
            listen_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            announced_address: "127.0.0.1".into(),
            port: 40000,
        };
        let mut core =
            WorkerCore::new(settings, cert.clone(), rand::rngs::StdRng::seed_from_u64(1));
        let (room, peer) = (RoomId::random(), PeerId::random());
        core.handle_command(t0, EngineCommand::CreateRouter { room });
        let mut ids = Vec::new();
        for tag in 0..2 {
            core.handle_command(
                t0,
                EngineCommand::CreateWebRtcTransport {
                    tag: RequestTag(tag),
                    room,
                    peer,
                    force_tcp: false,
                    producing: true,
                    consuming: true,
                },
            );
            let Some(EngineEvent::Reply {
                result: Ok(EngineReply::WebRtcTransportCreated(t)),
                ..
            }) = core.poll_event()
            else {
                panic!("no transport");
            };
            ids.push(t.id);
        }
        core.handle_command(
            t0,
            EngineCommand::ConnectWebRtcTransport {
                tag: RequestTag(9),
                peer,
                transport: ids[0],
                dtls_parameters: DtlsParameters {
                    role: DtlsRole::Client,
                    fingerprints: cert.fingerprints().to_vec(),
                },
            },
        );
        assert!(matches!(
            core.poll_event(),
            Some(EngineEvent::Reply { result: Ok(_), .. })
        ));
        let mut now = t0;
        let mut closed = Vec::new();
        while now < t0 + CONNECT_TIMEOUT + Duration::from_secs(5) {
            let Some(next) = core.poll_timeout() else {
                break; // nothing left to time
            };
            now = next.max(now + Duration::from_millis(10));
            core.handle_timeout(now);
            while let Some(e) = core.poll_event() {
                if let EngineEvent::TransportClosed { transport, .. } = e {
                    closed.push((transport, now - t0));
                }
            }
        }
        assert_eq!(closed.len(), 1, "{closed:?}");
        assert_eq!(closed[0].0, ids[0]);
        assert!(closed[0].1 >= CONNECT_TIMEOUT && closed[0].1 < CONNECT_TIMEOUT + TIMER_TICK * 2);
        assert_eq!(
            core.sizes().transports,
            1,
            "the unconnected, never asked one stays"
        );
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
