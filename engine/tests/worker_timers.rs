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
