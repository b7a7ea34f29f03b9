//! A room over two workers (issue 16), in memory with virtual time: Alice's producer lives
//! on worker 0 and is mirrored on worker 1, where Bob consumes it; Carol consumes it on
//! worker 0. The messages between the cores are carried as the drivers carry them
//! ([`SimPair`]). Checked at the browsers after decryption: the far consumer's packets,
//! its layer switches, key frame requests travelling back to the origin and throttled
//! there, NACKs answered on the far side, the sender's mapping in the far consumer's
//! sender reports, and pause, resume and close mirrored.

use kolabmeet_testkit::*;
use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::{EngineCommand, EngineEvent, PeerId, ProducerId, TransportId};
use kolabmeet_net::rtcp::write_nack;
use kolabmeet_net::rtp::RtpPacket;

const ALICE: u16 = 5000;
const BOB: u16 = 6000;
const CAROL: u16 = 7000;
const SSRC0: u32 = 1111;
const SSRC1: u32 = 2222;

/// Alice (worker 0) produces simulcast VP8; Carol (worker 0) and Bob (worker 1, through
/// the mirror) consume it.
struct Room {
    pair: SimPair,
    alice: PeerId,
    producer: ProducerId,
    bob_ssrc: u32,
    carol_ssrc: u32,
    bob_consumer: kolabmeet_engine::ConsumerId,
    seq: [u16; 2],
    ts: [u32; 2],
}

impl Room {
    fn new() -> Self {
        let mut pair = SimPair::new();
        let room = pair.room();
        let (alice, alice_t) = pair.a.connect_peer_at(room, ALICE);
        let (carol, carol_t) = pair.a.connect_peer_at(room, CAROL);
        let (bob, bob_t): (PeerId, TransportId) = pair.b.connect_peer_at(room, BOB);
        let producer = pair
            .a
            .produce(alice, alice_t, MediaKind::Video, simulcast_params())
            .unwrap();
        // The room is on both workers: the producer is mirrored on worker 1 at once.
        pair.exchange();
        assert_eq!(pair.b.core.sizes().producers, 1, "the mirror");
        let consumed = setup::wire(&pair.b.consume(bob, bob_t, producer).unwrap());
        assert_eq!(
            consumed["type"], "simulcast",
            "the mirror offers what the origin does"
        );
        assert_eq!(
            consumed["rtpParameters"]["encodings"][0]["scalabilityMode"],
            "L2T3"
        );
        let bob_consumer = consumed["id"].as_str().unwrap().parse().unwrap();
        let bob_ssrc = consumer_ssrc(&consumed);
        let carol_consumed = setup::wire(&pair.a.consume(carol, carol_t, producer).unwrap());
        let carol_ssrc = consumer_ssrc(&carol_consumed);
        pair.exchange();
        Room {
            pair,
            alice,
            producer,
            bob_ssrc,
            carol_ssrc,
            bob_consumer,
            seq: [100, 5000],
            ts: [1000, 777_000],
        }
    }

    /// Alice sends one frame (one packet) of `layer`.
    fn frame(&mut self, layer: usize, key: bool) {
        let (ssrc, rid) = if layer == 0 {
            (SSRC0, "r0")
        } else {
            (SSRC1, "r1")
        };
        let p = chrome_packet(
            96,
            self.seq[layer],
            self.ts[layer],
            ssrc,
            "0",
            Some(rid),
            &vp8(key, self.seq[layer] as u8),
        );
        self.seq[layer] = self.seq[layer].wrapping_add(1);
        self.ts[layer] = self.ts[layer].wrapping_add(3000);
        self.pair.a.send(ALICE, p);
        self.pair.exchange();
    }

    /// Both layers for `frames` frames at 30 fps, the first of each a key frame.
    fn both_layers(&mut self, frames: usize) {
        for i in 0..frames {
            self.pair.step(Duration::from_millis(33));
            self.frame(0, i == 0);
            self.frame(1, i == 0);
        }
    }
}

