//! A media worker on real loopback sockets: a transport created through the engine
//! interface, then ICE and DTLS from a browser-like client over UDP and over ICE-TCP
//! (RFC 4571 framing), and garbage on the media port that harms nobody.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::{DtlsCertificate, DtlsEvent, DtlsSession};
use kolabmeet_engine::ortc::{DtlsFingerprint, DtlsParameters, DtlsRole};
use kolabmeet_engine::worker::{WorkerEngine, WorkerSettings};
use kolabmeet_engine::{
    EngineCommand, EngineError, EngineEvent, MediaEngine, PeerId, RequestTag, RoomId, TransportId,
};
use serde_json::Value;
use stun_rs::attributes::ice::{IceControlling, Priority, UseCandidate};
use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName};
use stun_rs::methods::BINDING;
use stun_rs::{HMACKey, MessageClass, MessageEncoderBuilder, StunMessageBuilder};

fn engine() -> WorkerEngine {
    let settings = WorkerSettings {
        listen_ip: "127.0.0.1".parse().unwrap(),
        announced_address: "127.0.0.1".into(),
        port: 0,
    };
    WorkerEngine::start(settings, 1, Arc::new(|| {})).unwrap()
}

fn wait_reply(engine: &mut WorkerEngine, tag: RequestTag) -> Result<Value, EngineError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        while let Some(e) = engine.poll_event() {
            if let EngineEvent::Reply { tag: t, result } = e
                && t == tag
            {
                return result;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no reply to {tag:?}");
}

struct Created {
    id: TransportId,
    ufrag: String,
    pwd: String,
    fingerprints: Vec<DtlsFingerprint>,
    udp_port: u16,
    tcp_port: u16,
}

fn create(engine: &mut WorkerEngine, room: RoomId, peer: PeerId, force_tcp: bool) -> Created {
    engine.submit(EngineCommand::CreateRouter { room });
    engine.submit(EngineCommand::CreateWebRtcTransport {
        tag: RequestTag(1),
        room,
        peer,
        force_tcp,
        producing: true,
        consuming: false,
    });
    let v = wait_reply(engine, RequestTag(1)).unwrap();
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
    Created {
        id: v["id"].as_str().unwrap().parse().unwrap(),
        ufrag: v["iceParameters"]["usernameFragment"]
            .as_str()
            .unwrap()
            .into(),
        pwd: v["iceParameters"]["password"].as_str().unwrap().into(),
        fingerprints: serde_json::from_value(v["dtlsParameters"]["fingerprints"].clone()).unwrap(),
        udp_port: port_of("udp").unwrap_or(0),
        tcp_port: port_of("tcp").unwrap(),
    }
}

fn binding(c: &Created) -> Vec<u8> {
    let msg = StunMessageBuilder::new(BINDING, MessageClass::Request)
        .with_attribute(UserName::new(format!("{}:browser", c.ufrag)).unwrap())
        .with_attribute(Priority::from(100))
        .with_attribute(IceControlling::from(1))
        .with_attribute(UseCandidate::default())
        .with_attribute(MessageIntegrity::new(
            HMACKey::new_short_term(&c.pwd).unwrap(),
        ))
        .with_attribute(Fingerprint::default())
        .build();
    let mut out = [0u8; 256];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut out, &msg)
        .unwrap();
    out[..n].to_vec()
}

/// A datagram pipe to the worker: UDP, or ICE-TCP with RFC 4571 framing.
enum Pipe {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

impl Pipe {
    fn send(&mut self, data: &[u8]) {
        match self {
            Pipe::Udp(s) => {
                s.send(data).unwrap();
            }
            Pipe::Tcp(s, _) => {
                let mut framed = (data.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(data);
                s.write_all(&framed).unwrap();
            }
        }
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        match self {
            Pipe::Udp(s) => {
                let mut buf = [0u8; 4096];
                s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
            }
            Pipe::Tcp(s, acc) => loop {
                if acc.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([acc[0], acc[1]]));
                    if acc.len() >= 2 + len {
                        let frame = acc[2..2 + len].to_vec();
                        acc.drain(..2 + len);
                        return Some(frame);
                    }
                }
                let mut buf = [0u8; 4096];
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => acc.extend_from_slice(&buf[..n]),
                }
            },
        }
    }
}

fn connect_over(mut pipe: Pipe, engine: &mut WorkerEngine, c: &Created, peer: PeerId) {
    // ICE.
    pipe.send(&binding(c));
    let resp = pipe.recv().expect("a STUN response");
    assert_eq!(&resp[..2], &[0x01, 0x01], "Binding success response");
    // DTLS, the browser as client.
    let cert = DtlsCertificate::generate().unwrap();
    let now = Instant::now();
    let mut dtls = DtlsSession::new(DtlsRole::Client, &cert, &c.fingerprints, now).unwrap();
    engine.submit(EngineCommand::ConnectWebRtcTransport {
        tag: RequestTag(2),
        peer,
        transport: c.id,
        dtls_parameters: DtlsParameters {
            role: DtlsRole::Client,
            fingerprints: cert.fingerprints().to_vec(),
        },
    });
    assert_eq!(wait_reply(engine, RequestTag(2)).unwrap(), Value::Null);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "DTLS did not complete");
        while let Some(d) = dtls.poll_transmit() {
            pipe.send(&d);
        }
        if let Some(d) = pipe.recv() {
            let _ = dtls.handle_datagram(Instant::now(), &d);
        } else {
            dtls.handle_timeout(Instant::now());
        }
        if let Some(DtlsEvent::Connected { .. }) = dtls.poll_event() {
            break;
        }
    }
}

#[test]
fn ice_and_dtls_over_udp_with_garbage_around() {
    let mut engine = engine();
    let (room, peer) = (RoomId::random(), PeerId::random());
    let c = create(&mut engine, room, peer, false);
    let server: SocketAddr = format!("127.0.0.1:{}", c.udp_port).parse().unwrap();
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
    let mut wrong = binding(&c);
    let n = wrong.len();
    wrong[n - 10] ^= 0xff;
    stranger.send_to(&wrong, server).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(server).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    connect_over(Pipe::Udp(udp), &mut engine, &c, peer);
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
    engine.submit(EngineCommand::RestartIce {
        tag: RequestTag(3),
        peer: PeerId::random(),
        transport: c.id,
    });
    assert!(wait_reply(&mut engine, RequestTag(3)).is_err());
    engine.submit(EngineCommand::RestartIce {
        tag: RequestTag(4),
        peer,
        transport: c.id,
    });
    let ice = wait_reply(&mut engine, RequestTag(4)).unwrap();
    assert_ne!(ice["usernameFragment"], c.ufrag.as_str());
}

#[test]
fn ice_and_dtls_over_tcp() {
    let mut engine = engine();
    let (room, peer) = (RoomId::random(), PeerId::random());
    let c = create(&mut engine, room, peer, true);
    let tcp = TcpStream::connect(("127.0.0.1", c.tcp_port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    connect_over(Pipe::Tcp(tcp, Vec::new()), &mut engine, &c, peer);
    // An ICE-TCP connection that speaks nonsense is closed or ignored; the worker lives.
    let mut bad = TcpStream::connect(("127.0.0.1", c.tcp_port)).unwrap();
    bad.write_all(&[0, 5, 1, 2, 3, 4, 5, 0xff, 0xff]).unwrap();
    drop(bad);
    let c2 = create(&mut engine, room, PeerId::random(), true);
    assert_ne!(c2.id, c.id);
}
