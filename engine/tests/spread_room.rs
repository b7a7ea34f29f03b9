//! A room over two real worker threads (issue 16, contract section 6: "Rooms larger than
//! `ROUTER_SCALE_SIZE` peers spread over several workers"), through the engine as the
//! server runs it, with browser-like peers on real loopback sockets: with
//! `ROUTER_SCALE_SIZE=2`, four peers go two and two onto the workers; one publishes and
//! the three others, on both workers, receive its video; a router whose peers all left
//! closes, and the others keep their media.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::{EngineCommand, MediaEngine};
use kolabmeet_net::rtp::RtpPacket;
use kolabmeet_testkit::{
    Incoming, MediaWorker, UdpPeer, UdpWorker, chrome_packet, setup, vp8, vp8_params,
};

const VIDEO_SSRC: u32 = 4321;

/// The port a peer's socket talks to.
fn port_of(p: &UdpPeer) -> u16 {
    p.client.socket.peer_addr().unwrap().port()
}

/// The publisher sends `n` VP8 packets (the first a key frame), 10 ms apart.
fn publish(p: &mut UdpPeer, seq: &mut u16, n: usize) {
    for i in 0..n {
        let mut packet = chrome_packet(
            96,
            *seq,
            u32::from(*seq) * 3000,
            VIDEO_SSRC,
            "0",
            None,
            &vp8(i == 0, *seq as u8),
        );
        *seq = seq.wrapping_add(1);
        p.client.browser.protect_rtp(&mut packet).unwrap();
        p.client.socket.send(&packet).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The RTP packets with `ssrc` a subscriber's socket holds, waiting up to `wait` for
/// more.
fn received(p: &mut UdpPeer, ssrc: u32, wait: Duration) -> usize {
    let socket: &UdpSocket = &p.client.socket;
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut n = 0;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let Ok(len) = socket.recv(&mut buf) else {
            continue;
        };
        let mut d = buf[..len].to_vec();
        if p.client.browser.handle_datagram(Instant::now(), &mut d) == Incoming::Rtp
            && RtpPacket::parse(&d[..]).is_ok_and(|r| r.ssrc() == ssrc)
        {
            n += 1;
        }
    }
    n
}

#[test]
fn four_peers_over_two_workers_receive_each_other_and_an_emptied_router_closes() {
    let mut w = UdpWorker::start_workers(2, 2).unwrap();
    let room = setup::create_room(&mut w);
    let mut peers = setup::connect_peers(&mut w, room, 4).unwrap();
    let ports: Vec<u16> = peers.iter().map(port_of).collect();
    assert_eq!(ports[0], ports[1], "two peers on the room's first router");
    assert_eq!(ports[2], ports[3], "two on its second");
    assert_ne!(ports[0], ports[2], "on two workers");
    assert_eq!(w.engine().workers_of(&room).len(), 2);

    let producer = setup::produce(
        &mut w,
        &peers[0],
        MediaKind::Video,
        vp8_params(VIDEO_SSRC, VIDEO_SSRC + 1),
    )
    .unwrap();
    // Consumed on the publisher's worker (peer 1) and on the other one (2 and 3), right
    // after the producer appeared: the mirror is there by then.
    let mut ssrcs = vec![0];
    for p in &peers[1..] {
        let (_, ssrc) = setup::consume(&mut w, p, producer).unwrap();
        ssrcs.push(ssrc);
    }
    // The other worker's want of the mirror (it has consumers now) reaches the
    // publisher's worker one message later: until then the origin sends it nothing, and a
    // key frame sent meanwhile would be missed (a browser answers the PLI that follows;
    // this publisher sends one key frame only). Seen on a loaded machine: 0 of 50.
    std::thread::sleep(Duration::from_millis(200));
    let mut seq = 1000;
    publish(&mut peers[0], &mut seq, 50);
    for i in 1..4 {
        let got = received(&mut peers[i], ssrcs[i], Duration::from_millis(300));
        assert!(got >= 45, "peer {i} (port {}) got {got} of 50", ports[i]);
    }
    let stats = w.engine().worker_stats();
    assert_eq!(stats.len(), 2);

    // Peers 2 and 3 leave: worker 1's router of the room empties and closes; peer 1
    // keeps receiving.
    for p in &peers[2..] {
        w.submit(EngineCommand::ClosePeer { room, peer: p.peer });
    }
    assert_eq!(
        w.engine().workers_of(&room),
        vec![w.engine().worker_of(&room).unwrap()]
    );
    // The closes are commands to the other worker's thread: once its published tables
    // (once a second) hold no room, they were carried out.
    let emptied = Instant::now() + Duration::from_secs(5);
    while w
        .engine()
        .worker_stats()
        .iter()
        .any(|s| s.port == ports[2] && !s.rooms.is_empty())
        && Instant::now() < emptied
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    publish(&mut peers[0], &mut seq, 20);
    let got = received(&mut peers[1], ssrcs[1], Duration::from_millis(300));
    assert!(got >= 18, "peer 1 got {got} of 20");
    assert_eq!(
        received(&mut peers[2], ssrcs[2], Duration::from_millis(100)),
        0,
        "nothing for a peer that left"
    );
}
