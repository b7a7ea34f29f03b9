//! Containment (issue 18, section 1), in virtual time: a panic inside one transport's
//! handling of a datagram (injected: test builds only, `--features fault-injection`)
//! closes that transport with its producers and consumers, reported as any close of the
//! engine's own (`TransportClosed`, and `ConsumerClosed` for the consumers of its
//! producers), counts it, and costs nothing else: the rest of its room and another room
//! on the same worker core keep their media. The same for a panic in a transport's timer.

use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::transport::ArmedPanic::{Datagram, Timeout};
use kolabmeet_engine::{ConsumerId, EngineEvent, PeerId, ProducerId, TransportId};
use kolabmeet_testkit::*;

/// Room A: Alice and Bob hear each other, Erin hears Bob.
const ALICE: u16 = 5000;
const BOB: u16 = 5001;
const ERIN: u16 = 5002;
/// Room B: Dave hears Carol.
const CAROL: u16 = 6000;
const DAVE: u16 = 6001;

/// `from` sends `n` Opus packets of `ssrc` from `seq`; how many each of `to` received.
fn flow(sim: &mut Sim, from: u16, ssrc: u32, seq: u16, n: u16, to: &[u16]) -> Vec<usize> {
    for p in to {
        sim.take_rtp(*p);
    }
    for s in seq..seq + n {
        sim.send(from, opus_packet(s, ssrc));
    }
    to.iter().map(|p| sim.take_rtp(*p).len()).collect()
}

fn produce(sim: &mut Sim, (peer, t): (PeerId, TransportId), ssrc: u32) -> ProducerId {
    sim.produce(peer, t, MediaKind::Audio, opus_params(ssrc, "0"))
        .expect("produce")
}

fn consume(sim: &mut Sim, (peer, t): (PeerId, TransportId), p: ProducerId) -> ConsumerId {
    setup::answer_id(&sim.consume(peer, t, p).expect("consume")).expect("a consumer id")
}

#[test]
fn a_panic_in_one_transport_closes_it_alone_and_the_worker_goes_on() {
    let mut sim = Sim::new();
    let room_a = sim.room();
    let alice = sim.connect_peer_at(room_a, ALICE);
    let bob = sim.connect_peer_at(room_a, BOB);
    let erin = sim.connect_peer_at(room_a, ERIN);
    let alice_mic = produce(&mut sim, alice, 1111);
    let bob_mic = produce(&mut sim, bob, 2222);
    let bob_hears_alice = consume(&mut sim, bob, alice_mic);
    let alice_hears_bob = consume(&mut sim, alice, bob_mic);
    let erin_hears_bob = consume(&mut sim, erin, bob_mic);
    let room_b = sim.room();
    let carol = sim.connect_peer_at(room_b, CAROL);
    let dave = sim.connect_peer_at(room_b, DAVE);
    let carol_mic = produce(&mut sim, carol, 3333);
    consume(&mut sim, dave, carol_mic);

    assert_eq!(flow(&mut sim, ALICE, 1111, 0, 3, &[BOB]), [3]);
    assert_eq!(flow(&mut sim, BOB, 2222, 0, 3, &[ALICE, ERIN]), [3, 3]);
    assert_eq!(flow(&mut sim, CAROL, 3333, 0, 3, &[DAVE]), [3]);
    let before = sim.core.sizes();
    sim.events.clear();

    // A panic is armed in Alice's transport only; none in a transport that is not there.
    assert!(
        !sim.core
            .arm_transport_panic(TransportId::random(), Datagram)
    );
    assert!(sim.core.arm_transport_panic(alice.1, Datagram));
    // Bob's and Carol's datagrams do not trigger it.
    assert_eq!(flow(&mut sim, BOB, 2222, 3, 2, &[ALICE, ERIN]), [2, 2]);
    assert_eq!(flow(&mut sim, CAROL, 3333, 3, 2, &[DAVE]), [2]);
    assert_eq!(sim.core.worker_stats(sim.now, 0).transport_panics, 0);

    // Alice's next datagram panics inside her transport: caught, counted once, her
    // transport closed with everything it carried.
    assert_eq!(flow(&mut sim, ALICE, 1111, 3, 1, &[BOB]), [0]);
    let stats = sim.core.worker_stats(sim.now, 0);
    assert_eq!(stats.transport_panics, 1);
    assert!(stats.transports.iter().all(|t| t.transport_id != alice.1));
    let closed = transports_closed(&sim);
    assert_eq!(
        closed,
        [(alice.0, alice.1, vec![alice_mic], vec![alice_hears_bob])],
        "as any close of the engine's own: {:?}",
        sim.events
    );
    // Bob's consumer of Alice's microphone closed with it, and Bob is told.
    let consumer_closed: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ConsumerClosed { peer, consumer } => Some((*peer, *consumer)),
            _ => None,
        })
        .collect();
    assert_eq!(consumer_closed, [(bob.0, bob_hears_alice)]);
    let after = sim.core.sizes();
    assert_eq!(after.transports, before.transports - 1);
    assert_eq!(after.producers, before.producers - 1);
    assert_eq!(after.consumers, before.consumers - 2);
    assert_eq!(after.peers, before.peers - 1);
    assert_eq!(after.tuples, before.tuples - 1);
    assert_eq!(after.ufrags, before.ufrags - 1);
    assert_eq!(
        after.per_transport,
        before.per_transport - 2,
        "id index and deadline"
    );

    // The rest of room A goes on (Bob to Erin), room B too, with the same consumers.
    assert_eq!(flow(&mut sim, BOB, 2222, 5, 5, &[ALICE, ERIN]), [0, 5]);
    assert_eq!(flow(&mut sim, CAROL, 3333, 5, 5, &[DAVE]), [5]);
    assert!(
        sim.core
            .worker_stats(sim.now, 0)
            .consumers
            .iter()
            .any(|c| c.consumer_id == erin_hears_bob)
    );
    // Alice's tuple is forgotten: what she still sends is an unknown source, no panic.
    let unknown = sim.core.counters().unknown_source;
    assert_eq!(flow(&mut sim, ALICE, 1111, 4, 2, &[BOB]), [0]);
    assert_eq!(sim.core.counters().unknown_source, unknown + 2);
    // Timers keep running for everyone else (reports, consent, transport-cc).
    sim.advance(Duration::from_secs(6));
    assert_eq!(flow(&mut sim, CAROL, 3333, 10, 3, &[DAVE]), [3]);
    assert_eq!(sim.core.worker_stats(sim.now, 0).transport_panics, 1);
}