fn seqs(packets: &[Vec<u8>]) -> Vec<u16> {
    packets
        .iter()
        .map(|p| RtpPacket::parse(&p[..]).unwrap().sequence_number())
        .collect()
}

fn assert_continuous(seqs: &[u16]) {
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "continuous: {seqs:?}");
    }
}

#[test]
fn the_far_consumer_gets_the_stream_and_switches_layers_at_key_frames() {
    let mut r = Room::new();
    // Bob's consumer asked for a key frame when it started: through the pipe, a PLI at
    // Alice's.
    assert!(
        r.pair.carried.1 > 0,
        "a key frame request went back to worker 0"
    );
    r.both_layers(30);
    let bob = r.pair.b.take_rtp(BOB);
    let carol = r.pair.a.take_rtp(CAROL);
    assert!(!bob.is_empty(), "Bob gets video through the mirror");
    // Carol started on layer 0's first key frame and switched to layer 1's; Bob asked
    // for layer 1 first (layer 0 only crossed as notices) and started there.
    assert!(
        carol.len() - bob.len() <= 1 && bob.len() >= 30,
        "as much as the local consumer: {} and {}",
        bob.len(),
        carol.len()
    );
    for p in &bob {
        let v = RtpPacket::parse(&p[..]).unwrap();
        assert_eq!(v.ssrc(), r.bob_ssrc);
        assert_eq!(v.payload_type(), 101, "router VP8 payload type");
        assert_eq!(v.extension(1), Some(&b"0"[..]), "Bob's MID");
    }
    let bob_seqs = seqs(&bob);
    assert_continuous(&bob_seqs);
    // Each of Alice's packets crossed once: 60 packets for two consumers on two workers.
    assert!(r.pair.carried.0 >= 60, "{:?}", r.pair.carried);

    // Layer 1 stops: Bob's consumer drops to layer 0 at its next key frame, which it asks
    // Alice for through the origin (a PLI for r0's SSRC at Alice's).
    r.pair.a.take_rtcp(ALICE);
    let last = *bob_seqs.last().unwrap();
    for _ in 0..60 {
        r.pair.step(Duration::from_millis(33));
        r.frame(0, false);
    }
    let plis = r.pair.a.take_key_frame_requests(ALICE);
    assert!(plis.contains(&SSRC0), "PLI for layer 0: {plis:?}");
    assert!(
        r.pair.b.take_rtp(BOB).is_empty(),
        "nothing before layer 0's key frame"
    );
    r.pair.step(Duration::from_millis(33));
    r.frame(0, true);
    r.frame(0, false);
    let got = r.pair.b.take_rtp(BOB);
    assert_eq!(got.len(), 2);
    assert_eq!(
        seqs(&got)[0],
        last.wrapping_add(1),
        "no gap across the switch"
    );
    let layers: Vec<u8> = r
        .pair
        .b
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ConsumerLayersChanged {
                consumer, layers, ..
            } if *consumer == r.bob_consumer => layers.map(|l| l.spatial_layer),
            _ => None,
        })
        .collect();
    assert!(layers.contains(&1), "it had the top layer: {layers:?}");
    assert_eq!(layers.last(), Some(&0), "{layers:?}");
}

/// Bob's (far) or Carol's (local) receiver asks for a key frame three times within a
/// second, and no key frame comes: the PLIs Alice hears at once and over the next 4 s.
fn plis_at_alice(far: bool) -> (Vec<u32>, Vec<u32>) {
    let mut r = Room::new();
    r.both_layers(10);
    r.pair.b.take_rtp(BOB);
    r.pair.advance(Duration::from_secs(4));
    r.pair.a.take_rtcp(ALICE);
    let ssrc = if far { r.bob_ssrc } else { r.carol_ssrc };
    let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 9];
    pli.extend_from_slice(&ssrc.to_be_bytes());
    for _ in 0..3 {
        if far {
            r.pair.b.send_rtcp(BOB, pli.clone());
        } else {
            r.pair.a.send_rtcp(CAROL, pli.clone());
        }
        r.pair.exchange();
        r.pair.step(Duration::from_millis(300));
    }
    let now = r.pair.a.take_key_frame_requests(ALICE);
    for _ in 0..40 {
        r.pair.advance(Duration::from_millis(100));
    }
    (now, r.pair.a.take_key_frame_requests(ALICE))
}

