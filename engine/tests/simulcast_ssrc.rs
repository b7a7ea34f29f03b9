//! Simulcast signalled by SSRC (no RID, as Firefox and older clients send it), and
//! retransmissions identified by `repaired-rtp-stream-id` (RFC 8852 §3.2), through a
//! worker core in memory: the consumer forwards the highest layer, RTX is undone into
//! the packet it repairs, and the repaired packet reaches the consumer in its place.

use kolabmeet_testkit::*;
use std::time::Duration;

use kolabmeet_engine::ortc::RtpParameters;
use kolabmeet_net::rtp::RtpPacket;
use serde_json::json;

fn ssrc_simulcast_params() -> RtpParameters {
    serde_json::from_value(json!({
        "mid": "0",
        "codecs": vp8_rtx_codecs(),
        "headerExtensions": [
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 },
            { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2 }
        ],
        "encodings": [
            { "ssrc": 1111, "rtx": { "ssrc": 1112 } },
            { "ssrc": 2222, "rtx": { "ssrc": 2223 } }
        ],
        "rtcp": { "cname": "ff" }
    }))
    .unwrap()
}

/// A sender at 5000 producing `params`, a receiver at 6000 consuming it (simulcast).
fn call(params: RtpParameters) -> Sim {
    let call = Call::video(params);
    assert_eq!(call.consumed["type"], "simulcast");
    call.sim
}

fn payloads(packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    packets
        .iter()
        .map(|p| RtpPacket::parse(&p[..]).unwrap().payload().to_vec())
        .collect()
}

/// Sends `n` frames on both layers (layer 0 at SSRC 1111, layer 1 at 2222, RIDs `r0`/`r1`
/// when `rids`), each layer starting with a key frame; layer 1's payloads are marked
/// `0xb0 + i`. Layer 1's frame `lose` is not sent but returned, with every layer-1
/// payload meant.
fn send_layers(sim: &mut Sim, n: u16, rids: bool, lose: u16) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut lost = Vec::new();
    let mut top_payloads = Vec::new();
    for i in 0..n {
        sim.now += Duration::from_millis(33);
        for (layer, ssrc, seq, rid) in [(0u8, 1111, 100 + i, "r0"), (1, 2222, 7000 + i, "r1")] {
            let payload = vp8(i == 0, 0xa0 + 0x10 * layer + i as u8);
            let ts = 3000 * u32::from(i);
            let p = chrome_packet(96, seq, ts, ssrc, "0", rids.then_some(rid), &payload);
            if layer == 1 {
                top_payloads.push(payload);
                if i == lose {
                    lost = p;
                    continue;
                }
            }
            sim.send(5000, p);
        }
    }
    (lost, top_payloads)
}

#[test]
fn simulcast_by_ssrc_forwards_the_top_layer_and_its_rtx_repairs() {
    let mut sim = call(ssrc_simulcast_params());
    let (lost, sent_top) = send_layers(&mut sim, 10, false, 5);
    let got = sim.take_rtp(6000);
    // The first key frame to arrive starts the consumer (layer 0's, before layer 1 was
    // seen), then it moves up at layer 1's key frame and stays there.
    let mut expected = vec![vp8(true, 0xa0)];
    expected.extend(sent_top.iter().cloned());
    expected.remove(6);
    assert_eq!(
        payloads(&got),
        expected,
        "the top layer, told apart by its SSRC"
    );

    // The sender repairs the loss over its RTX SSRC for layer 1.
    let rtx = rtx_of(&lost, 2223, 1, &[(4, b"0")]);
    sim.send(5000, rtx);
    let repaired = sim.take_rtp(6000);
    assert_eq!(payloads(&repaired), vec![sent_top[5].clone()]);
    let seq_of = |p: &Vec<u8>| RtpPacket::parse(&p[..]).unwrap().sequence_number();
    assert_eq!(
        seq_of(&repaired[0]),
        seq_of(&got[5]).wrapping_add(1),
        "in its place"
    );
}

