//! The in-memory harness of the engine's integration tests: a worker core with virtual
//! time and browser-like peers (ICE binding requests, DTLS client, SRTP from the same
//! stacks), plus Chrome-shaped packets.
#![allow(dead_code)] // each test file uses part of it

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::{DtlsCertificate, DtlsEvent, DtlsSession, SrtpSession};
use kolabmeet_engine::ortc::{DtlsParameters, DtlsRole, RtpParameters};
use kolabmeet_engine::transport::{Tuple, TupleProtocol};
use kolabmeet_engine::worker::{WorkerCore, WorkerSettings};
use kolabmeet_engine::{
    EngineCommand, EngineError, EngineEvent, PeerId, RequestTag, RoomId, TransportId,
};
use kolabmeet_net::rtp::write_extension_block;
use rand::SeedableRng;
use serde_json::{Value, json};
use stun_rs::attributes::ice::{IceControlling, Priority, UseCandidate};
use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName};
use stun_rs::methods::BINDING;
use stun_rs::{HMACKey, MessageClass, MessageEncoderBuilder, StunMessageBuilder};

pub struct Browser {
    pub dtls: DtlsSession,
    pub srtp: Option<SrtpSession>,
    /// Decrypted RTP and RTCP received.
    pub rtp: Vec<Vec<u8>>,
    pub rtcp: Vec<Vec<u8>>,
}

pub struct Sim {
    pub core: WorkerCore,
    pub now: Instant,
    pub browsers: HashMap<Tuple, Browser>,
    pub events: Vec<EngineEvent>,
    pub next_tag: u64,
    /// What the core sent to addresses that are no browser of the simulation.
    pub to_strangers: Vec<kolabmeet_engine::transport::Transmit>,
}

pub fn tuple(port: u16) -> Tuple {
    Tuple {
        protocol: TupleProtocol::Udp,
        local: "127.0.0.1:44444".parse().unwrap(),
        remote: format!("127.0.0.1:{port}").parse().unwrap(),
    }
}

impl Sim {
    pub fn new() -> Self {
        let settings = WorkerSettings {
            listen_ip: "127.0.0.1".parse().unwrap(),
            announced_address: "127.0.0.1".into(),
            port: 44444,
        };
        Sim {
            core: WorkerCore::new(
                settings,
                DtlsCertificate::generate().unwrap(),
                rand::rngs::StdRng::seed_from_u64(7),
            ),
            now: Instant::now(),
            browsers: HashMap::new(),
            events: Vec::new(),
            next_tag: 0,
            to_strangers: Vec::new(),
        }
    }

