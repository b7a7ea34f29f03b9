//! `GET /metrics` (issue 10): the server's state and counters in the Prometheus text
//! format (version 0.0.4), written with `prometheus-client`. A scrape builds a fresh
//! registry from what the control plane holds and what each media worker published in its
//! last once-a-second snapshot ([`WorkerStats`]); nothing is counted through the registry
//! on the media path, so the per-packet path takes no lock and allocates nothing for it.
//!
//! Protected like the rest of the API (contract section 3): the request carries the
//! `AUTH_TOKEN` as `X-Auth-Token`, or as `Authorization: Bearer <token>` (what Prometheus
//! sends for a scrape job's `authorization: {credentials: ...}`).

use std::time::Duration;

use kolabmeet_engine::worker_stats::WorkerStats;
use kolabmeet_signaling::control::{ControlPlane, SignalingCounters};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the control loop measures about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Time the control loop spent working rather than waiting in `poll`.
    pub busy: Duration,
    /// HTTP and WebSocket connections open on the listener.
    pub connections: usize,
    /// Engine events waiting for the control loop.
    pub engine_events: usize,
}

/// Everything `/metrics` shows, gathered from the control plane.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Rooms.
    pub rooms: usize,
    /// Peers (created, connected or not).
    pub peers: usize,
    /// Signaling sockets open.
    pub sockets: usize,
    /// Signaling counters.
    pub signaling: SignalingCounters,
    /// Each running media worker's last snapshot.
    pub workers: Vec<WorkerStats>,
    /// The control loop.
    pub control_loop: LoopStats,
}

impl Snapshot {
    /// What the control plane holds now, with the loop's own figures.
    pub fn of(control: &ControlPlane, control_loop: LoopStats) -> Self {
        let (rooms, peers) = control.counts();
        Snapshot {
            rooms,
            peers,
            sockets: control.socket_count(),
            signaling: control.signaling_counters().clone(),
            workers: control.worker_stats(),
            control_loop: LoopStats {
                engine_events: control.engine_events_pending(),
                ..control_loop
            },
        }
    }
}