#[test]
fn rtx_named_by_repaired_rid_is_undone_into_the_packet_it_repairs() {
    let mut sim = call(simulcast_params());
    let (lost, _) = send_layers(&mut sim, 8, true, 3);
    let got = sim.take_rtp(6000);
    assert_eq!(
        got.len(),
        8,
        "layer 0's first key frame, then layer 1 but the lost one"
    );
    // RTX from an SSRC never signalled: repaired-rid (id 11) names the layer.
    let rtx = rtx_of(&lost, 4444, 50, &[(4, b"0"), (11, b"r1")]);
    sim.send(5000, rtx);
    let repaired = sim.take_rtp(6000);
    assert_eq!(payloads(&repaired), vec![vp8(false, 0xb3)]);
    let r = RtpPacket::parse(&repaired[0][..]).unwrap();
    let before = RtpPacket::parse(&got[3][..]).unwrap();
    assert_eq!(
        r.sequence_number(),
        before.sequence_number().wrapping_add(1)
    );
    assert_eq!(r.ssrc(), before.ssrc());
    // An RTX packet whose repaired-rid names no layer is dropped and counted.
    let unknown_before = sim.core.counters().unknown_ssrc;
    let junk = rtx_of(&got[0], 5555, 1, &[(4, b"0"), (11, b"r9")]);
    sim.send(5000, junk);
    assert!(sim.take_rtp(6000).is_empty());
    assert_eq!(sim.core.counters().unknown_ssrc, unknown_before + 1);
}

/// Issue 8, bounded learning: a sender that keeps sending RTX from new SSRCs, each naming
/// a layer by repaired-rid, cannot make the worker learn SSRC after SSRC. The first RTX
/// SSRC of a layer is bound (as mediasoup does) and the routing tables stay the size they
/// were; later strangers are dropped and counted.
#[test]
fn rtx_ssrcs_are_learnt_once_per_layer() {
    let mut sim = call(simulcast_params());
    let (lost, _) = send_layers(&mut sim, 8, true, 3);
    sim.take_rtp(6000);
    let rtx = rtx_of(&lost, 4444, 50, &[(4, b"0"), (11, b"r1")]);
    sim.send(5000, rtx);
    assert_eq!(sim.take_rtp(6000).len(), 1, "the first RTX SSRC is learnt");
    let routes = sim.core.sizes().routes;
    let unknown = sim.core.counters().unknown_ssrc;
    for i in 0..1000u32 {
        let rtx = rtx_of(&lost, 10_000 + i, 60 + i as u16, &[(4, b"0"), (11, b"r1")]);
        sim.send(5000, rtx);
    }
    assert!(sim.take_rtp(6000).is_empty(), "strangers repair nothing");
    assert_eq!(sim.core.sizes().routes, routes, "no SSRC learnt");
    assert_eq!(sim.core.counters().unknown_ssrc, unknown + 1000);
}

/// Issue 8 (latency): a layer switch keeps the output on one capture clock. The layers'
/// RTP clocks start apart; their SRs say where. Layer 1's first key frame is captured 33 ms
/// after layer 0's last frame sent but forwarded 58 ms after it (a key frame takes longer
/// to encode): its timestamp follows the capture (3,000 ticks on), not the forwarding
/// (about 5,250 on, what the time since the last packet gave before), and the consumer's
/// SRs stay on layer 0's NTP/RTP line. A timestamp off by the forwarding delay is jitter
/// to the receiver and, once its NTP/RTP mapping stepped, an audio/video offset.
#[test]
fn a_layer_switch_keeps_timestamps_on_the_capture_clock() {
    let call = Call::video(ssrc_simulcast_params());
    let out_ssrc = consumer_ssrc(&call.consumed);
    let mut sim = call.sim;
    let x: u64 = 0x1234_5678_0000_0000;
    let (origin0, origin1) = (10_000u32, 900_000u32);
    // Both layers' SRs for the same instant X: RTP origin0 on layer 0, origin1 on layer 1.
    for (ssrc, rtp_time) in [(1111, origin0), (2222, origin1)] {
        sim.send_rtcp(5000, sender_report(ssrc, x, rtp_time));
    }
    let frame = Duration::from_nanos(33_333_333);
    // Layer 0: frames 0..3 (key first), 33.3 ms apart.
    for i in 0..3u16 {
        let p = chrome_packet(
            96,
            100 + i,
            origin0 + 3000 * u32::from(i),
            1111,
            "0",
            None,
            &vp8(i == 0, i as u8),
        );
        sim.send(5000, p);
        sim.now += frame;
    }
    // Layer 1's key frame for capture 3, 25 ms late; then its frame 4.
    sim.now += Duration::from_millis(25);
    sim.send(
        5000,
        chrome_packet(96, 7000, origin1 + 9000, 2222, "0", None, &vp8(true, 0xb3)),
    );
    sim.now += frame;
    sim.send(
        5000,
        chrome_packet(
            96,
            7001,
            origin1 + 12_000,
            2222,
            "0",
            None,
            &vp8(false, 0xb4),
        ),
    );
    let got: Vec<(u8, u32)> = sim
        .take_rtp(6000)
        .iter()
        .map(|p| {
            let p = RtpPacket::parse(&p[..]).unwrap();
            (p.payload()[2], p.timestamp())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, origin0),
            (1, origin0 + 3000),
            (2, origin0 + 6000),
            (0xb3, origin0 + 9000),
            (0xb4, origin0 + 12_000)
        ],
        "layer 1 on layer 0's capture clock"
    );
    // The consumer's SR (rounds 0.5-1.5 s apart): on layer 0's line (NTP X at origin0,
    // 90 kHz).
    sim.take_rtcp(6000);
    sim.advance(Duration::from_millis(1600));
    let srs = sim.take_sender_reports(6000, out_ssrc);
    let (ntp, rtp) = *srs.last().expect("an SR");
    let secs = f64::from(rtp.wrapping_sub(origin0)) / 90_000.0;
    let on_line = x + (secs * 4_294_967_296.0) as u64;
    assert!(ntp.abs_diff(on_line) < 1 << 22, "{ntp:x} vs {on_line:x}");
}

