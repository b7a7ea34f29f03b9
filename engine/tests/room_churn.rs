//! Issue 18 §3, the room soak: 1,000 rooms opened and closed one after another on a real
//! worker over UDP, each with a publisher and two receivers that connect with real ICE,
//! DTLS and SRTP (the test kit's browser-like peer, three handshakes a room), Opus flowing
//! from the publisher to both receivers before the room closes (`CloseRouter`, as the
//! control plane does when a room ends). Afterwards the worker's tables are empty, and
//! the process's resident memory and file descriptors are where they were after the
//! first 50 rooms (allocator and TLS caches warmed up).
//!
//! `KOLABMEET_CHURN_ROOMS` sets the count (1,000 by default); the figures are printed:
//! `cargo test --release -p kolabmeet-engine --test room_churn -- --nocapture`.

use std::time::{Duration, Instant};

use kolabmeet_engine::EngineCommand;
use kolabmeet_engine::MediaEngine;
use kolabmeet_testkit::*;

const MIC: u32 = 0x2222_0001;

#[test]
fn a_thousand_rooms_one_after_another_leave_nothing_behind() {
    let rooms: usize = std::env::var("KOLABMEET_CHURN_ROOMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut worker = UdpWorker::start().unwrap();
    let t0 = Instant::now();
    let mut baseline = None;
    let mut shortfalls = Vec::new();
    let mut figures = Vec::new();
    for k in 0..rooms {
        let mut call = OpusRoom::start(&mut worker, MIC, 2).unwrap();
        for seq in 0..10u16 {
            call.send(seq);
        }
        // Both receivers get the ten packets (within a second).
        let mut got = [0usize; 2];
        let deadline = Instant::now() + Duration::from_secs(1);
        while got.iter().any(|g| *g < 10) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
            for (i, g) in got.iter_mut().enumerate() {
                *g += call.received(i);
            }
        }
        if got.iter().any(|g| *g < 10) {
            shortfalls.push((k, got));
        }
        let room = call.room;
        drop(call);
        worker.submit(EngineCommand::CloseRouter { room });
        worker.drain_events();
        // The harness keeps the first 10,000 events for tests that look at them: not
        // this one (they would be the growth measured).
        worker.events = Vec::new();
        if k + 1 == 50.min(rooms) {
            baseline = Some((rss_kib(), open_fds()));
        }
        if (k + 1) % 100 == 0 || k + 1 == rooms {
            figures.push((k + 1, rss_kib(), open_fds(), t0.elapsed().as_secs_f64()));
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // The worker publishes its tables once a second.
    std::thread::sleep(Duration::from_millis(2500));
    worker.drain_events();
    let stats = worker.engine().worker_stats();
    let (rss0, fds0) = baseline.unwrap();
    let (rss1, fds1) = (rss_kib(), open_fds());
    println!(
        "{rooms} rooms in {:.1} s ({:.1} ms a room, three DTLS handshakes each); RSS after 50 rooms {} KiB, at the end {} KiB; descriptors {fds0} -> {fds1}; every 100 rooms (rooms, RSS KiB, fds, s): {figures:?}",
        elapsed,
        elapsed * 1000.0 / rooms as f64,
        rss0,
        rss1,
    );
    assert!(
        shortfalls.is_empty(),
        "rooms whose receivers missed packets: {shortfalls:?}"
    );
    for w in &stats {
        assert!(
            w.rooms.is_empty()
                && w.transports.is_empty()
                && w.producers.is_empty()
                && w.consumers.is_empty(),
            "worker {} keeps rooms {:?}, {} transports, {} producers, {} consumers",
            w.worker,
            w.rooms,
            w.transports.len(),
            w.producers.len(),
            w.consumers.len()
        );
    }
    assert_eq!(fds1, fds0, "file descriptors");
    assert!(
        rss1 <= rss0 + 4 * 1024,
        "resident memory grew from {rss0} to {rss1} KiB"
    );
}