#[test]
fn the_far_receivers_key_frame_requests_are_throttled_at_the_origin() {
    let far = plis_at_alice(true);
    let local = plis_at_alice(false);
    assert_eq!(
        far.0,
        vec![SSRC1],
        "one PLI at once, for the layer Bob receives"
    );
    assert_eq!(
        far, local,
        "as many as a receiver on the origin's worker causes"
    );
}

#[test]
fn the_far_consumer_answers_nacks_from_its_own_store() {
    let mut r = Room::new();
    r.both_layers(10);
    let sent = r.pair.b.take_rtp(BOB);
    assert!(sent.len() >= 5);
    let lost = RtpPacket::parse(&sent[4][..]).unwrap();
    r.pair.a.take_rtcp(ALICE);
    let carried = r.pair.carried;
    let mut nack = Vec::new();
    write_nack(&mut nack, 0x55, r.bob_ssrc, &[lost.sequence_number()]);
    r.pair.b.send_rtcp(BOB, nack);
    r.pair.exchange();
    let resent = r.pair.b.take_rtp(BOB);
    assert_eq!(resent.len(), 1, "resent by worker 1");
    let v = RtpPacket::parse(&resent[0][..]).unwrap();
    assert_eq!(
        &v.payload()[..2],
        &lost.sequence_number().to_be_bytes(),
        "RTX: OSN first"
    );
    assert_eq!(&v.payload()[2..], lost.payload());
    assert_eq!(r.pair.carried, carried, "nothing crossed for it");
    let nacks_at_alice = r
        .pair
        .a
        .take_rtcp(ALICE)
        .iter()
        .filter(|c| c[1] == 205 && c[0] & 0x1f == 1)
        .count();
    assert_eq!(nacks_at_alice, 0, "Alice is not asked");
}

#[test]
fn the_far_consumers_reports_carry_the_senders_mapping() {
    let mut r = Room::new();
    r.pair
        .b
        .core
        .set_wall_clock(r.pair.b.now, Duration::from_secs(1_700_000_000));
    r.both_layers(5);
    // Alice's SR for layer 1 (what Bob receives): her NTP X is RTP 777,000.
    let x: u64 = 0x1234_5678_0000_0000;
    r.pair.a.send_rtcp(ALICE, sender_report(SSRC1, x, 777_000));
    r.pair.exchange();
    let sr_at = r.pair.a.now;
    // Bob receives layer 1 by now: his timestamps are Alice's layer 1 ones moved by
    // his consumer's offset.
    let bob = r.pair.b.take_rtp(BOB);
    let last = RtpPacket::parse(&bob.last().unwrap()[..]).unwrap();
    let offset = last.timestamp().wrapping_sub(r.ts[1].wrapping_sub(3000));
    r.pair.b.take_rtcp(BOB);
    r.pair.advance(Duration::from_millis(1600));
    let srs = r.pair.b.take_sender_reports(BOB, r.bob_ssrc);
    let (ntp, rtp) = *srs.last().expect("an SR for Bob's consumer");
    let elapsed = r.pair.b.now - sr_at;
    assert_eq!(
        rtp,
        (777_000 + (elapsed.as_secs_f64() * 90_000.0) as u32).wrapping_add(offset)
    );
    let expect_ntp = x + ((elapsed.as_nanos() << 32) / 1_000_000_000) as u64;
    assert!(
        ntp.abs_diff(expect_ntp) < 1 << 16,
        "{ntp:x} vs {expect_ntp:x}"
    );
}

