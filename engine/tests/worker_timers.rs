//! The worker core's timers (issue #4: "timers on a wheel or heap"): an idle worker
//! sleeps until the next real deadline (ICE consent expiry) instead of ticking, media
//! brings the transport-cc feedback and report deadlines in, and a consent timeout is
//! still served on time among many idle transports.

use kolabmeet_testkit::*;
use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;

#[test]
fn idle_transports_wake_the_worker_only_for_real_deadlines() {
    let mut sim = Sim::new();
    let room = sim.room();
    let t0 = sim.now;
    let mut peers = Vec::new();
    for i in 0..50 {
        peers.push(sim.connect_peer_at(room, 7000 + i));
    }
    // Connected and quiet: the next deadline is the first consent expiry (30 s after
    // its binding request), not a 10 ms tick.
    let next = sim.core.poll_timeout().expect("consent deadlines");
    assert!(
        next >= t0 + Duration::from_secs(29),
        "{:?} after start",
        next - t0
    );
    sim.advance(Duration::from_secs(1));
    let next = sim.core.poll_timeout().unwrap();
    assert!(
        next - sim.now >= Duration::from_secs(28),
        "{:?}",
        next - sim.now
    );

    // Media on one transport: its transport-cc feedback is due within 100 ms.
    let (alice, alice_t) = peers[0];
    sim.produce(alice, alice_t, MediaKind::Video, simulcast_params())
        .unwrap();
    sim.send(
        7000,
        chrome_packet(96, 1, 0, 1111, "0", Some("r0"), &vp8(true, 0)),
    );
    let next = sim.core.poll_timeout().unwrap();
    assert!(
        next - sim.now <= Duration::from_millis(100),
        "{:?}",
        next - sim.now
    );

    // Consent expiry is still served: 31 s after the binding requests every quiet
    // transport lost consent and reported it (ICE disconnected).
    let transports_before = sim.core.sizes().transports;
    sim.advance(Duration::from_secs(30));
    assert_eq!(sim.core.sizes().transports, transports_before);
    // ... and 30 s later they are abandoned and closed.
    sim.advance(Duration::from_secs(31));
    assert_eq!(sim.core.sizes().transports, 0, "{:?}", sim.core.sizes());
    assert_eq!(sim.core.sizes().per_transport, 0, "timers forgotten too");
}

/// Issue 8: a transport asked to connect that never completes ICE and DTLS closes by
/// itself after [`CONNECT_TIMEOUT`] and tells the control plane; one never asked to
/// connect stays (mediasoup-client connects its receiving transport at first consume).
#[test]
fn transports_that_never_connect_are_abandoned() {
    use kolabmeet_engine::crypto::DtlsCertificate;
    use kolabmeet_engine::ortc::{DtlsParameters, DtlsRole};
    use kolabmeet_engine::worker::{CONNECT_TIMEOUT, TIMER_TICK, WorkerCore, WorkerSettings};
    use kolabmeet_engine::{EngineCommand, EngineEvent, EngineReply, PeerId, RequestTag, RoomId};
    use rand::SeedableRng;
    use std::time::Instant;

    let t0 = Instant::now();
    let cert = DtlsCertificate::generate().unwrap();
    let settings = WorkerSettings {
        listen_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        announced_address: "127.0.0.1".into(),
        port: 40000,
        sender_report_clock: Default::default(),
    };
    let mut core = WorkerCore::new(settings, cert.clone(), rand::rngs::StdRng::seed_from_u64(1));
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
