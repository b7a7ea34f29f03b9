//! A media worker on real loopback sockets: a transport created through the engine
//! interface, then ICE and DTLS from a browser-like client over UDP and over ICE-TCP
//! (RFC 4571 framing), and garbage on the media port that harms nobody.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use kolabmeet_engine::{EngineCommand, PeerId, RoomId, TransportId};
use kolabmeet_testkit::{BindingRequest, MediaWorker, Pipe, UdpWorker, setup};
use serde_json::Value;

const READ_TIMEOUT: Duration = Duration::from_millis(200);

/// A transport of `peer` in `room` (created with the room), offering TCP only when
/// `force_tcp`: its `createWebRtcTransport` answer, checked, and its UDP and TCP ports
/// (UDP 0 when TCP is forced).
fn create(
    worker: &mut UdpWorker,
    room: RoomId,
    peer: PeerId,
    force_tcp: bool,
) -> (Value, u16, u16) {
    worker.submit(EngineCommand::CreateRouter { room });
    // What the client gets: the typed reply in the wire format.
    let v = setup::wire(
        &worker
            .command(|tag| EngineCommand::CreateWebRtcTransport {
                tag,
                room,
                peer,
                force_tcp,
                producing: true,
                consuming: false,
            })
            .unwrap(),
    );
    let cands = v["iceCandidates"].as_array().unwrap();
    let port_of = |proto: &str| {
        cands
            .iter()
            .find(|c| c["protocol"] == proto)
            .map(|c| c["port"].as_u64().unwrap() as u16)
    };
    assert_eq!(v["iceParameters"]["iceLite"], true);
    assert_eq!(v["dtlsParameters"]["role"], "auto");
    assert!(
        cands
            .iter()
            .all(|c| c["address"] == "127.0.0.1" && c["type"] == "host")
    );
    let tcp = cands.iter().find(|c| c["protocol"] == "tcp").unwrap();
    assert_eq!(tcp["tcpType"], "passive");
    assert_eq!(port_of("udp").is_none(), force_tcp);
    let (udp, tcp) = (port_of("udp").unwrap_or(0), port_of("tcp").unwrap());
    (v, udp, tcp)
}

/// A nominating check with the credentials of `answer`, one byte of its integrity
/// flipped.
fn wrong_binding(answer: &Value) -> Vec<u8> {
    let ice = &answer["iceParameters"];
    let username = format!("{}:b", ice["usernameFragment"].as_str().unwrap());
    let pwd = ice["password"].as_str().unwrap();
    let mut wrong = BindingRequest::new(&username, pwd).nominating().encode();
    let n = wrong.len();
    wrong[n - 10] ^= 0xff;
    wrong
}

#[test]
fn ice_and_dtls_over_udp_with_garbage_around() {
    let mut worker = UdpWorker::start().unwrap();
    let (room, peer) = (RoomId::random(), PeerId::random());
    let (v, udp_port, _) = create(&mut worker, room, peer, false);
    let transport: TransportId = v["id"].as_str().unwrap().parse().unwrap();
    let server = SocketAddr::from(([127, 0, 0, 1], udp_port));
    // A stranger throws garbage and STUN with a wrong password at the port first.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        &[0xffu8; 100][..],
        &[0x80, 0x60, 0, 1],
        &[22, 254, 253, 0, 0, 0],
        &[],
    ] {
        stranger.send_to(junk, server).unwrap();
    }
    stranger.send_to(&wrong_binding(&v), server).unwrap();
    let mut pipe = Pipe::udp(server, READ_TIMEOUT).unwrap();
    worker.connect_over(&mut pipe, &v, peer).unwrap();
    // The stranger got no answer worth having: at most error responses, never success.
    stranger
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1500];
    while let Ok(n) = stranger.recv(&mut buf) {
        assert_ne!(
            &buf[..2.min(n)],
            &[0x01, 0x01],
            "no success response to a stranger"
        );
    }
    // Another peer's command on this transport is refused.
    let restart = |peer| {
        move |tag| EngineCommand::RestartIce {
            tag,
            peer,
            transport,
        }
    };
    assert!(worker.command(restart(PeerId::random())).is_err());
    let ice = setup::wire(&worker.command(restart(peer)).unwrap());
    assert_ne!(
        ice["usernameFragment"],
        v["iceParameters"]["usernameFragment"]
    );
}

#[test]
fn ice_and_dtls_over_tcp() {
    let mut worker = UdpWorker::start().unwrap();
    let (room, peer) = (RoomId::random(), PeerId::random());
    let (v, _, tcp_port) = create(&mut worker, room, peer, true);
    let server = SocketAddr::from(([127, 0, 0, 1], tcp_port));
    let mut pipe = Pipe::tcp(server, READ_TIMEOUT).unwrap();
    worker.connect_over(&mut pipe, &v, peer).unwrap();
    // An ICE-TCP connection that speaks nonsense is closed or ignored; the worker lives.
    let mut bad = TcpStream::connect(server).unwrap();
    bad.write_all(&[0, 5, 1, 2, 3, 4, 5, 0xff, 0xff]).unwrap();
    drop(bad);
    let (v2, _, _) = create(&mut worker, room, PeerId::random(), true);
    assert_ne!(v2["id"], v["id"]);
}