    pub fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<Value, EngineError> {
        self.next_tag += 1;
        let tag = RequestTag(self.next_tag);
        self.core.handle_command(self.now, make(tag));
        self.pump();
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, EngineEvent::Reply { tag: t, .. } if *t == tag))
            .expect("a reply");
        match self.events.remove(i) {
            EngineEvent::Reply { result, .. } => result,
            _ => unreachable!(),
        }
    }

    /// Delivers everything the core sends, and everything the browsers' DTLS sends back.
    pub fn pump(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.core.poll_transmit() {
                moved = true;
                let Some(b) = self.browsers.get_mut(&t.tuple) else {
                    self.to_strangers.push(t);
                    continue;
                };
                match t.data[0] {
                    20..=63 => {
                        let _ = b.dtls.handle_datagram(self.now, &t.data);
                    }
                    128..=191 => {
                        let mut d = t.data.clone();
                        let srtp = b.srtp.as_mut().expect("SRTP before media");
                        if kolabmeet_net::rtcp::is_rtcp(&d) {
                            srtp.unprotect_rtcp(&mut d).unwrap();
                            b.rtcp.push(d);
                        } else {
                            srtp.unprotect_rtp(&mut d).unwrap();
                            b.rtp.push(d);
                        }
                    }
                    _ => {}
                }
            }
            let tuples: Vec<Tuple> = self.browsers.keys().copied().collect();
            for t in tuples {
                let b = self.browsers.get_mut(&t).unwrap();
                let mut out = Vec::new();
                while let Some(d) = b.dtls.poll_transmit() {
                    out.push(d);
                }
                while let Some(e) = b.dtls.poll_event() {
                    if let DtlsEvent::Connected {
                        profile,
                        local_keys,
                        remote_keys,
                    } = e
                    {
                        b.srtp =
                            Some(SrtpSession::new(profile, &local_keys, &remote_keys).unwrap());
                    }
                }
                for mut d in out {
                    moved = true;
                    self.core.handle_datagram(self.now, t, &mut d);
                }
            }
            while let Some(e) = self.core.poll_event() {
                self.events.push(e);
            }
            if !moved {
                return;
            }
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
        self.pump();
    }

    /// A peer with a connected WebRTC transport.
    pub fn connect_peer(&mut self, room: RoomId, port: u16) -> (PeerId, TransportId) {
        let peer = PeerId::random();
        let v = self
            .command(|tag| EngineCommand::CreateWebRtcTransport {
                tag,
                room,
                peer,
                force_tcp: false,
                producing: true,
                consuming: true,
            })
            .unwrap();
        let id: TransportId = v["id"].as_str().unwrap().parse().unwrap();
        let ufrag = v["iceParameters"]["usernameFragment"]
            .as_str()
            .unwrap()
            .to_owned();
        let pwd = v["iceParameters"]["password"].as_str().unwrap().to_owned();
        let fps: Vec<kolabmeet_engine::ortc::DtlsFingerprint> =
            serde_json::from_value(v["dtlsParameters"]["fingerprints"].clone()).unwrap();
        let cert = DtlsCertificate::generate().unwrap();
        let t = tuple(port);
        let dtls = DtlsSession::new(DtlsRole::Client, &cert, &fps, self.now).unwrap();
        self.browsers.insert(
            t,
            Browser {
                dtls,
                srtp: None,
                rtp: Vec::new(),
                rtcp: Vec::new(),
            },
        );
        let msg = StunMessageBuilder::new(BINDING, MessageClass::Request)
            .with_attribute(UserName::new(format!("{ufrag}:b")).unwrap())
            .with_attribute(Priority::from(1))
            .with_attribute(IceControlling::from(1))
            .with_attribute(UseCandidate::default())
            .with_attribute(MessageIntegrity::new(
                HMACKey::new_short_term(&pwd).unwrap(),
            ))
            .with_attribute(Fingerprint::default())
            .build();
        let mut buf = [0u8; 256];
        let n = MessageEncoderBuilder::default()
            .build()
            .encode(&mut buf, &msg)
            .unwrap();
        let mut stun = buf[..n].to_vec();
        self.core.handle_datagram(self.now, t, &mut stun);
        assert_eq!(self.core.poll_transmit().map(|x| x.data[0]), Some(1));
        self.command(|tag| EngineCommand::ConnectWebRtcTransport {
            tag,
            peer,
            transport: id,
            dtls_parameters: DtlsParameters {
                role: DtlsRole::Client,
                fingerprints: cert.fingerprints().to_vec(),
            },
        })
        .unwrap();
        self.pump();
        assert!(self.browsers[&t].srtp.is_some(), "DTLS connected");
        (peer, id)
    }

    /// The browser at `port` sends an RTP packet.
    pub fn send(&mut self, port: u16, mut packet: Vec<u8>) {
        let t = tuple(port);
        let b = self.browsers.get_mut(&t).unwrap();
        b.srtp.as_mut().unwrap().protect_rtp(&mut packet).unwrap();
        self.core.handle_datagram(self.now, t, &mut packet);
        self.pump();
    }

    pub fn send_rtcp(&mut self, port: u16, mut packet: Vec<u8>) {
        let t = tuple(port);
        let b = self.browsers.get_mut(&t).unwrap();
        b.srtp.as_mut().unwrap().protect_rtcp(&mut packet).unwrap();
        self.core.handle_datagram(self.now, t, &mut packet);
        self.pump();
    }

    pub fn take_rtp(&mut self, port: u16) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.browsers.get_mut(&tuple(port)).unwrap().rtp)
    }
}

/// An RTP packet as Chrome sends it: one-byte extensions (mid id 4, rid id 10, abs-send-time
/// id 2, transport-cc id 3), then the payload.
pub fn chrome_packet(
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    mid: &str,
    rid: Option<&str>,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    let mut exts: Vec<(u8, &[u8])> = vec![(4, mid.as_bytes()), (2, &[1, 2, 3]), (3, &[0, 9])];
    if let Some(r) = rid {
        exts.push((10, r.as_bytes()));
    }
    let mut block = [0u8; 64];
    let n = write_extension_block(&exts, &mut block).unwrap();
    p[0] |= 0x10;
    p.extend_from_slice(&block[..n]);
    p.extend_from_slice(payload);
    p
}

/// VP8 payload: minimal descriptor (S=1, PID=0) and a payload header with P (0 = key).
pub fn vp8(key: bool, marker_byte: u8) -> Vec<u8> {
    vec![0x10, if key { 0x00 } else { 0x01 }, marker_byte, 0xaa, 0xbb]
}