#[test]
fn pause_resume_and_close_reach_the_far_consumer_and_free_the_mirror() {
    let mut r = Room::new();
    r.both_layers(5);
    r.pair.b.take_rtp(BOB);
    r.pair
        .a
        .command(|tag| EngineCommand::SetProducerPaused {
            tag,
            peer: r.alice,
            producer: r.producer,
            paused: true,
        })
        .unwrap();
    // The pause crosses to the mirror: Bob hears consumerProducerPaused.
    r.pair.exchange();
    assert!(r.pair.b.events.iter().any(|e| matches!(
        e,
        EngineEvent::ConsumerProducerPaused { consumer, paused: true, .. } if *consumer == r.bob_consumer
    )));
    let carried = r.pair.carried.0;
    r.both_layers(5);
    assert!(r.pair.b.take_rtp(BOB).is_empty());
    assert_eq!(
        r.pair.carried.0, carried,
        "a paused producer's packets do not cross"
    );

    r.pair
        .a
        .command(|tag| EngineCommand::SetProducerPaused {
            tag,
            peer: r.alice,
            producer: r.producer,
            paused: false,
        })
        .unwrap();
    r.pair.exchange();
    r.both_layers(5);
    assert!(
        !r.pair.b.take_rtp(BOB).is_empty(),
        "flowing again after a key frame"
    );

    // Alice closes it: the close crosses after its last packet, Bob hears consumerClosed,
    // and nothing is left of the mirror.
    r.pair
        .a
        .command(|tag| EngineCommand::CloseProducer {
            tag,
            peer: r.alice,
            producer: r.producer,
        })
        .unwrap();
    r.pair.exchange();
    assert!(r.pair.b.events.iter().any(|e| matches!(
        e,
        EngineEvent::ConsumerClosed { consumer, .. } if *consumer == r.bob_consumer
    )));
    let sizes = r.pair.b.core.sizes();
    assert_eq!((sizes.producers, sizes.consumers), (0, 0));
    let carried = r.pair.carried.0;
    r.frame(0, false);
    assert_eq!(r.pair.carried.0, carried, "nothing crosses any more");
}

#[test]
fn a_lost_origin_closes_its_mirrors_and_late_packets_are_counted() {
    let mut r = Room::new();
    r.both_layers(5);
    r.pair
        .b
        .core
        .worker_lost(kolabmeet_engine::mirror::WorkerIndex(0));
    r.pair.b.pump();
    assert!(r.pair.b.events.iter().any(|e| matches!(
        e,
        EngineEvent::ConsumerClosed { consumer, .. } if *consumer == r.bob_consumer
    )));
    assert_eq!(r.pair.b.core.sizes().producers, 0);
    // Worker 0 does not know yet: what it still hands over is dropped and counted.
    let dropped = r.pair.b.core.counters().pipe_dropped;
    r.frame(0, false);
    assert_eq!(r.pair.b.core.counters().pipe_dropped, dropped + 1);
}

#[test]
fn a_worker_joining_the_room_gets_mirrors_of_what_is_already_produced() {
    let mut pair = SimPair::new();
    let room = pair.a.room();
    let (alice, alice_t) = pair.a.connect_peer_at(room, ALICE);
    let producer = pair
        .a
        .produce(alice, alice_t, MediaKind::Video, simulcast_params())
        .unwrap();
    // Alice's first packet and SR came before worker 1 joined.
    pair.a.send(
        ALICE,
        chrome_packet(96, 1, 1000, SSRC0, "0", Some("r0"), &vp8(true, 1)),
    );
    pair.a.send_rtcp(ALICE, sender_report(SSRC0, 1 << 40, 1000));
    assert_eq!(
        pair.carried,
        (0, 0),
        "nothing crosses while the room is on one worker"
    );
    // Bob's router goes on worker 1: the room is on both now.
    pair.b
        .core
        .handle_command(pair.b.now, EngineCommand::CreateRouter { room });
    let both = [
        kolabmeet_engine::mirror::WorkerIndex(0),
        kolabmeet_engine::mirror::WorkerIndex(1),
    ];
    pair.a.core.set_room_workers(room, &both);
    pair.b.core.set_room_workers(room, &both);
    pair.exchange();
    let (bob, bob_t) = pair.b.connect_peer_at(room, BOB);
    assert!(
        pair.b.consume(bob, bob_t, producer).is_ok(),
        "the mirror is there"
    );
    assert!(
        pair.carried.0 >= 2,
        "the mirror and the sender's report crossed"
    );
    // Bob's worker leaves the room (its last peer left): worker 0 stops handing over.
    pair.a.core.set_room_workers(room, &both[..1]);
    let carried = pair.carried.0;
    pair.a.send(
        ALICE,
        chrome_packet(96, 2, 4000, SSRC0, "0", Some("r0"), &vp8(false, 2)),
    );
    pair.exchange();
    assert_eq!(pair.carried.0, carried);
}

