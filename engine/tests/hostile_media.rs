//! Hostile input on the media port (issue 4, "Bad input"): random bytes, truncated and
//! oversized datagrams, STUN with bad integrity, DTLS before ICE, RTP for unknown SSRCs,
//! SRTP with bad tags, replays and floods from many addresses. Each is dropped and
//! counted; the worker, the attacked transport and every other transport go on working.

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::{PeerId, RoomId};
use kolabmeet_testkit::*;
use rand::{Rng, SeedableRng};

const ALICE: u16 = 5000;
const BOB: u16 = 6000;
const MALLORY: u16 = 7000;

/// A room where Alice's microphone reaches Bob; returns Alice's transport too.
fn audio_room() -> (Sim, RoomId, kolabmeet_engine::TransportId) {
    let call = Call::audio(opus_params(4242, "1"));
    (call.sim, call.room, call.sender.1)
}

/// Alice sends `n` packets from `seq`; how many reach Bob.
fn delivered(sim: &mut Sim, seq: u16, n: u16) -> usize {
    for s in seq..seq + n {
        sim.send(ALICE, opus_packet(s, 4242));
    }
    sim.take_rtp(BOB).len()
}

/// A nominating check for the transport `ufrag`, MESSAGE-INTEGRITY keyed with `pwd`.
fn binding(ufrag: &str, pwd: &str) -> Vec<u8> {
    BindingRequest::new(&format!("{ufrag}:m"), pwd)
        .nominating()
        .encode()
}

#[test]
fn garbage_from_strangers_is_counted_and_answers_nothing() {
    let (mut sim, room, _) = audio_room();
    assert_eq!(delivered(&mut sim, 0, 3), 3);
    let before = sim.core.sizes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);

    // A transport nobody has connected to yet, whose username Mallory knows.
    let peer = PeerId::random();
    let v = sim
        .command(|tag| setup::create_transport(tag, room, peer))
        .unwrap();
    let fresh: kolabmeet_engine::TransportId = setup::answer_id(&v).unwrap();
    let v = setup::wire(&v);
    let ufrag = v["iceParameters"]["usernameFragment"].as_str().unwrap();

    // STUN naming it, with the wrong password: a 401 error response (RFC 8489 §9.1.3),
    // counted, the tuple not learnt.
    let bad = binding(ufrag, "not-the-password-of-this-transport");
    sim.raw(MALLORY, &bad);
    assert_eq!(sim.core.transport_drops(fresh).unwrap().stun, 1);
    assert_eq!(sim.to_strangers.len(), 1);
    assert_eq!(
        sim.to_strangers[0].data[..2],
        [0x01, 0x11],
        "a Binding error response"
    );
    // The same request truncated at every length, and with flipped bytes.
    for n in 0..bad.len() {
        sim.raw(MALLORY, &bad[..n]);
    }
    for i in 0..bad.len() {
        let mut b = bad.clone();
        b[i] ^= 0x5a;
        sim.raw(MALLORY, &b);
    }
    // Strangers only ever get STUN error responses, never more bytes than they sent.
    assert!(
        sim.to_strangers
            .iter()
            .all(|t| t.data[..2] == [0x01, 0x11] && t.data.len() <= bad.len())
    );
    // DTLS records, RTP and RTCP before any ICE check: nobody's tuple.
    let unknown = sim.core.counters().unknown_source;
    sim.raw(MALLORY, &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    sim.raw(MALLORY, &opus_packet(1, 4242));
    sim.raw(MALLORY, &[0x80, 200, 0, 1, 0, 0, 0, 1]);
    assert_eq!(sim.core.counters().unknown_source, unknown + 3);

    // Random datagrams of every size up to an oversized 64 KiB, from a thousand
    // addresses.
    let unknown = sim.core.counters().unknown_source;
    let mut sent = 0;
    for i in 0..20_000u32 {
        let len = if i % 1000 == 0 {
            65_535
        } else {
            rng.random_range(0..1500)
        };
        let mut d = vec![0u8; len];
        rng.fill(&mut d[..]);
        if d.first() == Some(&0) || d.first() == Some(&1) {
            d[0] = 0xff; // the STUN cases are above; keep this one a flood of junk
        }
        sim.raw(MALLORY + (i % 1000) as u16, &d);
        sent += 1;
    }
    assert_eq!(sim.core.counters().unknown_source, unknown + sent);
    assert!(sim.to_strangers.iter().all(|t| t.data[..2] == [0x01, 0x11]));
    // No table grew: the worker learnt no tuple, no transport, nothing.
    let after = sim.core.sizes();
    assert_eq!(after.tuples, before.tuples);
    assert_eq!(
        after.ufrags,
        before.ufrags + 1,
        "only the transport created above"
    );
    assert_eq!(after.transports, before.transports + 1);
    // Alice still reaches Bob.
    assert_eq!(delivered(&mut sim, 3, 3), 3);
}

