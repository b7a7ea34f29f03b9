use super::*;
use kolabmeet_engine::worker_stats::{DropCounts, FeedbackCounters, TransportStats};
use kolabmeet_engine::{PeerId, RoomId, TransportId};

fn worker(index: usize) -> WorkerStats {
    let room = RoomId::random();
    let peer = PeerId::random();
    WorkerStats {
        worker: index,
        port: 44444 + index as u16,
        rooms: vec![room],
        packets_in: 10 + index as u64,
        bytes_in: 1000,
        packets_out: 20,
        bytes_out: 2000,
        dropped: DropCounts {
            unknown_source: 3,
            wrong_source: 9,
            ..DropCounts::default()
        },
        feedback: FeedbackCounters {
            nacks_received: 4,
            retransmitted: 5,
            plis_received: 6,
            firs_received: 0,
            plis_sent: 7,
        },
        busy_seconds: 1.5,
        command_queue: 2,
        pipes: kolabmeet_engine::worker_stats::PipeCounts {
            sent: 11,
            received: 8,
            dropped_full: 1,
            dropped_stale: 3,
        },
        transports: vec![
            TransportStats {
                transport_id: TransportId::random(),
                peer_id: peer,
                room_id: room,
                kind: "webrtc",
                state: "connected",
                dropped_packets: 0,
                wrong_source_packets: 0,
                estimate_bps: 1_000_000,
            },
            TransportStats {
                transport_id: TransportId::random(),
                peer_id: peer,
                room_id: room,
                kind: "plain",
                state: "connected",
                dropped_packets: 9,
                wrong_source_packets: 9,
                estimate_bps: 0,
            },
        ],
        ..WorkerStats::default()
    }
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn renders_the_prometheus_text_format() {
    let mut signaling = SignalingCounters {
        connections_accepted: 3,
        connections_refused: 1,
        requests_ok: 12,
        ..SignalingCounters::default()
    };
    signaling.requests_failed.insert(403, 2);
    let s = Snapshot {
        rooms: 2,
        peers: 5,
        sockets: 4,
        signaling,
        workers: vec![worker(0), worker(1)],
        control_loop: LoopStats {
            busy: Duration::from_millis(250),
            connections: 6,
            engine_events: 0,
        },
    };
    let text = render(&s);
    assert_eq!(sample(&text, "kolabmeet_rooms"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "kolabmeet_peers"), Some(5.0));
    assert_eq!(sample(&text, "kolabmeet_media_workers"), Some(2.0));
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_transports{kind="webrtc",state="connected"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_transports{kind="webrtc",state="connecting"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_transports{kind="plain",state="connected"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_transports{kind="plain",state="connecting"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_packets_dropped_total{worker="1",reason="wrong_source"}"#
        ),
        Some(9.0)
    );
    assert_eq!(
        sample(&text, r#"kolabmeet_producers{kind="video"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_worker_packets_total{worker="1",direction="in"}"#
        ),
        Some(11.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_packets_dropped_total{worker="0",reason="unknown_source"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_key_frame_requests_total{worker="0",type="pli",direction="sent"}"#
        ),
        Some(7.0)
    );
    assert_eq!(
        sample(&text, r#"kolabmeet_worker_busy_seconds_total{worker="0"}"#),
        Some(1.5)
    );
    assert_eq!(
        sample(&text, "kolabmeet_control_loop_busy_seconds_total"),
        Some(0.25)
    );
    // Issue 16: what crossed between workers, by direction and outcome.
    for (labels, n) in [
        (r#"direction="out",outcome="handed""#, 11.0),
        (r#"direction="out",outcome="dropped_full""#, 1.0),
        (r#"direction="in",outcome="handled""#, 5.0),
        (r#"direction="in",outcome="dropped_stale""#, 3.0),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!(r#"kolabmeet_worker_pipe_messages_total{{worker="0",{labels}}}"#)
            ),
            Some(n),
            "{labels}"
        );
    }
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_signaling_requests_total{outcome="failed",code="403"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"kolabmeet_signaling_connections_total{outcome="refused"}"#
        ),
        Some(1.0)
    );
    // Every family has its HELP and TYPE, counters end in `_total`, and no line is
    // anything but a comment or `series value`.
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            assert!(series.starts_with("kolabmeet_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}

#[test]
fn an_empty_server_has_every_family() {
    let text = render(&Snapshot::default());
    for family in [
        "kolabmeet_rooms",
        "kolabmeet_peers",
        "kolabmeet_transports",
        "kolabmeet_producers",
        "kolabmeet_consumers",
        "kolabmeet_control_loop_busy_seconds_total",
        "kolabmeet_signaling_requests_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family}: {text}"
        );
    }
    assert_eq!(sample(&text, "kolabmeet_rooms"), Some(0.0));
}
