//! Loss and reports through a worker core in memory (contract section 6, "Loss and key
//! frames"): a receiver's NACK answered from the retransmission buffer over RTX, gaps in
//! a producer's stream NACKed to its sender and filled by its RTX, sender reports with
//! CNAME and the producer's NTP/RTP mapping, receiver reports with the losses, and
//! `consumerScoreChanged` from a lossy receiver report. Packets are bytes; time is virtual.

use kolabmeet_testkit::*;
use std::time::Duration;

use kolabmeet_engine::EngineEvent;
use kolabmeet_net::rtcp::{
    ReportBlockData, RtcpPacket, packets, write_nack, write_receiver_report,
};
use kolabmeet_net::rtp::RtpPacket;

const SSRC: u32 = 1111;
const RTX_SSRC: u32 = 2222;

fn call() -> Call {
    Call::video(vp8_params(SSRC, RTX_SSRC))
}

fn video(seq: u16, key: bool) -> Vec<u8> {
    chrome_packet(
        96,
        seq,
        3000 * u32::from(seq),
        SSRC,
        "0",
        None,
        &vp8(key, seq as u8),
    )
}

#[test]
fn a_receivers_nack_is_answered_over_rtx_once_per_rtt() {
    let Call {
        mut sim, consumed, ..
    } = call();
    let enc = &consumed["rtpParameters"]["encodings"][0];
    let (ssrc, rtx_ssrc) = (
        enc["ssrc"].as_u64().unwrap() as u32,
        enc["rtx"]["ssrc"].as_u64().unwrap() as u32,
    );
    let rtx_pt = consumed["rtpParameters"]["codecs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["mimeType"] == "video/rtx")
        .map(|c| c["payloadType"].as_u64().unwrap() as u8)
        .unwrap();
    for seq in 100..110 {
        sim.send(SENDER, video(seq, seq == 100));
        sim.now += Duration::from_millis(5);
    }
    let sent = sim.take_rtp(RECEIVER);
    assert_eq!(sent.len(), 10);
    let lost = RtpPacket::parse(&sent[4][..]).unwrap();
    let (lost_seq, lost_payload) = (lost.sequence_number(), lost.payload().to_vec());

    let mut nack = Vec::new();
    write_nack(
        &mut nack,
        0x55,
        ssrc,
        &[lost_seq, lost_seq.wrapping_add(400)],
    );
    sim.send_rtcp(RECEIVER, nack.clone());
    let resent = sim.take_rtp(RECEIVER);
    assert_eq!(resent.len(), 1, "one packet resent; the unknown one is not");
    let r = RtpPacket::parse(&resent[0][..]).unwrap();
    assert_eq!((r.ssrc(), r.payload_type()), (rtx_ssrc, rtx_pt));
    assert_eq!(&r.payload()[..2], &lost_seq.to_be_bytes(), "OSN first");
    assert_eq!(&r.payload()[2..], &lost_payload[..]);
    // Its transport-wide sequence number is a fresh one, after the last forwarded
    // packet's (the receiver's bandwidth estimation counts every packet on the wire).
    let tcc_id = consumed["rtpParameters"]["headerExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uri"].as_str().unwrap().contains("transport-wide-cc"))
        .map(|e| e["id"].as_u64().unwrap() as u8)
        .unwrap();
    let tcc =
        |p: &RtpPacket<&[u8]>| u16::from_be_bytes(p.extension(tcc_id).unwrap().try_into().unwrap());
    let last = RtpPacket::parse(&sent[9][..]).unwrap();
    assert_eq!(tcc(&r), tcc(&last).wrapping_add(1));
    assert_eq!(r.timestamp(), lost.timestamp(), "sent with its timestamp");

    // Asked again at once: not resent (once per RTT); later it is, with the next RTX
    // sequence number.
    sim.send_rtcp(RECEIVER, nack.clone());
    assert!(sim.take_rtp(RECEIVER).is_empty());
    sim.now += Duration::from_millis(300);
    sim.send_rtcp(RECEIVER, nack);
    let again = sim.take_rtp(RECEIVER);
    assert_eq!(again.len(), 1);
    let a = RtpPacket::parse(&again[0][..]).unwrap();
    assert_eq!(a.sequence_number(), r.sequence_number().wrapping_add(1));

    // `/metrics` counts three NACKs received and two packets resent.
    let f = sim.core.worker_stats(sim.now, 0).feedback;
    assert_eq!((f.nacks_received, f.retransmitted), (3, 2), "{f:?}");
}