type Labels = Vec<(&'static str, String)>;

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn gauge_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn counter_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn seconds_family(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>> {
    let f = Family::<Labels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
    reg.register(name, help, f.clone());
    f
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes the snapshot in the Prometheus text format.
pub fn render(s: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("kolabmeet");
    gauge(&mut reg, "rooms", "Rooms open", to_i64(s.rooms));
    gauge(
        &mut reg,
        "peers",
        "Peers of all rooms (connected or not)",
        to_i64(s.peers),
    );
    gauge(
        &mut reg,
        "media_workers",
        "Media workers running",
        to_i64(s.workers.len()),
    );

    let transports = gauge_family(&mut reg, "transports", "Transports by kind and state");
    let producers = gauge_family(&mut reg, "producers", "Producers by media kind");
    let consumers = gauge_family(&mut reg, "consumers", "Consumers by media kind");
    for kind in ["webrtc", "plain"] {
        for state in ["connecting", "connected"] {
            transports
                .get_or_create(&vec![("kind", kind.into()), ("state", state.into())])
                .set(0);
        }
    }
    for kind in ["audio", "video"] {
        producers.get_or_create(&vec![("kind", kind.into())]).set(0);
        consumers.get_or_create(&vec![("kind", kind.into())]).set(0);
    }
    for w in &s.workers {
        for t in &w.transports {
            transports
                .get_or_create(&vec![("kind", t.kind.into()), ("state", t.state.into())])
                .inc();
        }
        for p in &w.producers {
            producers
                .get_or_create(&vec![("kind", p.kind.as_str().into())])
                .inc();
        }
        for c in &w.consumers {
            consumers
                .get_or_create(&vec![("kind", c.kind.as_str().into())])
                .inc();
        }
    }

    let worker_rooms = gauge_family(
        &mut reg,
        "worker_rooms",
        "Rooms hosted by each media worker",
    );
    let packets = counter_family(
        &mut reg,
        "worker_packets",
        "Datagrams (and RFC 4571 frames) through each media worker's port, by direction",
    );
    let bytes = counter_family(
        &mut reg,
        "worker_bytes",
        "Bytes through each media worker's port, by direction",
    );
    let dropped = counter_family(
        &mut reg,
        "packets_dropped",
        "Input a media worker dropped, by reason",
    );
    let nacks = counter_family(
        &mut reg,
        "nacks_received",
        "RTCP NACK packets received from receivers",
    );
    let rtx = counter_family(
        &mut reg,
        "retransmitted_packets",
        "Packets resent in answer to NACKs",
    );
    let key_frames = counter_family(
        &mut reg,
        "key_frame_requests",
        "PLI and FIR received from receivers and PLI sent to senders",
    );
    let dtls = counter_family(
        &mut reg,
        "dtls_failures",
        "Transports closed because DTLS failed",
    );
    let ice = counter_family(
        &mut reg,
        "ice_failures",
        "Transports closed because ICE consent was lost or never established",
    );
    let panics = counter_family(
        &mut reg,
        "transport_panics",
        "Transports closed because handling their input panicked (an internal error the worker contained)",
    );
    let pipe_messages = counter_family(
        &mut reg,
        "worker_pipe_messages",
        "Messages between media workers (rooms over several workers: mirrored producers' packets, reports, key frame requests), by direction and outcome",
    );
    let shed = gauge_family(
        &mut reg,
        "worker_shed_level",
        "Each media worker's overload shed level (0: nothing shed; 3: every video on its lowest layer)",
    );
    let busy = seconds_family(
        &mut reg,
        "worker_busy_seconds",
        "Time each media worker's loop spent working (not waiting)",
    );
    let queue = gauge_family(
        &mut reg,
        "worker_command_queue",
        "Commands waiting in each media worker's queue (at its last snapshot)",
    );
    let backlog = gauge_family(
        &mut reg,
        "worker_event_backlog",
        "Events each media worker holds for the control loop (at its last snapshot)",
    );
    for w in &s.workers {
        let id = w.worker.to_string();
        let l = |extra: &[(&'static str, &str)]| -> Labels {
            let mut v: Labels = vec![("worker", id.clone())];
            v.extend(extra.iter().map(|(k, x)| (*k, (*x).to_owned())));
            v
        };
        worker_rooms
            .get_or_create(&l(&[]))
            .set(to_i64(w.rooms.len()));
        packets
            .get_or_create(&l(&[("direction", "in")]))
            .inc_by(w.packets_in);
        packets
            .get_or_create(&l(&[("direction", "out")]))
            .inc_by(w.packets_out);
        bytes
            .get_or_create(&l(&[("direction", "in")]))
            .inc_by(w.bytes_in);
        bytes
            .get_or_create(&l(&[("direction", "out")]))
            .inc_by(w.bytes_out);
        for (reason, n) in [
            ("unknown_source", w.dropped.unknown_source),
            ("transport", w.dropped.transport),
            ("wrong_source", w.dropped.wrong_source),
            ("unknown_ssrc", w.dropped.unknown_ssrc),
            ("malformed_rtcp", w.dropped.malformed_rtcp),
            ("stale_after_stall", w.dropped.stale_after_stall),
        ] {
            dropped.get_or_create(&l(&[("reason", reason)])).inc_by(n);
        }
        nacks
            .get_or_create(&l(&[]))
            .inc_by(w.feedback.nacks_received);
        rtx.get_or_create(&l(&[])).inc_by(w.feedback.retransmitted);
        for (kind, direction, n) in [
            ("pli", "received", w.feedback.plis_received),
            ("fir", "received", w.feedback.firs_received),
            ("pli", "sent", w.feedback.plis_sent),
        ] {
            key_frames
                .get_or_create(&l(&[("type", kind), ("direction", direction)]))
                .inc_by(n);
        }
        dtls.get_or_create(&l(&[])).inc_by(w.dtls_failures);
        ice.get_or_create(&l(&[])).inc_by(w.ice_failures);
        panics.get_or_create(&l(&[])).inc_by(w.transport_panics);
        for (direction, outcome, n) in [
            ("out", "handed", w.pipes.sent),
            ("out", "dropped_full", w.pipes.dropped_full),
            (
                "in",
                "handled",
                w.pipes.received.saturating_sub(w.pipes.dropped_stale),
            ),
            ("in", "dropped_stale", w.pipes.dropped_stale),
        ] {
            pipe_messages
                .get_or_create(&l(&[("direction", direction), ("outcome", outcome)]))
                .inc_by(n);
        }
        busy.get_or_create(&l(&[])).inc_by(w.busy_seconds);
        queue.get_or_create(&l(&[])).set(to_i64(w.command_queue));
        shed.get_or_create(&l(&[])).set(i64::from(w.shed_level));
        backlog.get_or_create(&l(&[])).set(to_i64(w.event_backlog));
    }

    let loop_busy = seconds_family(
        &mut reg,
        "control_loop_busy_seconds",
        "Time the control loop (HTTP, signaling, rooms) spent working (not waiting)",
    );
    loop_busy
        .get_or_create(&Vec::new())
        .inc_by(s.control_loop.busy.as_secs_f64());
    gauge(
        &mut reg,
        "control_loop_engine_events",
        "Media engine events waiting for the control loop",
        to_i64(s.control_loop.engine_events),
    );
    gauge(
        &mut reg,
        "http_connections",
        "HTTP and WebSocket connections open on the listener",
        to_i64(s.control_loop.connections),
    );
    gauge(
        &mut reg,
        "signaling_sockets",
        "Signaling (Socket.IO) sockets open",
        to_i64(s.sockets),
    );
    let conns = counter_family(
        &mut reg,
        "signaling_connections",
        "Socket.IO connections, by outcome",
    );
    conns
        .get_or_create(&vec![("outcome", "accepted".into())])
        .inc_by(s.signaling.connections_accepted);
    conns
        .get_or_create(&vec![("outcome", "refused".into())])
        .inc_by(s.signaling.connections_refused);
    let requests = counter_family(
        &mut reg,
        "signaling_requests",
        "Client requests acked, by outcome and code (200: success)",
    );
    requests
        .get_or_create(&vec![("outcome", "ok".into()), ("code", "200".into())])
        .inc_by(s.signaling.requests_ok);
    for (code, n) in &s.signaling.requests_failed {
        requests
            .get_or_create(&vec![
                ("outcome", "failed".into()),
                ("code", code.to_string()),
            ])
            .inc_by(*n);
    }

    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod tests;