/// VP8 (payload type 96, with NACK, PLI and FIR feedback) and its RTX (97), as Chrome
/// sends them through mediasoup-client.
pub fn vp8_rtx_codecs() -> Value {
    let fb = json!([{ "type": "nack" }, { "type": "nack", "parameter": "pli" }, { "type": "ccm", "parameter": "fir" }]);
    json!([
        { "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "rtcpFeedback": fb },
        { "mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": { "apt": 96 } }
    ])
}

pub fn simulcast_params() -> RtpParameters {
    serde_json::from_value(json!({
        "mid": "0",
        "codecs": vp8_rtx_codecs(),
        "headerExtensions": [
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 },
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "id": 10 },
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", "id": 11 },
            { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2 },
            { "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 3 }
        ],
        "encodings": [
            { "rid": "r0", "scalabilityMode": "L1T3" },
            { "rid": "r1", "scalabilityMode": "L1T3" }
        ],
        "rtcp": { "cname": "sender" }
    }))
    .unwrap()
}

pub fn consumer_ssrc(v: &Value) -> u32 {
    v["rtpParameters"]["encodings"][0]["ssrc"].as_u64().unwrap() as u32
}

/// Opus parameters as mediasoup-client sends them for a microphone (MID 1, audio level at
/// id 1), one encoding with `ssrc`.
pub fn opus_params(ssrc: u32) -> RtpParameters {
    serde_json::from_value(json!({
        "mid": "1",
        "codecs": [{ "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
                     "parameters": { "useinbandfec": 1 }, "rtcpFeedback": [{ "type": "transport-cc" }] }],
        "headerExtensions": [
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 },
            { "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1 }
        ],
        "encodings": [{ "ssrc": ssrc }],
        "rtcp": { "cname": "a" }
    }))
    .unwrap()
}

/// An Opus packet with an audio-level extension and a 20-byte payload of 7s.
pub fn opus_packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x90, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x85, 0, 0]); // audio level
    p.extend_from_slice(&[7; 20]);
    p
}

/// A call in memory: a sender (browser at port 5000) producing video, a receiver (6000)
/// consuming it.
pub struct VideoCall {
    pub sim: Sim,
    pub receiver: PeerId,
    /// The `consume` answer.
    pub consumed: Value,
}

impl VideoCall {
    /// The sender produces `params` (video); the receiver consumes it.
    pub fn new(params: RtpParameters) -> Self {
        let mut sim = Sim::new();
        let room = RoomId::random();
        sim.core
            .handle_command(sim.now, EngineCommand::CreateRouter { room });
        let (sender, sender_t) = sim.connect_peer(room, 5000);
        let (receiver, receiver_t) = sim.connect_peer(room, 6000);
        let producer = sim
            .produce(
                sender,
                sender_t,
                kolabmeet_engine::ortc::MediaKind::Video,
                params,
            )
            .unwrap();
        let consumed = sim.consume(receiver, receiver_t, producer).unwrap();
        VideoCall {
            sim,
            receiver,
            consumed,
        }
    }
}

impl Sim {
    /// `peer` produces `params` of `kind` on `transport`.
    pub fn produce(
        &mut self,
        peer: PeerId,
        transport: TransportId,
        kind: kolabmeet_engine::ortc::MediaKind,
        params: RtpParameters,
    ) -> Result<kolabmeet_engine::ProducerId, EngineError> {
        let v = self.command(|tag| EngineCommand::Produce {
            tag,
            peer,
            transport,
            kind,
            rtp_parameters: params,
            app_data: json!({}),
        })?;
        Ok(v["id"].as_str().unwrap().parse().unwrap())
    }

    /// `peer` consumes `producer` on `transport` with the router's full capabilities;
    /// the `consume` answer.
    pub fn consume(
        &mut self,
        peer: PeerId,
        transport: TransportId,
        producer: kolabmeet_engine::ProducerId,
    ) -> Result<Value, EngineError> {
        self.command(|tag| EngineCommand::Consume {
            tag,
            peer,
            transport,
            producer,
            rtp_capabilities: kolabmeet_engine::ortc::router_rtp_capabilities(),
            paused: false,
        })
    }

    /// The browser at `port` protects an RTP packet with its SRTP session (for tests that
    /// then tamper with it or send it twice).
    pub fn protect(&mut self, port: u16, mut packet: Vec<u8>) -> Vec<u8> {
        let b = self.browsers.get_mut(&tuple(port)).unwrap();
        b.srtp.as_mut().unwrap().protect_rtp(&mut packet).unwrap();
        packet
    }

    /// Hands raw bytes to the core as if they came from `port`.
    pub fn raw(&mut self, port: u16, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        self.core.handle_datagram(self.now, tuple(port), &mut buf);
        self.pump();
    }
}
