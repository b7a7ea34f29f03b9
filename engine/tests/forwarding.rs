//! Media through a worker core in memory, with virtual time: two browser-like peers
//! (ICE, DTLS client, SRTP from the same stacks), one producing simulcast VP8 by RID and
//! Opus, the other consuming; checked at the receiver after decryption.

use kolabmeet_testkit::*;
use std::time::Duration;

use kolabmeet_engine::{
    ConsumerId, EngineCommand, EngineEvent, PeerId, ProducerId, RoomId, TransportId,
};
use kolabmeet_net::rtp::RtpPacket;

/// A room with Alice (browser at 5000) and Bob (6000) connected.
fn alice_and_bob() -> (Sim, RoomId, (PeerId, TransportId), (PeerId, TransportId)) {
    let mut sim = Sim::new();
    let room = sim.room();
    let alice = sim.connect_peer_at(room, 5000);
    let bob = sim.connect_peer_at(room, 6000);
    (sim, room, alice, bob)
}

#[test]
fn simulcast_video_is_forwarded_and_switches_layers_seamlessly() {
    let (mut sim, _, (alice, alice_t), (bob, bob_t)) = alice_and_bob();
    let produced = sim
        .command(|tag| EngineCommand::Produce {
            tag,
            peer: alice,
            transport: alice_t,
            kind: kolabmeet_engine::ortc::MediaKind::Video,
            rtp_parameters: simulcast_params(),
            source: kolabmeet_engine::media_engine::ProducerSource::Webcam,
        })
        .unwrap();
    let producer: ProducerId = setup::answer_id(&produced).unwrap();
    // Another peer may not consume on Alice's transport, nor an unknown producer.
    assert!(sim.consume(bob, alice_t, producer).is_err());
    let consumed = setup::wire(&sim.consume(bob, bob_t, producer).unwrap());
    assert_eq!(consumed["type"], "simulcast");
    assert_eq!(consumed["kind"], "video");
    assert_eq!(consumed["rtpParameters"]["mid"], "0");
    assert_eq!(
        consumed["rtpParameters"]["encodings"][0]["scalabilityMode"],
        "L2T3"
    );
    let consumer: ConsumerId = consumed["id"].as_str().unwrap().parse().unwrap();
    let ssrc = consumer_ssrc(&consumed);

    // Both layers flow: 30 fps, each layer starting with a key frame.
    let (ssrc0, ssrc1) = (1111u32, 2222u32);
    let mut seq = [100u16, 5000u16];
    let mut ts = [1000u32, 777_000u32];
    let mut frame = |sim: &mut Sim, layer: usize, key: bool| {
        let (s, r) = if layer == 0 {
            (ssrc0, "r0")
        } else {
            (ssrc1, "r1")
        };
        let p = chrome_packet(
            96,
            seq[layer],
            ts[layer],
            s,
            "0",
            Some(r),
            &vp8(key, seq[layer] as u8),
        );
        seq[layer] = seq[layer].wrapping_add(1);
        ts[layer] = ts[layer].wrapping_add(3000);
        sim.send(5000, p);
    };
    frame(&mut sim, 0, true);
    frame(&mut sim, 1, true);
    sim.take_rtp(6000);
    for i in 0..30 {
        sim.now += Duration::from_millis(33);
        frame(&mut sim, 0, false);
        frame(&mut sim, 1, i == 0);
    }
    let got = sim.take_rtp(6000);
    assert!(!got.is_empty(), "the receiver gets video");
    for p in &got {
        let v = RtpPacket::parse(&p[..]).unwrap();
        assert_eq!(v.ssrc(), ssrc);
        assert_eq!(v.payload_type(), 101, "router VP8 payload type");
        assert_eq!(v.extension(1), Some(&b"0"[..]), "the consumer's MID");
        assert!(v.extension(2).is_none(), "no RID towards consumers");
    }
    // Only the top layer is forwarded once it started, with continuous numbers.
    let seqs: Vec<u16> = got
        .iter()
        .map(|p| RtpPacket::parse(&p[..]).unwrap().sequence_number())
        .collect();
    for w in seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0].wrapping_add(1),
            "continuous sequence numbers {seqs:?}"
        );
    }
    let layers: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ConsumerLayersChanged {
                consumer: c,
                layers,
                ..
            } if *c == consumer => *layers,
            _ => None,
        })
        .collect();
    assert_eq!(
        layers.last().map(|l| (l.spatial_layer, l.temporal_layer)),
        Some((1, 2))
    );

    // Alice's transport-wide sequence numbers come back as transport-cc feedback.
    sim.advance(Duration::from_millis(150));
    let twcc: Vec<&Vec<u8>> = sim
        .endpoint(5000)
        .rtcp
        .iter()
        .filter(|r| r[1] == 205 && r[0] & 0x1f == 15)
        .collect();
    assert!(!twcc.is_empty(), "transport-cc feedback to the sender");

    // Layer 1 dies: after a while the consumer drops to layer 0 at its next key frame,
    // asking Alice for one (a PLI for r0's SSRC).
    let last_out = *seqs.last().unwrap();
    let last_ts = RtpPacket::parse(&got.last().unwrap()[..])
        .unwrap()
        .timestamp();
    for _ in 0..60 {
        sim.now += Duration::from_millis(33);
        frame(&mut sim, 0, false);
    }
    let plis: Vec<u32> = sim
        .endpoint(5000)
        .rtcp
        .iter()
        .filter(|r| r[1] == 206)
        .map(|r| u32::from_be_bytes([r[8], r[9], r[10], r[11]]))
        .collect();
    assert!(plis.contains(&ssrc0), "PLI for layer 0: {plis:?}");
    assert!(
        sim.take_rtp(6000).is_empty(),
        "nothing until layer 0's key frame"
    );
    sim.now += Duration::from_millis(33);
    frame(&mut sim, 0, true);
    frame(&mut sim, 0, false);
    let got = sim.take_rtp(6000);
    assert_eq!(got.len(), 2);
    let first = RtpPacket::parse(&got[0][..]).unwrap();
    assert_eq!(
        first.sequence_number(),
        last_out.wrapping_add(1),
        "no gap across the switch"
    );
    assert!(
        first.timestamp().wrapping_sub(last_ts) < 0x8000_0000,
        "timestamps go forward"
    );
    assert_ne!(first.timestamp(), last_ts);

    // Bob asks for a key frame: Alice gets a PLI for the layer Bob receives.
    sim.take_rtcp(5000);
    sim.advance(Duration::from_secs(4));
    let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 9];
    pli.extend_from_slice(&ssrc.to_be_bytes());
    sim.send_rtcp(6000, pli);
    assert!(
        sim.endpoint(5000)
            .rtcp
            .iter()
            .any(|r| r[1] == 206 && r[8..12] == ssrc0.to_be_bytes())
    );

    // Closing the producer closes the consumer at Bob's.
    sim.command(|tag| EngineCommand::CloseProducer {
        tag,
        peer: alice,
        producer,
    })
    .unwrap();
    assert!(sim.events.iter().any(|e| matches!(e, EngineEvent::ConsumerClosed { consumer: c, peer } if *c == consumer && *peer == bob)));
    let sizes = sim.core.sizes();
    assert_eq!((sizes.producers, sizes.consumers, sizes.routes), (0, 0, 0));
}