#[test]
fn gaps_are_nacked_to_the_producer_and_its_rtx_fills_them() {
    let Call { mut sim, .. } = call();
    for seq in [200, 201, 203, 204] {
        sim.send(SENDER, video(seq, seq == 200));
    }
    let first = sim.take_rtp(RECEIVER);
    assert_eq!(first.len(), 4);
    let (media_pt, media_ssrc) = {
        let p = RtpPacket::parse(&first[2][..]).unwrap();
        (p.payload_type(), p.ssrc())
    };
    sim.take_rtcp(SENDER);
    sim.advance(Duration::from_millis(50));
    let nacked: Vec<u16> = sim
        .take_rtcp(SENDER)
        .iter()
        .flat_map(|c| {
            packets(c)
                .filter_map(|p| match p.unwrap() {
                    RtcpPacket::Nack(n) if n.media_ssrc() == SSRC => Some(n.lost().collect()),
                    _ => None,
                })
                .collect::<Vec<Vec<u16>>>()
        })
        .flatten()
        .collect();
    assert_eq!(nacked, vec![202], "the gap, and only it");

    // The sender answers over RTX (payload type 97, OSN first).
    let rtx = rtx_of(&video(202, false), RTX_SSRC, 7, &[(4, b"0")]);
    sim.send(SENDER, rtx);
    let repaired = sim.take_rtp(RECEIVER);
    assert_eq!(
        repaired.len(),
        1,
        "the repaired packet reaches the consumer"
    );
    let p = RtpPacket::parse(&repaired[0][..]).unwrap();
    assert_eq!(p.payload(), &vp8(false, 202)[..]);
    assert_eq!((p.payload_type(), p.ssrc()), (media_pt, media_ssrc));
    assert_eq!(
        p.sequence_number(),
        RtpPacket::parse(&first[2][..])
            .unwrap()
            .sequence_number()
            .wrapping_sub(1),
        "in its place, between 201 and 203"
    );
    // The repaired packet is not reported lost to the sender.
    sim.advance(Duration::from_millis(1600));
    let block = sim
        .take_rtcp(SENDER)
        .iter()
        .flat_map(|c| {
            packets(c)
                .filter_map(|p| match p.unwrap() {
                    RtcpPacket::ReceiverReport(rr) => {
                        rr.blocks().map(|b| b.data()).find(|b| b.ssrc == SSRC)
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .next()
        .expect("an RR block");
    assert_eq!((block.cumulative_lost, block.highest_seq), (0, 204));
}

#[test]
fn rtx_copies_of_packets_already_received_are_not_forwarded_again() {
    // Chromium probes its uplink with RTX copies of packets it sent (redundant payload
    // padding). Forwarded again, they would reach the receiver under sequence numbers it
    // already has: its SRTP refuses them as replays and its transport-cc feedback
    // reports them lost.
    let Call { mut sim, .. } = call();
    for seq in 300..=305 {
        sim.send(SENDER, video(seq, seq == 300));
    }
    assert_eq!(sim.take_rtp(RECEIVER).len(), 6);
    for (i, seq) in [301u16, 304, 305, 305].into_iter().enumerate() {
        sim.send(
            SENDER,
            rtx_of(&video(seq, false), RTX_SSRC, 20 + i as u16, &[(4, b"0")]),
        );
    }
    assert_eq!(
        sim.take_rtp(RECEIVER).len(),
        0,
        "nothing new for the consumer"
    );
    // Media goes on as before.
    sim.send(SENDER, video(306, false));
    assert_eq!(sim.take_rtp(RECEIVER).len(), 1);
}

#[test]
fn reports_carry_counts_losses_cname_and_the_producers_clock() {
    let Call {
        mut sim, consumed, ..
    } = call();
    let ssrc = consumer_ssrc(&consumed);
    sim.core
        .set_wall_clock(sim.now, Duration::from_secs(1_700_000_000));
    // The sender's SR: its NTP time X is RTP time 300,000.
    let x: u64 = 0x1234_5678_0000_0000;
    let sr = sender_report(SSRC, x, 300_000);
    // Packets 0..20 but 5 and 6, never repaired.
    for seq in (0..20).filter(|s| *s != 5 && *s != 6) {
        sim.send(SENDER, video(seq, seq == 0));
    }
    sim.send_rtcp(SENDER, sr);
    let sr_at = sim.now;
    sim.take_rtp(RECEIVER);
    sim.take_rtcp(RECEIVER);
    sim.take_rtcp(SENDER);
    sim.advance(Duration::from_millis(1600));

    let mut got_sr = None;
    let mut cname = None;
    for c in sim.take_rtcp(RECEIVER) {
        for p in packets(&c) {
            match p.unwrap() {
                RtcpPacket::SenderReport(s) if s.ssrc() == ssrc => {
                    got_sr = Some((s.ntp(), s.rtp_time(), s.packets(), s.octets()));
                }
                RtcpPacket::Sdes(s) => cname = s.cname(ssrc).map(<[u8]>::to_vec),
                _ => {}
            }
        }
    }
    let (ntp, rtp, count, octets) = got_sr.expect("an SR for the consumer's stream");
    assert_eq!(count, 18);
    assert_eq!(octets, 18 * 5);
    assert_eq!(cname.as_deref(), Some(&b"sender-cname"[..]));
    // 1.6 s after the sender's SR (a round comes 0.5-1.5 s after media started): its
    // clock pair carried forward (the consumer started
    // on the producer's own timestamps, offset 0).
    let elapsed = sim.now - sr_at;
    assert_eq!(rtp, 300_000 + (elapsed.as_secs_f64() * 90_000.0) as u32);
    let expect_ntp = x + ((elapsed.as_nanos() << 32) / 1_000_000_000) as u64;
    assert!(
        ntp.abs_diff(expect_ntp) < 1 << 16,
        "{ntp:x} vs {expect_ntp:x}"
    );

    let mut block = None;
    for c in sim.take_rtcp(SENDER) {
        for p in packets(&c) {
            if let RtcpPacket::ReceiverReport(rr) = p.unwrap() {
                block = rr.blocks().map(|b| b.data()).find(|b| b.ssrc == SSRC);
            }
        }
    }
    let b = block.expect("an RR block for the producer's stream");
    assert_eq!(b.cumulative_lost, 2);
    assert_eq!(b.highest_seq, 19);
    assert_eq!(b.fraction_lost, (2 * 256 / 20) as u8);
    assert_eq!(b.last_sr, (x >> 16) as u32, "LSR echoes the sender's SR");
    let dlsr = f64::from(b.delay_since_last_sr) / 65536.0;
    assert!((dlsr - elapsed.as_secs_f64()).abs() < 0.01, "{dlsr}");
}

/// `SENDER_REPORT_CLOCK=forwarding` (issue 15's side-by-side measurements): the
/// consumer's SR maps the worker's wall clock now to the last timestamp it forwarded
/// moved on by the time since, as mediasoup does, and ignores the producer's mapping.
#[test]
fn forwarding_reports_map_the_worker_clock_to_the_last_timestamp_sent() {
    let Call {
        mut sim, consumed, ..
    } = call();
    let ssrc = consumer_ssrc(&consumed);
    let wall = Duration::from_secs(1_700_000_000);
    sim.core.set_wall_clock(sim.now, wall);
    sim.core
        .set_sender_report_clock(kolabmeet_engine::worker::SenderReportClock::Forwarding);
    let start = sim.now;
    for seq in 0..20 {
        sim.send(SENDER, video(seq, seq == 0));
    }
    let last_sent = sim.now;
    // The producer's own mapping, which this mode does not carry.
    sim.send_rtcp(SENDER, sender_report(SSRC, 0x1234_5678_0000_0000, 300_000));
    sim.take_rtp(RECEIVER);
    sim.take_rtcp(RECEIVER);
    sim.advance(Duration::from_millis(1600));
    let srs = sim.take_sender_reports(RECEIVER, ssrc);
    let (ntp, rtp) = *srs.last().expect("an SR for the consumer's stream");
    // Timestamp 3000 * 19 went out at `last_sent`; the report's instant is now.
    let since = sim.now - last_sent;
    assert_eq!(rtp, 3000 * 19 + (since.as_secs_f64() * 90_000.0) as u32);
    let unix = wall + (sim.now - start);
    let expect_ntp = ((unix.as_secs() + kolabmeet_engine::rtp_stream::NTP_UNIX_OFFSET) << 32)
        + ((u64::from(unix.subsec_nanos()) << 32) / 1_000_000_000);
    assert!(
        ntp.abs_diff(expect_ntp) < 1 << 16,
        "{ntp:x} vs {expect_ntp:x}"
    );
}

#[test]
fn a_lossy_receiver_report_lowers_the_consumer_score() {
    let Call {
        mut sim,
        consumed,
        receiver: (receiver, _),
        ..
    } = call();
    let ssrc = consumer_ssrc(&consumed);
    for seq in 0..100 {
        sim.send(SENDER, video(seq, seq == 0));
    }
    sim.events.clear();
    let mut rr = Vec::new();
    write_receiver_report(
        &mut rr,
        0x55,
        &[ReportBlockData {
            ssrc,
            fraction_lost: 128,
            cumulative_lost: 50,
            highest_seq: 99,
            ..Default::default()
        }],
    );
    sim.send_rtcp(RECEIVER, rr);
    let scores: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::ConsumerScoreChanged { peer, score, .. } if *peer == receiver => {
                Some(score.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(scores.len(), 1, "{:?}", sim.events);
    assert!(scores[0].score < 10, "{:?}", scores[0]);
    assert_eq!(scores[0].producer_scores.len(), 1);
    // Junk after a valid packet is counted, the valid part still acted upon.
    let before = sim.core.counters().malformed_rtcp;
    let mut junk = Vec::new();
    write_receiver_report(&mut junk, 0x55, &[]);
    junk.extend_from_slice(&[0x81, 206, 0, 9, 1, 2, 3, 4]);
    sim.send_rtcp(RECEIVER, junk);
    assert_eq!(sim.core.counters().malformed_rtcp, before + 1);
}

#[test]
fn a_gap_too_large_to_nack_asks_the_sender_for_a_key_frame() {
    let Call { mut sim, .. } = call();
    sim.send(SENDER, video(0, true));
    // Past the key-frame request delay of the consumer's start.
    sim.advance(Duration::from_secs(4));
    sim.send(SENDER, video(1, false));
    sim.take_rtcp(SENDER);
    let plis = |sim: &mut Sim| {
        sim.take_rtcp(SENDER)
            .iter()
            .flat_map(|c| packets(c).collect::<Vec<_>>())
            .filter(|p| matches!(p, Ok(RtcpPacket::Pli(p)) if p.media_ssrc() == SSRC))
            .count()
    };
    // 1,500 packets missing: more than the NACK list holds.
    sim.send(SENDER, video(1502, false));
    assert_eq!(plis(&mut sim), 1, "a PLI instead of 1,500 NACKs");
    // A small gap is NACKed, not answered with a key frame request.
    sim.send(SENDER, video(1505, false));
    sim.advance(Duration::from_millis(50));
    assert_eq!(plis(&mut sim), 0);
}

/// Key frame requests go through the producer's `KeyFrameRequestManager` (issue 8: one
/// implementation): a receiver's PLI reaches the sender once, requests inside
/// `keyFrameRequestDelay` are coalesced into one more at its end, and a request no key
/// frame answered is retried once after a second (mediasoup's
/// `KeyFrameRetransmissionWaitTime`).
#[test]
fn key_frame_requests_are_coalesced_and_retried_once() {
    let Call {
        mut sim, consumed, ..
    } = call();
    let consumer_ssrc = consumed["rtpParameters"]["encodings"][0]["ssrc"]
        .as_u64()
        .unwrap() as u32;
    sim.send(SENDER, video(0, true));
    sim.advance(Duration::from_secs(4));
    sim.take_rtcp(SENDER);
    let plis = |sim: &mut Sim| {
        sim.take_rtcp(SENDER)
            .iter()
            .flat_map(|c| packets(c).collect::<Vec<_>>())
            .filter(|p| matches!(p, Ok(RtcpPacket::Pli(p)) if p.media_ssrc() == SSRC))
            .count()
    };
    let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 9];
    pli.extend_from_slice(&consumer_ssrc.to_be_bytes());
    sim.send_rtcp(RECEIVER, pli.clone());
    assert_eq!(plis(&mut sim), 1, "the receiver's PLI reaches the sender");
    // More PLIs inside the delay: none at once.
    for _ in 0..5 {
        sim.advance(Duration::from_millis(100));
        sim.send_rtcp(RECEIVER, pli.clone());
    }
    assert_eq!(plis(&mut sim), 0, "coalesced");
    // No key frame came: one retry a second after the request.
    sim.advance(Duration::from_millis(600));
    assert_eq!(plis(&mut sim), 1, "retried once");
    sim.advance(Duration::from_millis(1000));
    assert_eq!(plis(&mut sim), 0, "not twice");
    // The delay ends: the requests it held back make one more.
    sim.advance(Duration::from_millis(1000));
    assert_eq!(plis(&mut sim), 1, "one for the coalesced requests");
    // A key frame answers it: no retry.
    sim.send(SENDER, video(1, true));
    sim.advance(Duration::from_secs(2));
    assert_eq!(plis(&mut sim), 0);

    // The worker's snapshot (`/metrics`, the API's stats) counts what happened.
    let stats = sim.core.worker_stats(sim.now, 0);
    assert_eq!(stats.feedback.plis_received, 6, "{:?}", stats.feedback);
    assert!(stats.feedback.plis_sent >= 3, "{:?}", stats.feedback);
    assert_eq!(stats.feedback.firs_received, 0);
    assert!(stats.packets_in > 0 && stats.bytes_in > stats.packets_in);
    assert!(stats.packets_out > 0 && stats.bytes_out > stats.packets_out);
    assert_eq!(stats.rooms.len(), 1);
    assert_eq!(stats.transports.len(), 2);
    assert!(stats.transports.iter().all(|t| t.state == "connected"));
    assert_eq!(stats.producers.len(), 1);
    assert_eq!(stats.producers[0].packets_received, 2);
    assert!(stats.producers[0].bytes_received > 0);
    assert_eq!(stats.consumers.len(), 1);
    assert!(stats.consumers[0].packets_sent >= 1);
    assert!(stats.consumers[0].bytes_sent > 0);
}

/// Issue 8 (latency): a consumer reports nothing until its producer's stream has sent an
/// SR, then only on the producer's clock. An SR on the worker's own clock in between maps
/// timestamps to forwarding times (tens of ms after capture, differently for audio and
/// video), and receivers fit one line through their last 20 SRs: those early reports
/// skewed their lip sync, so video waited longer than audio needed.
#[test]
fn no_sender_report_on_the_workers_clock_before_the_producers() {
    let Call {
        mut sim, consumed, ..
    } = call();
    let ssrc = consumer_ssrc(&consumed);
    sim.core
        .set_wall_clock(sim.now, Duration::from_secs(1_700_000_000));
    for seq in 0..10 {
        sim.send(SENDER, video(seq, seq == 0));
    }
    for _ in 0..5 {
        sim.advance(Duration::from_millis(1000));
    }
    assert_eq!(
        sim.take_sender_reports(RECEIVER, ssrc),
        vec![],
        "no SR before the producer's"
    );

    let x: u64 = 0x1234_5678_0000_0000;
    let sr = sender_report(SSRC, x, 300_000);
    sim.send_rtcp(SENDER, sr);
    let sr_at = sim.now;
    let mut got = Vec::new();
    for _ in 0..100 {
        sim.advance(Duration::from_millis(100));
        got.extend(sim.take_sender_reports(RECEIVER, ssrc));
    }
    // Rounds come 0.5-1.5 s apart (RFC 3550 §6.3.1): at least 6 in 10 s.
    assert!(got.len() >= 6, "{got:?}");
    for (ntp, rtp) in got {
        // Every report lies on the producer's line: NTP X at RTP 300,000, 90 kHz.
        let secs = f64::from(rtp.wrapping_sub(300_000)) / 90_000.0;
        let on_line = x + (secs * 4_294_967_296.0) as u64;
        assert!(ntp.abs_diff(on_line) < 1 << 20, "{ntp:x} vs {on_line:x}");
    }
    assert!(sim.now - sr_at >= Duration::from_secs(10));
}

/// A producer that never sends an SR: its consumers report on the worker's clock once
/// `OWN_CLOCK_AFTER` has passed since they started sending (receivers still get RTT and
/// sender statistics).
#[test]
fn a_producer_without_reports_gets_the_workers_clock_after_a_while() {
    let Call {
        mut sim, consumed, ..
    } = call();
    let ssrc = consumer_ssrc(&consumed);
    sim.core
        .set_wall_clock(sim.now, Duration::from_secs(1_700_000_000));
    sim.send(SENDER, video(0, true));
    let mut waited = Duration::ZERO;
    while waited + Duration::from_secs(1) < kolabmeet_engine::router::consumer::OWN_CLOCK_AFTER {
        sim.advance(Duration::from_secs(1));
        waited += Duration::from_secs(1);
    }
    assert_eq!(sim.take_sender_reports(RECEIVER, ssrc), vec![]);
    sim.advance(Duration::from_secs(2));
    let got = sim.take_sender_reports(RECEIVER, ssrc);
    assert_eq!(got.len(), 1, "{got:?}");
    let unix = Duration::from_secs(1_700_000_000) + waited + Duration::from_secs(2);
    assert_eq!(
        got[0].0 >> 32,
        unix.as_secs() + 2_208_988_800,
        "NTP seconds"
    );
}

/// Contract section 1 (fixed values): the maximum incoming bitrate per WebRTC transport,
/// 1,500,000 bit/s, is announced to senders by REMB with their RTCP reports (issue 9).
#[test]
fn senders_hear_the_maximum_incoming_bitrate() {
    let Call { mut sim, .. } = call();
    sim.send(SENDER, video(0, true));
    sim.take_rtcp(SENDER);
    sim.advance(Duration::from_millis(1600));
    let rembs: Vec<(u64, Vec<u32>)> = sim
        .take_rtcp(SENDER)
        .iter()
        .flat_map(|c| packets(c).collect::<Vec<_>>())
        .filter_map(|p| match p {
            Ok(RtcpPacket::Remb(r)) => Some((r.bitrate(), r.ssrcs().collect())),
            _ => None,
        })
        .collect();
    assert_eq!(rembs.len(), 1, "{rembs:?}");
    let (bitrate, ssrcs) = &rembs[0];
    assert!(
        (1_490_000..=1_500_000).contains(bitrate),
        "{bitrate} (REMB's mantissa rounds down)"
    );
    assert_eq!(ssrcs, &vec![SSRC]);
}

/// Issue 17, audio that survives loss: an Opus producer with in-band FEC negotiated
/// (`useinbandfec=1`, as Chromium offers it) hears in the server's receiver reports the
/// worst loss its receivers reported, when that is worse than its own uplink's, so that
/// its encoder turns FEC on; one without it hears only of its own loss.
#[test]
fn an_opus_sender_with_fec_hears_its_receivers_loss() {
    const MIC: u32 = 3333;
    let reported = |fec: bool| -> Vec<(u8, i32)> {
        let mut params = opus_params(MIC, "1");
        if !fec {
            params.codecs[0].parameters.clear();
        }
        let Call {
            mut sim, consumed, ..
        } = Call::audio(params);
        let ssrc = consumer_ssrc(&consumed);
        let mut seq = 0u16;
        let mut blocks = Vec::new();
        for round in 0..8 {
            for _ in 0..50 {
                sim.send(SENDER, opus_packet(seq, MIC));
                seq += 1;
                sim.advance(Duration::from_millis(20));
            }
            // The receiver lost 5 % (13/256) of what it was sent.
            let mut rr = Vec::new();
            write_receiver_report(
                &mut rr,
                0x55,
                &[ReportBlockData {
                    ssrc,
                    fraction_lost: 13,
                    cumulative_lost: 3 * (round + 1),
                    highest_seq: u32::from(seq),
                    ..Default::default()
                }],
            );
            sim.send_rtcp(RECEIVER, rr);
            for c in sim.take_rtcp(SENDER) {
                for p in packets(&c).flatten() {
                    if let RtcpPacket::ReceiverReport(r) = p {
                        blocks.extend(
                            r.blocks()
                                .map(|b| b.data())
                                .filter(|b| b.ssrc == MIC)
                                .map(|b| (b.fraction_lost, b.cumulative_lost)),
                        );
                    }
                }
            }
        }
        blocks
    };
    let with = reported(true);
    let without = reported(false);
    println!("reports to the sender with FEC {with:?}, without {without:?}");
    // The first report may come before the receiver's.
    assert!(
        with.len() >= 2 && without.len() >= 2,
        "{with:?} {without:?}"
    );
    assert!(with.iter().skip(1).all(|&(f, _)| f >= 13), "{with:?}");
    assert!(with.last().is_some_and(|&(_, c)| c > 0), "{with:?}");
    assert!(
        with.windows(2).all(|w| w[1].1 >= w[0].1),
        "never back: {with:?}"
    );
    assert!(
        without.iter().all(|&(f, c)| f == 0 && c == 0),
        "{without:?}"
    );
}

/// Issue 17, audio that survives loss: an audio consumer negotiates NACK (mediasoup-client
/// announces it for Opus on Chromium, and the router offers it), and a receiver's NACK
/// for an Opus packet is answered with the packet itself (Opus has no RTX: same SSRC,
/// sequence number, timestamp and payload).
#[test]
fn an_audio_receivers_nack_is_answered_with_the_packet() {
    const MIC: u32 = 3333;
    let Call {
        mut sim, consumed, ..
    } = Call::audio(opus_params(MIC, "1"));
    let fb: Vec<&str> = consumed["rtpParameters"]["codecs"][0]["rtcpFeedback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert!(fb.contains(&"nack"), "Opus consumer feedback {fb:?}");
    let ssrc = consumer_ssrc(&consumed);
    for seq in 0..10 {
        sim.send(SENDER, opus_packet(seq, MIC));
        sim.now += Duration::from_millis(20);
    }
    let sent = sim.take_rtp(RECEIVER);
    assert_eq!(sent.len(), 10);
    let lost = RtpPacket::parse(&sent[6][..]).unwrap();
    let mut nack = Vec::new();
    write_nack(&mut nack, 0x55, ssrc, &[lost.sequence_number()]);
    // The receiver here did get the packet it NACKs, so the resent copy reaches it as a
    // replay (same SSRC and sequence number: what a receiver that lost it takes in).
    let replayed = sim.replayed;
    sim.send_rtcp(RECEIVER, nack);
    let f = sim.core.worker_stats(sim.now, 0).feedback;
    assert_eq!((f.nacks_received, f.retransmitted), (1, 1), "{f:?}");
    assert_eq!(
        sim.replayed,
        replayed + 1,
        "resent under its own SSRC and number"
    );
    assert!(sim.take_rtp(RECEIVER).is_empty());
}
