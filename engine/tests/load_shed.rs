//! Overload shed by layer (issue 16), in virtual time: a worker core told to shed moves
//! a simulcast webcam consumer down to its lowest layer at the next allocation (a key
//! frame of that layer), keeps its audio, pauses no video, and lets it climb back once
//! the level is down again.

use kolabmeet_testkit::*;
use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_net::rtp::RtpPacket;

const ALICE: u16 = 5000;
const BOB: u16 = 6000;

#[test]
fn a_shedding_worker_moves_video_down_keeps_audio_and_climbs_back() {
    let mut sim = Sim::new();
    let room = sim.room();
    let (alice, alice_t) = sim.connect_peer_at(room, ALICE);
    let (bob, bob_t) = sim.connect_peer_at(room, BOB);
    let video = sim
        .produce(alice, alice_t, MediaKind::Video, simulcast_params())
        .unwrap();
    let audio = sim
        .produce(alice, alice_t, MediaKind::Audio, opus_params(4242, "1"))
        .unwrap();
    let video_ssrc = consumer_ssrc(&setup::wire(&sim.consume(bob, bob_t, video).unwrap()));
    let audio_ssrc = consumer_ssrc(&setup::wire(&sim.consume(bob, bob_t, audio).unwrap()));
    let mut seq = [100u16, 5000u16];
    let mut ts = [1000u32, 777_000u32];
    let mut audio_seq = 1u16;
    // 30 fps on both layers (layer 0's payloads 100 bytes, layer 1's 1000), 50 pps audio;
    // a key frame on every layer when `key`.
    let mut tick = |sim: &mut Sim, key: bool| {
        for layer in 0..2 {
            let (ssrc, rid) = if layer == 0 {
                (1111, "r0")
            } else {
                (2222, "r1")
            };
            let mut payload = vp8(key, 1);
            payload.resize(if layer == 0 { 100 } else { 1000 }, 0);
            let p = chrome_packet(96, seq[layer], ts[layer], ssrc, "0", Some(rid), &payload);
            seq[layer] = seq[layer].wrapping_add(1);
            ts[layer] = ts[layer].wrapping_add(3000);
            sim.send(ALICE, p);
        }
        sim.send(
            ALICE,
            chrome_packet(
                111,
                audio_seq,
                u32::from(audio_seq) * 960,
                4242,
                "1",
                None,
                &[1, 2, 3],
            ),
        );
        audio_seq = audio_seq.wrapping_add(1);
        sim.advance(Duration::from_millis(33));
    };
    let sizes = |packets: &[Vec<u8>], ssrc: u32| -> Vec<usize> {
        packets
            .iter()
            .filter_map(|p| {
                RtpPacket::parse(&p[..])
                    .ok()
                    .filter(|r| r.ssrc() == ssrc)
                    .map(|r| r.payload().len())
            })
            .collect()
    };
    for i in 0..60 {
        tick(&mut sim, i % 30 == 0);
    }
    let got = sim.take_rtp(BOB);
    assert!(
        sizes(&got, video_ssrc)
            .iter()
            .rev()
            .take(10)
            .all(|n| *n >= 1000),
        "top layer first"
    );

    // Overloaded: level 3 leaves a webcam its lowest layer; audio goes on.
    sim.core.set_shed_level(3);
    for i in 0..90 {
        tick(&mut sim, i % 30 == 0);
    }
    let got = sim.take_rtp(BOB);
    let video_sizes = sizes(&got, video_ssrc);
    assert!(
        video_sizes.iter().rev().take(10).all(|n| *n < 1000),
        "the lowest layer under overload: {video_sizes:?}"
    );
    assert!(sizes(&got, audio_ssrc).len() >= 85, "audio untouched");

    // The load fell: back on the top layer.
    sim.core.set_shed_level(0);
    for i in 0..90 {
        tick(&mut sim, i % 30 == 0);
    }
    let got = sim.take_rtp(BOB);
    assert!(
        sizes(&got, video_ssrc)
            .iter()
            .rev()
            .take(10)
            .all(|n| *n >= 1000),
        "back on the top layer"
    );
}
