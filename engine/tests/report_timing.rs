//! When rooms send their RTCP reports (RFC 3550 §6.3.1, issue 15): each round comes
//! 0.5-1.5 report intervals after the last, drawn anew each time, so that rooms whose
//! media started in the same timer tick do not all report in the same loop round every
//! second (the density benchmark saw an 11-16 ms stall once a second at 60 meetings on
//! one worker). Virtual time, in the worker's 10 ms timer ticks.

use std::collections::BTreeSet;
use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_net::rtcp::{RtcpPacket, packets};
use kolabmeet_testkit::*;

const ROOMS: u16 = 8;
const TICK: Duration = Duration::from_millis(10);

fn video(seq: u16, ssrc: u32) -> Vec<u8> {
    chrome_packet(
        96,
        seq,
        3000 * u32::from(seq),
        ssrc,
        "0",
        None,
        &vp8(seq == 0, seq as u8),
    )
}

/// Whether `compound` holds a receiver report (what every round sends to a producer's
/// sender).
fn has_receiver_report(compound: &[u8]) -> bool {
    packets(compound).any(|p| matches!(p, Ok(RtcpPacket::ReceiverReport(_))))
}

#[test]
fn rooms_started_together_report_at_spread_randomised_times() {
    let mut sim = Sim::new();
    let mut senders = Vec::new();
    for i in 0..ROOMS {
        let room = sim.room();
        let (sender, st) = sim.connect_peer_at(room, 5000 + i);
        let (receiver, rt) = sim.connect_peer_at(room, 6000 + i);
        let ssrc = 1000 + u32::from(i);
        let producer = sim
            .produce(sender, st, MediaKind::Video, vp8_params(ssrc, 9000 + ssrc))
            .expect("produce");
        sim.consume(receiver, rt, producer).expect("consume");
        senders.push((5000 + i, ssrc));
    }
    // Media starts in every room in the same tick.
    let start = sim.now;
    for &(port, ssrc) in &senders {
        sim.send(port, video(0, ssrc));
        sim.take_rtcp(port);
    }
    // 6 s in 10 ms ticks, media flowing: the tick of every round of each room.
    let mut rounds: Vec<Vec<u32>> = vec![Vec::new(); senders.len()];
    for tick in 1..=600u32 {
        sim.advance(TICK);
        for (i, &(port, ssrc)) in senders.iter().enumerate() {
            if tick % 7 == 0 {
                sim.send(port, video(tick as u16 / 7, ssrc));
            }
            if sim.take_rtcp(port).iter().any(|c| has_receiver_report(c)) {
                rounds[i].push(tick);
            }
        }
    }
    assert_eq!(sim.now - start, Duration::from_secs(6));
    for (i, r) in rounds.iter().enumerate() {
        assert!(r.len() >= 4, "room {i} reported in ticks {r:?}");
        // The first 0.5-1.5 s after media started, each next 0.5-1.5 s after the last
        // (a round is served within a tick of its deadline).
        let gaps: Vec<u32> = std::iter::once(r[0])
            .chain(r.windows(2).map(|w| w[1] - w[0]))
            .collect();
        assert!(
            gaps.iter().all(|g| (50..=151).contains(g)),
            "room {i}: ticks between rounds {gaps:?}"
        );
    }
    // Rooms that started together are spread: their first rounds fall in many ticks,
    // and no room keeps to a fixed one-second beat.
    let first: BTreeSet<u32> = rounds.iter().map(|r| r[0]).collect();
    assert!(
        first.len() >= ROOMS as usize / 2,
        "first rounds in ticks {first:?}"
    );
    let regular = rounds
        .iter()
        .filter(|r| r.windows(2).all(|w| w[1] - w[0] == 100))
        .count();
    assert_eq!(regular, 0, "rounds {rounds:?}");
}