/// A consume on the far worker can come before its producer's mirror (the room just
/// spread there): it waits for the mirror, then is answered; one whose mirror never
/// comes is answered "not found" after its wait.
#[test]
fn a_consume_waits_for_its_mirror_to_arrive() {
    let mut pair = SimPair::new();
    let room = pair.a.room();
    let (alice, alice_t) = pair.a.connect_peer_at(room, ALICE);
    let producer = pair
        .a
        .produce(alice, alice_t, MediaKind::Video, simulcast_params())
        .unwrap();
    // Worker 1 learns of the spread first; worker 0 has not mirrored anything yet.
    pair.b
        .core
        .handle_command(pair.b.now, EngineCommand::CreateRouter { room });
    let both = [
        kolabmeet_engine::mirror::WorkerIndex(0),
        kolabmeet_engine::mirror::WorkerIndex(1),
    ];
    pair.b.core.set_room_workers(room, &both);
    let (bob, bob_t) = pair.b.connect_peer_at(room, BOB);
    let consume = |tag, producer| EngineCommand::Consume {
        tag,
        peer: bob,
        transport: bob_t,
        producer,
        rtp_capabilities: kolabmeet_engine::ortc::router_rtp_capabilities(),
        paused: false,
    };
    let replies = |sim: &mut Sim, tag: u64| -> Vec<bool> {
        sim.pump();
        sim.events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Reply { tag: t, result } if t.0 == tag => Some(result.is_ok()),
                _ => None,
            })
            .collect()
    };
    let now = pair.b.now;
    pair.b
        .core
        .handle_command(now, consume(kolabmeet_engine::RequestTag(900), producer));
    assert!(
        replies(&mut pair.b, 900).is_empty(),
        "waiting for the mirror"
    );
    // Worker 0 hears of the spread: the mirror crosses, the consume is answered.
    pair.a.core.set_room_workers(room, &both);
    pair.exchange();
    assert_eq!(replies(&mut pair.b, 900), vec![true]);
    // A producer that exists nowhere: answered "not found" once its wait is over.
    let nowhere = ProducerId::random();
    pair.b
        .core
        .handle_command(now, consume(kolabmeet_engine::RequestTag(901), nowhere));
    assert!(replies(&mut pair.b, 901).is_empty());
    pair.advance(Duration::from_millis(2100));
    assert_eq!(replies(&mut pair.b, 901), vec![false]);
}

