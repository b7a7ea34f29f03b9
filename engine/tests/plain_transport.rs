//! Plain RTP transports (issue 10, contract sections 1 and 5: `createPlainTransport`,
//! `connectPlainTransport`): comedia learning of the sender's RTP and RTCP addresses,
//! refusal of a second sender, RTCP on its own port, and producers and consumers on them
//! exactly as on WebRTC transports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::transport::{
    DropReason, PlainTransport, PlainTransportError, Received, Tuple, TupleProtocol,
};
use kolabmeet_engine::{
    EngineCommand, EngineError, EngineEvent, EngineReply, PeerId, RequestTag, RoomId, TransportId,
};
use kolabmeet_testkit::*;

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::new(LOCAL.into(), port)
}

fn udp(local: u16, remote: u16) -> Tuple {
    Tuple {
        protocol: TupleProtocol::Udp,
        local: addr(local),
        remote: addr(remote),
    }
}

fn receiver_report(ssrc: u32) -> Vec<u8> {
    // RR (PT 201) with no report block.
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

#[test]
fn comedia_learns_rtp_and_rtcp_senders_and_refuses_a_second_one() {
    let mut t = PlainTransport::new(addr(41000), addr(41001));
    assert!(!t.is_connected());
    let rtp = plain_rtp(1, 0, 1234, &[1, 2, 3]);
    // First RTP packet fixes the RTP sender.
    assert_eq!(t.receive(&udp(41000, 5000), &rtp), Received::Rtp);
    assert_eq!(t.remote_rtp(), Some(addr(5000)));
    assert!(t.is_connected());
    assert_eq!(t.rtcp_tuple(), None, "RTCP address not learnt yet");
    // Another sender cannot take over.
    assert_eq!(
        t.receive(&udp(41000, 6000), &rtp),
        Received::Dropped(DropReason::WrongSource)
    );
    assert_eq!(t.remote_rtp(), Some(addr(5000)));
    assert_eq!(t.receive(&udp(41000, 5000), &rtp), Received::Rtp);
    // RTCP is learnt on its own port, from its own first packet.
    let rr = receiver_report(1234);
    assert_eq!(t.receive(&udp(41001, 5001), &rr), Received::Rtcp);
    assert_eq!(t.rtcp_tuple().map(|t| t.remote), Some(addr(5001)));
    assert_eq!(
        t.receive(&udp(41001, 6001), &rr),
        Received::Dropped(DropReason::WrongSource)
    );
    // RTCP on the RTP port, RTP on the RTCP port and garbage are dropped.
    assert!(matches!(
        t.receive(&udp(41000, 5000), &rr),
        Received::Dropped(_)
    ));
    assert!(matches!(
        t.receive(&udp(41001, 5001), &rtp),
        Received::Dropped(_)
    ));
    for garbage in [&[][..], &[0xff; 3][..], &[0x00; 40][..]] {
        assert!(matches!(
            t.receive(&udp(41000, 5000), garbage),
            Received::Dropped(_)
        ));
    }
    assert_eq!(t.drops().wrong_source, 2);
    assert_eq!(t.rtp_tuple().map(|t| t.local), Some(addr(41000)));
    assert_eq!(t.rtcp_tuple().map(|t| t.local), Some(addr(41001)));
}

#[test]
fn connect_fixes_both_addresses_and_is_validated() {
    let mut t = PlainTransport::new(addr(41000), addr(41001));
    let ip: IpAddr = LOCAL.into();
    assert!(matches!(
        t.connect(ip, 0, 5001),
        Err(PlainTransportError::InvalidAddress(_))
    ));
    assert!(matches!(
        t.connect(Ipv4Addr::UNSPECIFIED.into(), 5000, 5001),
        Err(PlainTransportError::InvalidAddress(_))
    ));
    assert!(matches!(
        t.connect("::1".parse().unwrap(), 5000, 5001),
        Err(PlainTransportError::WrongFamily { .. })
    ));
    t.connect(ip, 5000, 5003).unwrap();
    assert_eq!(
        t.connect(ip, 5000, 5003),
        Err(PlainTransportError::AlreadyConnected)
    );
    assert_eq!(t.rtp_tuple().map(|t| t.remote), Some(addr(5000)));
    assert_eq!(t.rtcp_tuple().map(|t| t.remote), Some(addr(5003)));
    // Connected: nothing is learnt from strangers.
    assert_eq!(
        t.receive(&udp(41000, 7000), &plain_rtp(1, 0, 1, &[0])),
        Received::Dropped(DropReason::WrongSource)
    );
    assert_eq!(
        t.receive(&udp(41000, 5000), &plain_rtp(1, 0, 1, &[0])),
        Received::Rtp
    );
}

/// Creates a plain transport in the worker core as its driver does, over `ports`.
fn create_plain(sim: &mut Sim, room: RoomId, peer: PeerId, ports: (u16, u16)) -> TransportId {
    let info = sim.create_plain_transport(room, peer, ports);
    assert_eq!(info.port, ports.0);
    assert_eq!(info.rtcp_port, ports.1);
    assert_eq!(info.ip, "127.0.0.1");
    info.id
}

/// From a plain (comedia) producer to a WebRTC consumer and a plain consumer; a second
/// sender is dropped and counted; RTCP from the plain receiver arrives on its own port;
/// closing frees the ports.
#[test]
fn plain_producer_reaches_webrtc_and_plain_consumers() {
    let mut sim = Sim::new();
    let room = sim.room();
    let sender = PeerId::random();
    let plain = create_plain(&mut sim, room, sender, (41000, 41001));
    let producer = sim
        .produce(sender, plain, MediaKind::Video, vp8_params(1111, 2222))
        .unwrap();
    let (browser, browser_t) = sim.connect_peer_at(room, 7000);
    let browser_consumer = sim.consume(browser, browser_t, producer).unwrap();
    let browser_ssrc = consumer_ssrc(&kolabmeet_testkit::setup::wire(&browser_consumer));

    // The plain receiver (ffmpeg) connected to 127.0.0.1:5004/5005.
    let recorder = PeerId::random();
    let rec_t = create_plain(&mut sim, room, recorder, (41002, 41003));
    sim.command(
        |tag| kolabmeet_engine::EngineCommand::ConnectPlainTransport {
            tag,
            peer: recorder,
            transport: rec_t,
            ip: LOCAL.into(),
            port: 5004,
            rtcp_port: 5005,
        },
    )
    .unwrap();
    let consumed = sim.consume(recorder, rec_t, producer).unwrap();
    let EngineReply::ConsumerCreated(info) = consumed else {
        panic!("{consumed:?}")
    };
    let rec_ssrc = info.rtp_parameters.encodings[0].ssrc.expect("an SSRC");

    let mut sent = 0;
    for seq in 0..20u16 {
        let mut p = plain_rtp(seq, u32::from(seq) * 3000, 1111, &vp8(seq == 0, 0));
        sim.core.handle_datagram(sim.now, udp(41000, 6000), &mut p);
        sent += 1;
        // A second sender with the same SSRC, interleaved: dropped.
        let mut q = plain_rtp(seq + 500, 0, 1111, &vp8(true, 0));
        sim.core.handle_datagram(sim.now, udp(41000, 6100), &mut q);
    }
    sim.pump();
    let got = sim.take_rtp(7000);
    assert_eq!(
        got.len(),
        sent,
        "the browser gets the first sender's packets only"
    );
    let drops = sim.core.transport_drops(plain).unwrap();
    assert_eq!(drops.wrong_source, 20);
    // What stats and /metrics say: the plain transports as such, their drops, and the
    // worker's count by reason (not among the other transport drops).
    let stats = sim.core.worker_stats(sim.now, 0);
    let t = stats
        .transports
        .iter()
        .find(|t| t.transport_id == plain)
        .expect("the plain transport in the stats");
    assert_eq!((t.kind, t.state), ("plain", "connected"));
    assert_eq!((t.wrong_source_packets, t.dropped_packets), (20, 20));
    assert_eq!(
        stats
            .transports
            .iter()
            .filter(|t| t.kind == "plain")
            .count(),
        2
    );
    assert_eq!(stats.dropped.wrong_source, 20);

    // The plain consumer's packets go in the clear from its RTP port to 5004.
    let to_rec: Vec<_> = sim
        .to_strangers
        .drain(..)
        .filter(|t| t.tuple.remote == addr(5004))
        .collect();
    assert_eq!(to_rec.len(), sent);
    assert!(to_rec.iter().all(|t| t.tuple.local == addr(41002)));
    assert!(
        to_rec
            .iter()
            .all(|t| t.data[8..12] == rec_ssrc.to_be_bytes())
    );

    // Sender reports to the plain receiver go to its RTCP port, from ours.
    // (with media flowing, and the sender's own SR on its RTCP port, which gives the
    // consumer's SR its clock and teaches the transport the sender's RTCP address).
    let mut sr = sender_report(1111, 0x1234_5678_0000_0000, 60_000);
    sim.core.handle_datagram(sim.now, udp(41001, 6001), &mut sr);
    for i in 0..60u16 {
        let seq = 20 + i;
        let mut p = plain_rtp(seq, u32::from(seq) * 3000, 1111, &vp8(false, 0));
        sim.core.handle_datagram(sim.now, udp(41000, 6000), &mut p);
        sim.advance(std::time::Duration::from_millis(100));
    }
    let rtcp: Vec<_> = sim
        .to_strangers
        .iter()
        .filter(|t| t.tuple.remote == addr(5005))
        .cloned()
        .collect();
    assert!(!rtcp.is_empty(), "sender reports to the plain receiver");
    assert!(rtcp.iter().all(|t| t.tuple.local == addr(41003)));
    assert!(rtcp.iter().any(|t| t.data[1] == 200), "an SR");
    // ... and receiver reports about the plain sender's stream to its RTCP address.
    let rr_out: Vec<_> = sim
        .to_strangers
        .iter()
        .filter(|t| t.tuple.remote == addr(6001))
        .collect();
    assert!(
        rr_out
            .iter()
            .any(|t| t.data[1] == 201 && t.tuple.local == addr(41001)),
        "an RR to the sender"
    );

    // A PLI from the browser becomes a key frame request to the plain sender, on its
    // RTCP address.
    sim.to_strangers.clear();
    let mut pli = Vec::new();
    kolabmeet_net::rtcp::pli::write_pli(&mut pli, 1, browser_ssrc);
    sim.send_rtcp(7000, pli);
    sim.advance(std::time::Duration::from_secs(1));
    assert!(
        sim.to_strangers.iter().any(|t| t.tuple.remote == addr(6001)
            && t.tuple.local == addr(41001)
            && t.data[1] == 206),
        "a PLI to the plain sender"
    );

    // Lying RTCP from the receiver (wrong SSRCs, absurd report block) on the RTCP port:
    // taken as RTCP, nothing breaks.
    let mut lie = vec![0x81, 201, 0, 7];
    lie.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
    lie.extend_from_slice(&0x0bad_f00d_u32.to_be_bytes());
    lie.extend_from_slice(&[0xff; 20]);
    sim.core
        .handle_datagram(sim.now, udp(41003, 5005), &mut lie);
    sim.pump();
    let before_rr = sim.core.transport_drops(plain).unwrap();
    // A second RTCP sender towards the producing transport: dropped and counted.
    let mut rr = receiver_report(1111);
    sim.core.handle_datagram(sim.now, udp(41001, 6666), &mut rr);
    assert_eq!(
        sim.core.transport_drops(plain).unwrap().wrong_source,
        before_rr.wrong_source + 1
    );

    // Closing the peers frees both transports' ports.
    let before = sim.core.sizes().transports;
    sim.core.handle_command(
        sim.now,
        kolabmeet_engine::EngineCommand::ClosePeer {
            room,
            peer: recorder,
        },
    );
    sim.core.handle_command(
        sim.now,
        kolabmeet_engine::EngineCommand::ClosePeer { room, peer: sender },
    );
    assert_eq!(sim.core.sizes().transports, before - 2);
    let mut released: Vec<u16> = std::iter::from_fn(|| sim.core.poll_released_port()).collect();
    released.sort_unstable();
    assert_eq!(released, vec![41000, 41001, 41002, 41003]);
    // Datagrams to a released port are unknown now.
    let unknown = sim.core.counters().unknown_source;
    let mut p = plain_rtp(99, 0, 1111, &vp8(true, 0));
    sim.core.handle_datagram(sim.now, udp(41000, 6000), &mut p);
    assert_eq!(sim.core.counters().unknown_source, unknown + 1);
}

/// A packet a plain producer receives twice (the network duplicated it) is forwarded
/// twice with the same sequence number, as mediasoup does: the WebRTC consumer's browser
/// decrypts it once and drops the copy as a replay, which the test kit counts apart from
/// packets it cannot decrypt (found by the `plain_datagrams` fuzz target, whose strict
/// harness took the replay for a decryption failure).
#[test]
fn a_duplicated_packet_reaches_the_browser_once() {
    let mut sim = Sim::new();
    let room = sim.room();
    let sender = PeerId::random();
    let plain = create_plain(&mut sim, room, sender, (41000, 41001));
    let producer = sim
        .produce(sender, plain, MediaKind::Video, vp8_params(1111, 2222))
        .unwrap();
    let (browser, browser_t) = sim.connect_peer_at(room, 7000);
    sim.consume(browser, browser_t, producer).unwrap();
    assert!(sim.strict);
    for seq in [0u16, 0, 1] {
        let mut p = plain_rtp(seq, u32::from(seq) * 3000, 1111, &vp8(seq == 0, 0));
        sim.core.handle_datagram(sim.now, udp(41000, 6000), &mut p);
        sim.pump();
    }
    assert_eq!(sim.take_rtp(7000).len(), 2);
    assert_eq!((sim.replayed, sim.undecryptable), (1, 0));
}

/// `createPlainTransport` is one command path: the core queues it until its driver bound
/// the two ports (`serve_port_requests`), then makes the transport and answers; without
/// ports (a harness without sockets, or none free) it answers unavailable.
#[test]
fn a_plain_transport_request_waits_for_the_drivers_ports() {
    let mut sim = Sim::new();
    let room = sim.room();
    let peer = PeerId::random();
    let create = |tag| EngineCommand::CreatePlainTransport {
        tag,
        room,
        peer,
        producing: true,
        consuming: false,
    };
    let tag = RequestTag(900_000);
    sim.core.handle_command(sim.now, create(tag));
    let answer = |sim: &mut Sim| {
        while let Some(e) = sim.core.poll_event() {
            if let EngineEvent::Reply { tag: t, result } = e
                && t == tag
            {
                return Some(result);
            }
        }
        None
    };
    assert!(answer(&mut sim).is_none(), "no answer before the ports");
    sim.core.serve_port_requests(|| Some((45000, 45001)));
    match answer(&mut sim) {
        Some(Ok(EngineReply::PlainTransportCreated(info))) => {
            assert_eq!((info.port, info.rtcp_port), (45000, 45001));
        }
        other => panic!("{other:?}"),
    }
    // Without ports: unavailable.
    assert_eq!(
        sim.command(create).err(),
        Some(EngineError::PlainTransportUnavailable)
    );
}
