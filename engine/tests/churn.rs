//! Every closing path frees everything it owned (issue 4): rooms of three peers, each
//! sending simulcast video and audio and consuming the others, torn down by
//! `closeProducer`, peers leaving (or kicked), a publisher losing its role, the room
//! closing, and transports abandoned by their browsers (ICE consent lost, then
//! [`ABANDONED_AFTER`]). After every round the worker's tables are back to empty.

use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::worker::ABANDONED_AFTER;
use kolabmeet_engine::{EngineCommand, EngineEvent, PeerId, ProducerId, RoomId, TransportId};
use kolabmeet_testkit::*;

struct Member {
    peer: PeerId,
    transport: TransportId,
    port: u16,
    producers: Vec<ProducerId>,
}

/// A room of three members, each producing simulcast VP8 and Opus and consuming the
/// other two; some media sent so every table has entries.
fn full_room(sim: &mut Sim, round: u16) -> (RoomId, Vec<Member>) {
    let room = sim.room();
    let mut members = Vec::new();
    for i in 0..3u16 {
        let port = 10_000 + round * 10 + i;
        let (peer, transport) = sim.connect_peer_at(room, port);
        let video = sim
            .produce(peer, transport, MediaKind::Video, simulcast_params())
            .unwrap();
        let audio = sim
            .produce(
                peer,
                transport,
                MediaKind::Audio,
                opus_params(4000 + u32::from(i), "1"),
            )
            .unwrap();
        members.push(Member {
            peer,
            transport,
            port,
            producers: vec![video, audio],
        });
    }
    for m in 0..3 {
        for o in 0..3 {
            if m != o {
                for p in members[o].producers.clone() {
                    sim.consume(members[m].peer, members[m].transport, p)
                        .unwrap();
                }
            }
        }
    }
    for (i, m) in members.iter().enumerate() {
        for s in 0..3u16 {
            for (rid, ssrc) in [("r0", 111), ("r1", 222)] {
                let ssrc = ssrc + 1000 * i as u32;
                let p = chrome_packet(
                    96,
                    s,
                    u32::from(s) * 3000,
                    ssrc,
                    "0",
                    Some(rid),
                    &vp8(s == 0, 0),
                );
                sim.send(m.port, p);
            }
            sim.send(m.port, opus_packet(s, 4000 + i as u32));
        }
    }
    // Both others' audio and video reach each member.
    for m in &members {
        assert!(
            !sim.take_rtp(m.port).is_empty(),
            "media flows in round {round}"
        );
    }
    (room, members)
}

#[test]
fn every_closing_path_frees_everything() {
    let mut sim = Sim::new();
    for round in 0..25u16 {
        let (room, members) = full_room(&mut sim, round);
        let s = sim.core.sizes();
        assert_eq!(
            (s.rooms, s.transports, s.producers, s.consumers),
            (1, 3, 6, 12)
        );
        assert!(s.routes > 0 && s.per_transport > 0);
        match round % 5 {
            0 => {
                // closeProducer of every producer, then everybody leaves.
                for m in &members {
                    for p in &m.producers {
                        sim.command(|tag| EngineCommand::CloseProducer {
                            tag,
                            peer: m.peer,
                            producer: *p,
                        })
                        .unwrap();
                    }
                }
                assert_eq!(
                    sim.core.sizes().consumers,
                    0,
                    "consumers went with their producers"
                );
                for m in &members {
                    sim.core
                        .handle_command(sim.now, EngineCommand::ClosePeer { room, peer: m.peer });
                }
            }
            1 => {
                // Peers leave (or are kicked: the same engine command) one by one.
                for m in &members {
                    sim.core
                        .handle_command(sim.now, EngineCommand::ClosePeer { room, peer: m.peer });
                }
            }
            2 => {
                // Publishers lose their role, then leave.
                for m in &members {
                    sim.core
                        .handle_command(sim.now, EngineCommand::CloseProducersOf { peer: m.peer });
                }
                assert_eq!(sim.core.sizes().producers, 0);
                for m in &members {
                    sim.core
                        .handle_command(sim.now, EngineCommand::ClosePeer { room, peer: m.peer });
                }
            }
            3 => {} // The room closes with everybody in it.
            _ => {
                // The browsers vanish: consent expires (30 s), then the transports are
                // abandoned and close by themselves, telling the control plane.
                sim.events.clear();
                sim.advance(Duration::from_secs(31));
                assert_eq!(
                    sim.core.sizes().transports,
                    3,
                    "kept while ICE may come back"
                );
                sim.advance(ABANDONED_AFTER);
                assert_eq!(sim.core.sizes().transports, 0);
                let closed = sim
                    .events
                    .iter()
                    .filter(|e| matches!(e, EngineEvent::TransportClosed { .. }))
                    .count();
                assert_eq!(closed, 3);
                assert_eq!(sim.tables()[1..], [0; 10]);
            }
        }
        sim.core
            .handle_command(sim.now, EngineCommand::CloseRouter { room });
        sim.pump();
        assert_eq!(sim.tables(), [0; 11], "round {round}");
        sim.advance(Duration::from_secs(5));
    }
}

/// A long stream keeps flowing past 32,768 packets (half the sequence space) from where
/// its consumer started, across the wrap, and a late packet within bounds still passes.
#[test]
fn a_long_stream_is_forwarded_past_half_the_sequence_space() {
    let mut sim = Call::audio(opus_params(99, "1")).sim;
    let mut delivered = 0;
    for i in 0..70_000u32 {
        let seq = (i + 1000) as u16;
        sim.send(5000, opus_packet(seq, 99));
        if i % 1000 == 999 {
            delivered += sim.take_rtp(6000).len();
        }
    }
    delivered += sim.take_rtp(6000).len();
    assert_eq!(delivered, 70_000);
}