#[test]
fn bad_srtp_replays_and_junk_on_a_connected_tuple_are_dropped() {
    let (mut sim, _, alice_t) = audio_room();
    // A second room that must not notice anything.
    let other = sim.room();
    let (carol, carol_t) = sim.connect_peer_at(other, 8000);
    let (dave, dave_t) = sim.connect_peer_at(other, 9000);
    let p = sim
        .produce(carol, carol_t, MediaKind::Audio, opus_params(77, "1"))
        .unwrap();
    sim.consume(dave, dave_t, p).unwrap();

    assert_eq!(delivered(&mut sim, 0, 2), 2);
    let drops = |sim: &Sim| sim.core.transport_drops(alice_t).unwrap();

    // A packet with a bad authentication tag.
    let mut tampered = sim.protect(ALICE, opus_packet(10, 4242));
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    sim.raw(ALICE, &tampered);
    assert_eq!(drops(&sim).srtp, 1);
    // Payload tampered with: same.
    let mut tampered = sim.protect(ALICE, opus_packet(11, 4242));
    tampered[20] ^= 0x80;
    sim.raw(ALICE, &tampered);
    assert_eq!(drops(&sim).srtp, 2);
    // A replay of a packet already forwarded.
    let good = sim.protect(ALICE, opus_packet(12, 4242));
    sim.raw(ALICE, &good);
    assert_eq!(sim.take_rtp(BOB).len(), 1);
    sim.raw(ALICE, &good);
    assert!(sim.take_rtp(BOB).is_empty(), "a replay is not forwarded");
    assert_eq!(drops(&sim).srtp, 3);
    // Truncated SRTP at every length below a full header + tag.
    for n in 0..good.len() {
        sim.raw(ALICE, &good[..n]);
    }
    assert!(sim.take_rtp(BOB).is_empty());
    // Well-encrypted RTP for an SSRC nobody produces: counted, not forwarded.
    let unknown_ssrc = sim.core.counters().unknown_ssrc;
    sim.send(ALICE, opus_packet(13, 999));
    assert!(sim.take_rtp(BOB).is_empty());
    assert_eq!(sim.core.counters().unknown_ssrc, unknown_ssrc + 1);
    // Well-encrypted RTCP full of junk, and truncated RTCP headers.
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    for len in [8usize, 12, 100, 1200] {
        let mut junk = vec![0u8; len];
        rng.fill(&mut junk[..]);
        junk[0] = 0x80 | (junk[0] & 0x3f);
        junk[1] = 200 + (junk[1] % 8);
        sim.send_rtcp(ALICE, junk);
    }
    // Random bytes and DTLS junk from Alice's own (valid) tuple.
    for i in 0..2000 {
        let mut d = vec![0u8; rng.random_range(1..1400)];
        rng.fill(&mut d[..]);
        if i % 2 == 0 {
            d[0] = 20 + d[0] % 44; // DTLS range (RFC 7983)
        }
        sim.raw(ALICE, &d);
    }
    assert!(drops(&sim).unknown + drops(&sim).dtls + drops(&sim).srtp > 3);

    // Alice's media still flows; the other room's too.
    assert_eq!(delivered(&mut sim, 20, 3), 3);
    sim.send(8000, opus_packet(1, 77));
    assert_eq!(sim.take_rtp(9000).len(), 1);
}