/// Issue 9: a sender that stops its top encoding (its own bandwidth estimate dropped it)
/// is followed within about half a second, not after the 1.5 s a layer takes to count as
/// inactive: the lower layer keeps delivering the same frames, so the top one is stalled.
/// The consumer asks for a key frame on the lower layer and switches on it.
#[test]
fn a_stalled_top_layer_is_left_within_half_a_second() {
    let call = Call::video(ssrc_simulcast_params());
    let mut sim = call.sim;
    let frame = |sim: &mut Sim, layer: u16, i: u16, key: bool| {
        let (ssrc, seq) = if layer == 0 {
            (1111, 100 + i)
        } else {
            (2222, 7000 + i)
        };
        let payload = vp8(key, (0xa0 + 0x10 * layer + i) as u8);
        sim.send(
            5000,
            chrome_packet(96, seq, 3000 * u32::from(i), ssrc, "0", None, &payload),
        );
    };
    for i in 0..10u16 {
        sim.now += Duration::from_millis(33);
        frame(&mut sim, 0, i, i == 0);
        frame(&mut sim, 1, i, i == 0);
    }
    assert!(!sim.take_rtp(6000).is_empty());
    sim.take_rtcp(5000);
    // Only layer 0 from now on.
    let stopped = sim.now;
    let mut pli_after = None;
    for i in 10..60u16 {
        sim.now += Duration::from_millis(33);
        frame(&mut sim, 0, i, false);
        let pli = sim
            .take_rtcp(5000)
            .iter()
            .any(|r| r[1] == 206 && r[8..12] == 1111u32.to_be_bytes());
        if pli && pli_after.is_none() {
            pli_after = Some(sim.now - stopped);
        }
    }
    let after = pli_after.expect("a PLI for layer 0");
    assert!(after < Duration::from_millis(800), "{after:?}");
    sim.now += Duration::from_millis(33);
    frame(&mut sim, 0, 60, true);
    assert_eq!(sim.take_rtp(6000).len(), 1, "layer 0 from its key frame on");
}

/// Issue 16, overload: a worker asks a sender to repair only the encodings it forwards.
/// The consumer is on layer 1; a packet lost on layer 1 is NACKed to the sender, one lost
/// on layer 0 (which nothing forwards) is not. (An overflowing worker asked for every
/// packet it had dropped, on every layer: hundreds of thousands of NACKs a minute that
/// kept it overloaded.)
#[test]
fn only_forwarded_encodings_are_nacked_to_the_sender() {
    use kolabmeet_net::rtcp::{RtcpPacket, packets};
    let mut sim = call(ssrc_simulcast_params());
    for i in 0..20u16 {
        sim.now += Duration::from_millis(33);
        for (layer, ssrc, seq) in [(0u8, 1111u32, 100 + i), (1, 2222, 7000 + i)] {
            // Frame 12 of each layer is lost on the way.
            if i == 12 {
                continue;
            }
            let p = chrome_packet(
                96,
                seq,
                3000 * u32::from(i),
                ssrc,
                "0",
                None,
                &vp8(i == 0, layer),
            );
            sim.send(5000, p);
        }
    }
    sim.take_rtcp(5000);
    sim.advance(Duration::from_millis(500));
    let nacked: Vec<u32> = sim
        .take_rtcp(5000)
        .iter()
        .flat_map(|c| packets(c).collect::<Vec<_>>())
        .filter_map(|p| match p {
            Ok(RtcpPacket::Nack(n)) => Some(n.media_ssrc()),
            _ => None,
        })
        .collect();
    assert!(
        nacked.contains(&2222),
        "the forwarded layer is repaired: {nacked:?}"
    );
    assert!(
        !nacked.contains(&1111),
        "nothing forwards layer 0: {nacked:?}"
    );
}