/// What [`EngineEvent::TransportClosed`] the core reported: (peer, transport, producers,
/// consumers).
type Closed = (PeerId, TransportId, Vec<ProducerId>, Vec<ConsumerId>);

fn transports_closed(sim: &Sim) -> Vec<Closed> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::TransportClosed {
                peer,
                transport,
                producers,
                consumers,
            } => Some((*peer, *transport, producers.clone(), consumers.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_panic_in_one_transport_timer_closes_it_alone() {
    let mut sim = Sim::new();
    let room_a = sim.room();
    let alice = sim.connect_peer_at(room_a, ALICE);
    let bob = sim.connect_peer_at(room_a, BOB);
    // Alice's camera (with transport-cc: her transport then has feedback timers) to Bob.
    let alice_cam = sim
        .produce(alice.0, alice.1, MediaKind::Video, vp8_params(1111, 1112))
        .expect("produce");
    let bob_sees_alice = consume(&mut sim, bob, alice_cam);
    let room_b = sim.room();
    let carol = sim.connect_peer_at(room_b, CAROL);
    let dave = sim.connect_peer_at(room_b, DAVE);
    let carol_mic = produce(&mut sim, carol, 3333);
    consume(&mut sim, dave, carol_mic);
    let frame = |seq: u16| {
        chrome_packet(
            96,
            seq,
            u32::from(seq) * 3000,
            1111,
            "0",
            None,
            &vp8(true, 0),
        )
    };
    sim.send(ALICE, frame(0));
    assert!(!sim.take_rtp(BOB).is_empty());
    sim.events.clear();

    // Alice's transport panics when its next timer runs; her datagrams do not trigger it.
    assert!(sim.core.arm_transport_panic(alice.1, Timeout));
    sim.send(ALICE, frame(1));
    assert_eq!(sim.take_rtp(BOB).len(), 1);
    let mut seq = 0;
    let mut waited = Duration::ZERO;
    while transports_closed(&sim).is_empty() {
        assert!(
            waited < Duration::from_secs(5),
            "no timer of Alice's transport ran"
        );
        sim.advance(Duration::from_millis(50));
        waited += Duration::from_millis(50);
        assert_eq!(flow(&mut sim, CAROL, 3333, seq, 1, &[DAVE]), [1]);
        seq += 1;
    }
    assert_eq!(
        transports_closed(&sim),
        [(alice.0, alice.1, vec![alice_cam], vec![])]
    );
    assert!(sim.events.iter().any(|e| matches!(
        e,
        EngineEvent::ConsumerClosed { consumer, .. } if *consumer == bob_sees_alice
    )));
    assert_eq!(sim.core.worker_stats(sim.now, 0).transport_panics, 1);
    assert_eq!(sim.core.sizes().transports, 3);
    // Everyone else's timers and media go on.
    sim.advance(Duration::from_secs(6));
    assert_eq!(flow(&mut sim, CAROL, 3333, seq, 5, &[DAVE]), [5]);
    assert_eq!(sim.core.worker_stats(sim.now, 0).transport_panics, 1);
}