/// Issue 16, "only what is watched crosses": nothing of a producer crosses to a worker
/// with no consumer of it; the layer a far consumer forwards crosses whole, the other as
/// notices (size and layers only), and it switches onto that one when it must; once its
/// consumer is gone, nothing crosses again.
#[test]
fn only_what_is_watched_crosses() {
    let mut pair = SimPair::new();
    let room = pair.room();
    let (alice, alice_t) = pair.a.connect_peer_at(room, ALICE);
    let producer = pair
        .a
        .produce(alice, alice_t, MediaKind::Video, simulcast_params())
        .unwrap();
    pair.exchange();
    let mut seq = [100u16, 5000u16];
    let mut ts = [1000u32, 777_000u32];
    let mut frame = |pair: &mut SimPair, layer: usize, key: bool| {
        let (ssrc, rid) = if layer == 0 {
            (SSRC0, "r0")
        } else {
            (SSRC1, "r1")
        };
        let p = chrome_packet(
            96,
            seq[layer],
            ts[layer],
            ssrc,
            "0",
            Some(rid),
            &vp8(key, 1),
        );
        seq[layer] = seq[layer].wrapping_add(1);
        ts[layer] = ts[layer].wrapping_add(3000);
        pair.a.send(ALICE, p);
        pair.exchange();
    };
    for i in 0..10 {
        pair.step(Duration::from_millis(33));
        frame(&mut pair, 0, i == 0);
        frame(&mut pair, 1, i == 0);
    }
    assert_eq!(
        pair.packets,
        (0, 0),
        "no consumer on worker 1: nothing crosses"
    );

    let (bob, bob_t) = pair.b.connect_peer_at(room, BOB);
    let consumed = setup::wire(&pair.b.consume(bob, bob_t, producer).unwrap());
    let consumer: kolabmeet_engine::ConsumerId = consumed["id"].as_str().unwrap().parse().unwrap();
    pair.exchange();
    // Three seconds of both layers, timers running (the wants are looked at again with
    // each round of reports).
    for i in 0..90 {
        pair.advance(Duration::from_millis(33));
        frame(&mut pair, 0, i == 0);
        frame(&mut pair, 1, i == 0);
    }
    assert!(!pair.b.take_rtp(BOB).is_empty(), "Bob gets the top layer");
    // Bob forwards layer 1: it crosses whole, layer 0 as notices.
    let before = pair.packets;
    for _ in 0..30 {
        pair.advance(Duration::from_millis(33));
        frame(&mut pair, 0, false);
        frame(&mut pair, 1, false);
    }
    let (whole, notices) = (pair.packets.0 - before.0, pair.packets.1 - before.1);
    assert_eq!(
        (whole, notices),
        (30, 30),
        "layer 1 whole, layer 0 as notices"
    );
    assert_eq!(pair.b.take_rtp(BOB).len(), 30);

    // Layer 1 stops: Bob's consumer moves to layer 0, which it asks for whole.
    for _ in 0..60 {
        pair.advance(Duration::from_millis(33));
        frame(&mut pair, 0, false);
    }
    pair.advance(Duration::from_millis(33));
    frame(&mut pair, 0, true);
    let before = pair.packets.0;
    for _ in 0..10 {
        pair.advance(Duration::from_millis(33));
        frame(&mut pair, 0, false);
    }
    assert_eq!(pair.packets.0, before + 10, "layer 0 crosses whole now");
    assert!(!pair.b.take_rtp(BOB).is_empty(), "Bob gets layer 0");

    // Bob's consumer closes: nothing crosses any more.
    let now = pair.b.now;
    pair.b.core.handle_command(
        now,
        EngineCommand::CloseConsumer {
            peer: bob,
            consumer,
        },
    );
    pair.exchange();
    let carried = pair.packets;
    for _ in 0..10 {
        pair.step(Duration::from_millis(33));
        frame(&mut pair, 0, false);
    }
    assert_eq!(pair.packets, carried, "no consumer, nothing crosses");
}

/// A packet lost on its way to a mirror (the queue between the workers was full) breaks
/// a picture there: the origin asks its sender for a key frame of that stream.
#[test]
fn a_packet_dropped_at_a_full_pipe_asks_for_a_key_frame() {
    let mut r = Room::new();
    r.both_layers(5);
    r.pair.advance(Duration::from_secs(4));
    r.pair.a.take_rtcp(ALICE);
    // Alice's next layer 1 packet: the pipe is full, the message dropped.
    let p = chrome_packet(
        96,
        r.seq[1],
        r.ts[1],
        SSRC1,
        "0",
        Some("r1"),
        &vp8(false, 1),
    );
    r.pair.a.send(ALICE, p);
    let mut dropped = 0;
    while let Some((_, m)) = r.pair.a.core.poll_pipe() {
        if matches!(m, kolabmeet_engine::mirror::PipeMessage::Rtp { .. }) {
            let now = r.pair.a.now;
            r.pair.a.core.pipe_full(now, m);
            dropped += 1;
        }
    }
    assert_eq!(dropped, 1);
    r.pair.a.pump();
    assert_eq!(r.pair.a.take_key_frame_requests(ALICE), vec![SSRC1]);
}