#[test]
fn audio_pause_resume_and_churn_free_everything() {
    let (mut sim, room, (alice, alice_t), (bob, bob_t)) = alice_and_bob();
    let params = opus_params(4242, "1");
    let audio_kind = kolabmeet_engine::ortc::MediaKind::Audio;
    let producer = sim
        .produce(alice, alice_t, audio_kind, params.clone())
        .unwrap();
    // The same SSRC again on that transport is refused.
    assert!(sim.produce(alice, alice_t, audio_kind, params).is_err());
    let consumed = setup::wire(&sim.consume(bob, bob_t, producer).unwrap());
    assert_eq!(consumed["type"], "simple");
    let consumer: ConsumerId = consumed["id"].as_str().unwrap().parse().unwrap();
    let audio = |seq: u16| opus_packet(seq, 4242);
    for s in 0..5 {
        sim.send(5000, audio(s));
    }
    let got = sim.take_rtp(6000);
    assert_eq!(got.len(), 5);
    let v = RtpPacket::parse(&got[0][..]).unwrap();
    assert_eq!(v.payload_type(), 100, "router opus payload type");
    assert_eq!(
        v.extension(10),
        Some(&[0x85][..]),
        "audio level kept, at the router id"
    );
    assert_eq!(v.payload(), &[7; 20]);

    // Producer paused: Bob hears of it and gets nothing; resumed: media again.
    sim.command(|tag| EngineCommand::SetProducerPaused {
        tag,
        peer: alice,
        producer,
        paused: true,
    })
    .unwrap();
    assert!(sim.events.iter().any(|e| matches!(e, EngineEvent::ConsumerProducerPaused { paused: true, consumer: c, .. } if *c == consumer)));
    sim.send(5000, audio(5));
    assert!(sim.take_rtp(6000).is_empty());
    sim.command(|tag| EngineCommand::SetProducerPaused {
        tag,
        peer: alice,
        producer,
        paused: false,
    })
    .unwrap();
    sim.send(5000, audio(6));
    assert_eq!(sim.take_rtp(6000).len(), 1);
    // Consumer paused by Bob.
    sim.command(|tag| EngineCommand::SetConsumerPaused {
        tag,
        peer: bob,
        consumer,
        paused: true,
    })
    .unwrap();
    sim.send(5000, audio(7));
    assert!(sim.take_rtp(6000).is_empty());
    // Bob's peer may not pause Alice's producer.
    assert!(
        sim.command(|tag| EngineCommand::SetProducerPaused {
            tag,
            peer: bob,
            producer,
            paused: true
        })
        .is_err()
    );

    // Garbage RTP for unknown SSRCs is counted, not forwarded.
    let mut junk = audio(8);
    junk[8..12].copy_from_slice(&999u32.to_be_bytes());
    sim.send(5000, junk);
    assert!(sim.take_rtp(6000).is_empty());
    assert!(sim.core.counters().unknown_ssrc >= 1);

    // Alice leaves: her producer closes, Bob's consumer closes, nothing is left behind.
    sim.core
        .handle_command(sim.now, EngineCommand::ClosePeer { room, peer: alice });
    sim.pump();
    assert!(
        sim.events.iter().any(
            |e| matches!(e, EngineEvent::ConsumerClosed { consumer: c, .. } if *c == consumer)
        )
    );
    sim.core
        .handle_command(sim.now, EngineCommand::CloseRouter { room });
    assert_eq!(sim.tables(), [0; 11], "{:?}", sim.core.sizes());
    let _ = bob;
}
