//! Datagrams into plain RTP transports of a real worker core (in memory, the test kit's
//! [`Sim`]; issue 10): a comedia transport producing VP8 and a connected one consuming
//! it, with a WebRTC consumer too. The input is a list of datagrams, each led by one byte
//! (low 2 bits: which of the four plain ports; next 2 bits: which of four senders; high
//! 4 bits: how far time moves first) and one length byte; the payload is raw, or, when
//! the length byte is odd, an RTP header with the producer's SSRC is written over it so
//! that the routing and RTCP paths behind the demultiplexer get fuzzed too.
//!
//! Asserts: no panic, only the first sender is ever learnt, the core's tables stay
//! within what this setup holds, and the WebRTC consumer's browser decrypts everything
//! the core sends it (the test kit's strict mode; a duplicate the core forwards as it
//! came is a replay the browser drops, counted apart).
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::transport::{Tuple, TupleProtocol};
use kolabmeet_engine::{EngineCommand, PeerId};
use kolabmeet_testkit::{Sim, vp8_params};
use libfuzzer_sys::fuzz_target;

const PORTS: [u16; 4] = [41000, 41001, 41002, 41003];
const STEPS_MS: [u64; 16] = [
    0, 0, 0, 0, 1, 2, 5, 10, 20, 50, 100, 300, 1000, 2000, 5000, 10000,
];
const MAX_DATAGRAMS: usize = 300;
/// The port of the WebRTC consumer's browser.
const BROWSER: u16 = 7000;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::new([127, 0, 0, 1].into(), port)
}

fuzz_target!(|data: &[u8]| {
    let mut sim = Sim::with_shared_certificates();
    let room = sim.room();
    let sender = PeerId::random();
    let producing = sim
        .create_plain_transport(room, sender, (PORTS[0], PORTS[1]))
        .id;
    let producer = sim
        .produce(sender, producing, MediaKind::Video, vp8_params(1111, 2222))
        .expect("produce");
    let recorder = PeerId::random();
    let consuming = sim
        .create_plain_transport(room, recorder, (PORTS[2], PORTS[3]))
        .id;
    sim.command(|tag| EngineCommand::ConnectPlainTransport {
        tag,
        peer: recorder,
        transport: consuming,
        ip: [127, 0, 0, 1].into(),
        port: 5004,
        rtcp_port: 5005,
    })
    .expect("connect");
    sim.consume(recorder, consuming, producer).expect("consume");
    let (browser, browser_t) = sim.connect_peer_at(room, BROWSER);
    sim.consume(browser, browser_t, producer).expect("consume");

    let mut rest = data;
    let mut first_sender: Option<u16> = None;
    for _ in 0..MAX_DATAGRAMS {
        let [op, len, tail @ ..] = rest else { break };
        let n = usize::from(*len).min(tail.len());
        let mut d = tail[..n].to_vec();
        rest = &tail[n..];
        let step = STEPS_MS[usize::from(op >> 4)];
        if step > 0 {
            sim.advance(Duration::from_millis(step));
            // The WebRTC consumer's browser keeps its consent fresh (RFC 7675), as a live
            // one does; steps are shorter than the 30 s it lasts.
            let check = sim.endpoint(BROWSER).browser.binding_request();
            sim.raw(BROWSER, &check);
        }
        let local = PORTS[usize::from(op & 3)];
        let remote = 6000 + u16::from((op >> 2) & 3);
        if len & 1 == 1 && d.len() >= 12 {
            d[0] = 0x80 | (d[0] & 0x3f);
            d[1] = 96 | (d[1] & 0x80);
            d[8..12].copy_from_slice(&1111u32.to_be_bytes());
        }
        let rtp_like =
            local == PORTS[0] && d.len() >= 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1]);
        if rtp_like && first_sender.is_none() {
            first_sender = Some(remote);
        }
        let tuple = Tuple {
            protocol: TupleProtocol::Udp,
            local: addr(local),
            remote: addr(remote),
        };
        sim.core.handle_datagram(sim.now, tuple, &mut d);
        sim.pump();
    }
    sim.advance(Duration::from_secs(1));
    // What reaches the recorder's address comes from its own ports only.
    for t in &sim.to_strangers {
        if t.tuple.remote.port() == 5004 {
            assert_eq!(t.tuple.local, addr(PORTS[2]));
        }
        if t.tuple.remote.port() == 5005 {
            assert_eq!(t.tuple.local, addr(PORTS[3]));
        }
        // The producing transport only ever sends to its learnt sender.
        if t.tuple.local == addr(PORTS[1]) || t.tuple.local == addr(PORTS[0]) {
            assert!(t.tuple.remote.port() >= 6000 && t.tuple.remote.port() < 6004);
        }
        if t.tuple.local == addr(PORTS[0]) {
            assert_eq!(Some(t.tuple.remote.port()), first_sender);
        }
    }
    let sizes = sim.core.sizes();
    assert_eq!(sizes.transports, 3);
    assert!(sizes.consumers <= 2 && sizes.producers <= 1, "{sizes:?}");
});
