//! Browser-like media peers for benches and load tools, built from the engine's own stacks
//! like the in-memory harness of `engine/tests/` (this module is its twin): ICE-lite
//! binding requests with USE-CANDIDATE (stun-rs), a DTLS client ([`DtlsSession`]) and
//! SRTP ([`SrtpSession`]).
//!
//! A [`Browser`] is sans-IO. Two drivers connect browsers to a worker:
//! - [`MemoryWorker`] drives a [`WorkerCore`] in memory (no sockets, real clock);
//! - [`UdpWorker`] starts one real worker thread ([`WorkerEngine`]) on 127.0.0.1 and talks
//!   to it over UDP sockets, one per peer.
//!
//! Both implement [`MediaWorker`], over which [`setup_producer`], [`connect_peers`],
//! [`consume`] and [`setup_consumers`] build one producer (VP8 with one encoding, or
//! Opus) and N consumers of it on other transports. [`PacketMaker`] writes Chrome-shaped
//! packets for the producer.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::{DtlsCertificate, DtlsEvent, DtlsSession, SrtpSession};
use kolabmeet_engine::ortc::{
    DtlsFingerprint, DtlsParameters, DtlsRole, MediaKind, RtpParameters, router_rtp_capabilities,
};
use kolabmeet_engine::transport::{Tuple, TupleProtocol};
use kolabmeet_engine::worker::{WorkerCore, WorkerEngine, WorkerSettings};
use kolabmeet_engine::{
    ConsumerId, EngineCommand, EngineError, EngineEvent, MediaEngine, PeerId, ProducerId,
    RequestTag, RoomId, TransportId,
};
use kolabmeet_net::rtp::write_extension_block;
use rand::SeedableRng;
use serde_json::{Value, json};
use stun_rs::attributes::ice::{IceControlling, Priority, UseCandidate};
use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName};
use stun_rs::methods::BINDING;
use stun_rs::{HMACKey, MessageClass, MessageEncoderBuilder, StunMessageBuilder};

/// What a datagram from the worker was, after [`Browser::handle_datagram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// A STUN binding success response.
    StunResponse,
    /// DTLS (handshake or alerts), handled.
    Dtls,
    /// RTP, decrypted in place.
    Rtp,
    /// RTCP, decrypted in place.
    Rtcp,
    /// Anything else, or what failed to decrypt.
    Invalid,
}

/// The client end of one WebRTC transport: ICE credentials, DTLS client, SRTP once the
/// handshake is over.
pub struct Browser {
    dtls: DtlsSession,
    srtp: Option<SrtpSession>,
    ufrag: String,
    pwd: String,
    local_fingerprints: Vec<DtlsFingerprint>,
}

impl Browser {
    /// A browser for the transport described by a `createWebRtcTransport` answer, with
    /// the client certificate `cert` (shared by many browsers to save setup time).
    pub fn new(transport: &Value, cert: &DtlsCertificate, now: Instant) -> Result<Self, String> {
        let ice = &transport["iceParameters"];
        let ufrag = ice["usernameFragment"]
            .as_str()
            .ok_or("no usernameFragment")?
            .to_owned();
        let pwd = ice["password"].as_str().ok_or("no password")?.to_owned();
        let fps: Vec<DtlsFingerprint> =
            serde_json::from_value(transport["dtlsParameters"]["fingerprints"].clone())
                .map_err(|e| format!("fingerprints: {e}"))?;
        let dtls = DtlsSession::new(DtlsRole::Client, cert, &fps, now)
            .map_err(|e| format!("DTLS client: {e}"))?;
        Ok(Browser {
            dtls,
            srtp: None,
            ufrag,
            pwd,
            local_fingerprints: cert.fingerprints().to_vec(),
        })
    }

    /// What `connectWebRtcTransport` carries for this browser (it is the DTLS client).
    pub fn dtls_parameters(&self) -> DtlsParameters {
        DtlsParameters {
            role: DtlsRole::Client,
            fingerprints: self.local_fingerprints.clone(),
        }
    }

    /// An ICE binding request as a controlling browser nominates with (USE-CANDIDATE),
    /// also good as a consent check.
    pub fn binding_request(&self) -> Vec<u8> {
        let msg = StunMessageBuilder::new(BINDING, MessageClass::Request)
            .with_attribute(UserName::new(format!("{}:b", self.ufrag)).expect("username"))
            .with_attribute(Priority::from(1))
            .with_attribute(IceControlling::from(1))
            .with_attribute(UseCandidate::default())
            .with_attribute(MessageIntegrity::new(
                HMACKey::new_short_term(&self.pwd).expect("ICE password"),
            ))
            .with_attribute(Fingerprint::default())
            .build();
        let mut buf = [0u8; 256];
        let n = MessageEncoderBuilder::default()
            .build()
            .encode(&mut buf, &msg)
            .expect("binding request fits");
        buf[..n].to_vec()
    }

    /// Handles a datagram from the worker; RTP and RTCP are decrypted in place.
    pub fn handle_datagram(&mut self, now: Instant, data: &mut Vec<u8>) -> Incoming {
        match data.first() {
            Some(0..=3) => {
                if data.len() >= 20 && data[0] == 0x01 && data[1] == 0x01 {
                    Incoming::StunResponse
                } else {
                    Incoming::Invalid
                }
            }
            Some(20..=63) => {
                let _ = self.dtls.handle_datagram(now, data);
                self.drain_dtls_events();
                Incoming::Dtls
            }
            Some(128..=191) => {
                let Some(srtp) = self.srtp.as_mut() else {
                    return Incoming::Invalid;
                };
                if data.len() > 1 && (192..=223).contains(&data[1]) {
                    match srtp.unprotect_rtcp(data) {
                        Ok(()) => Incoming::Rtcp,
                        Err(_) => Incoming::Invalid,
                    }
                } else {
                    match srtp.unprotect_rtp(data) {
                        Ok(()) => Incoming::Rtp,
                        Err(_) => Incoming::Invalid,
                    }
                }
            }
            _ => Incoming::Invalid,
        }
    }

    fn drain_dtls_events(&mut self) {
        while let Some(e) = self.dtls.poll_event() {
            if let DtlsEvent::Connected {
                profile,
                local_keys,
                remote_keys,
            } = e
            {
                self.srtp = SrtpSession::new(profile, &local_keys, &remote_keys).ok();
            }
        }
    }

    /// The next DTLS datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.dtls.poll_transmit()
    }

    /// When [`Browser::handle_timeout`] must next run (DTLS retransmissions).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dtls.poll_timeout()
    }

    /// Drives DTLS retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.dtls.handle_timeout(now);
        self.drain_dtls_events();
    }

    /// DTLS is connected and SRTP keyed.
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some()
    }

    /// The SRTP session, once connected.
    pub fn srtp(&mut self) -> Option<&mut SrtpSession> {
        self.srtp.as_mut()
    }

    /// Takes the SRTP session out (to protect packets elsewhere).
    pub fn take_srtp(&mut self) -> Option<SrtpSession> {
        self.srtp.take()
    }

    /// RTP to SRTP in place.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), String> {
        let srtp = self.srtp.as_mut().ok_or("not connected")?;
        srtp.protect_rtp(packet).map_err(|e| e.to_string())
    }

    /// RTCP to SRTCP in place.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), String> {
        let srtp = self.srtp.as_mut().ok_or("not connected")?;
        srtp.protect_rtcp(packet).map_err(|e| e.to_string())
    }
}

/// Ids of a peer with one connected transport.
pub trait PeerRef {
    /// The peer.
    fn peer_id(&self) -> PeerId;
    /// Its transport.
    fn transport_id(&self) -> TransportId;
}

/// A worker the setup helpers can drive: commands with replies, and peers that connect.
pub trait MediaWorker {
    /// A peer with a connected transport.
    type Peer: PeerRef;
    /// A command without reply.
    fn submit(&mut self, command: EngineCommand);
    /// A command and its reply.
    fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<Value, EngineError>;
    /// A new peer in `room` whose transport is created, ICE-nominated and DTLS-connected.
    fn connect_peer(&mut self, room: RoomId) -> Result<Self::Peer, String>;
}

/// The media a producer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// VP8, one encoding (no simulcast), with RTX.
    Vp8,
    /// Opus.
    Opus,
}

impl Media {
    /// The producer's `rtpParameters` as mediasoup-client sends them, for `ssrc`.
    pub fn rtp_parameters(self, ssrc: u32) -> RtpParameters {
        let v = match self {
            Media::Vp8 => {
                let fb = json!([{ "type": "nack" }, { "type": "nack", "parameter": "pli" },
                                { "type": "ccm", "parameter": "fir" }, { "type": "transport-cc" }]);
                json!({
                    "mid": "0",
                    "codecs": [
                        { "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "rtcpFeedback": fb },
                        { "mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": { "apt": 96 } }
                    ],
                    "headerExtensions": [
                        { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 },
                        { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2 },
                        { "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 3 }
                    ],
                    "encodings": [{ "ssrc": ssrc, "rtx": { "ssrc": ssrc.wrapping_add(1) } }],
                    "rtcp": { "cname": "load" }
                })
            }
            Media::Opus => json!({
                "mid": "0",
                "codecs": [{ "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
                             "parameters": { "useinbandfec": 1 }, "rtcpFeedback": [{ "type": "transport-cc" }] }],
                "headerExtensions": [
                    { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 },
                    { "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1 },
                    { "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 3 }
                ],
                "encodings": [{ "ssrc": ssrc }],
                "rtcp": { "cname": "load" }
            }),
        };
        serde_json::from_value(v).expect("valid rtpParameters")
    }

    fn kind(self) -> MediaKind {
        match self {
            Media::Vp8 => MediaKind::Video,
            Media::Opus => MediaKind::Audio,
        }
    }
}

/// A producer and the peer that sends it.
pub struct Publisher<P> {
    /// The sending peer.
    pub peer: P,
    /// The producer.
    pub producer: ProducerId,
    /// What it sends.
    pub media: Media,
    /// The SSRC it sends with.
    pub ssrc: u32,
}

/// A consumer and the peer that receives it.
pub struct Subscriber<P> {
    /// The receiving peer.
    pub peer: P,
    /// The consumer.
    pub consumer: ConsumerId,
    /// The SSRC the worker sends it with.
    pub ssrc: u32,
}

/// Creates a room (router) on the worker.
pub fn create_room<W: MediaWorker>(worker: &mut W) -> RoomId {
    let room = RoomId::random();
    worker.submit(EngineCommand::CreateRouter { room });
    room
}

/// A new peer in `room` producing `media` with `ssrc`.
pub fn setup_producer<W: MediaWorker>(
    worker: &mut W,
    room: RoomId,
    media: Media,
    ssrc: u32,
) -> Result<Publisher<W::Peer>, String> {
    let peer = worker.connect_peer(room)?;
    let v = worker
        .command(|tag| EngineCommand::Produce {
            tag,
            peer: peer.peer_id(),
            transport: peer.transport_id(),
            kind: media.kind(),
            rtp_parameters: media.rtp_parameters(ssrc),
            app_data: json!({ "source": "load" }),
        })
        .map_err(|e| format!("produce: {e}"))?;
    let producer = v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("produce: no id")?;
    Ok(Publisher {
        peer,
        producer,
        media,
        ssrc,
    })
}

/// `n` new peers in `room`, each with a connected transport.
pub fn connect_peers<W: MediaWorker>(
    worker: &mut W,
    room: RoomId,
    n: usize,
) -> Result<Vec<W::Peer>, String> {
    (0..n).map(|_| worker.connect_peer(room)).collect()
}

/// `peer` consumes `producer` on its transport with the router's full capabilities;
/// returns the consumer and its SSRC.
pub fn consume<W: MediaWorker>(
    worker: &mut W,
    peer: &W::Peer,
    producer: ProducerId,
) -> Result<(ConsumerId, u32), String> {
    let v = worker
        .command(|tag| EngineCommand::Consume {
            tag,
            peer: peer.peer_id(),
            transport: peer.transport_id(),
            producer,
            rtp_capabilities: router_rtp_capabilities(),
            paused: false,
        })
        .map_err(|e| format!("consume: {e}"))?;
    let id = v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("consume: no id")?;
    let ssrc = v["rtpParameters"]["encodings"][0]["ssrc"]
        .as_u64()
        .ok_or("consume: no ssrc")? as u32;
    Ok((id, ssrc))
}

/// `n` new peers in `room`, each consuming `producer` on its own transport.
pub fn setup_consumers<W: MediaWorker>(
    worker: &mut W,
    room: RoomId,
    producer: ProducerId,
    n: usize,
) -> Result<Vec<Subscriber<W::Peer>>, String> {
    let peers = connect_peers(worker, room, n)?;
    peers
        .into_iter()
        .map(|peer| {
            let (consumer, ssrc) = consume(worker, &peer, producer)?;
            Ok(Subscriber {
                peer,
                consumer,
                ssrc,
            })
        })
        .collect()
}

/// RTP a producer sends, shaped like Chrome's: one-byte header extensions (MID id 4,
/// abs-send-time id 2, transport-cc id 3, audio level id 1 for Opus) and a payload of
/// `payload_len` bytes whose last 8 are a send timestamp (see [`PacketMaker::next`]).
pub struct PacketMaker {
    /// What it sends.
    pub media: Media,
    /// The SSRC.
    pub ssrc: u32,
    /// Payload bytes per packet (at least 16).
    pub payload_len: usize,
    /// Packets per frame (VP8; the RTP timestamp moves by 3000 ticks per frame).
    pub packets_per_frame: u32,
    /// Next sequence number.
    pub seq: u16,
    /// Next transport-wide sequence number.
    pub tcc_seq: u16,
    /// RTP timestamp of the current frame.
    pub timestamp: u32,
    /// Packets of the current frame sent.
    in_frame: u32,
    /// VP8 picture id (15 bits).
    picture_id: u16,
    /// The next frame is a key frame.
    pub key_frame_next: bool,
    /// Packets made.
    pub made: u64,
}

impl PacketMaker {
    /// A maker whose first packet starts a key frame.
    pub fn new(media: Media, ssrc: u32, payload_len: usize) -> Self {
        PacketMaker {
            media,
            ssrc,
            payload_len: payload_len.max(16),
            packets_per_frame: 5,
            seq: 1000,
            tcc_seq: 1,
            timestamp: 90_000,
            in_frame: 0,
            picture_id: 1,
            key_frame_next: true,
            made: 0,
        }
    }

    /// The next packet starts a frame.
    pub fn at_frame_start(&self) -> bool {
        self.in_frame == 0
    }

    /// The next plain RTP packet into `out` (cleared first), its payload ending with
    /// `stamp` (big endian; e.g. nanoseconds of the send time).
    pub fn next(&mut self, stamp: u64, out: &mut Vec<u8>) {
        out.clear();
        let first_of_frame = self.in_frame == 0;
        let last_of_frame =
            self.media == Media::Opus || self.in_frame + 1 >= self.packets_per_frame;
        let key = first_of_frame && self.key_frame_next;
        let (pt, marker) = match self.media {
            Media::Vp8 => (96u8, if last_of_frame { 0x80 } else { 0 }),
            Media::Opus => (111u8, 0),
        };
        out.extend_from_slice(&[0x90, pt | marker]);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let tcc = self.tcc_seq.to_be_bytes();
        let mut block = [0u8; 64];
        let n = match self.media {
            Media::Vp8 => {
                write_extension_block(&[(4, b"0"), (2, &[1, 2, 3]), (3, &tcc)], &mut block)
            }
            Media::Opus => write_extension_block(&[(4, b"0"), (1, &[0x85]), (3, &tcc)], &mut block),
        }
        .expect("extension block fits");
        out.extend_from_slice(&block[..n]);
        let start = out.len();
        if self.media == Media::Vp8 {
            // X=1 S=(first) PID=0; I=1 L=1 T=1; 15-bit picture id; TL0PICIDX; TID=0.
            let s = if first_of_frame { 0x10 } else { 0 };
            out.extend_from_slice(&[
                0x80 | s,
                0xe0,
                0x80 | (self.picture_id >> 8) as u8,
                self.picture_id as u8,
                self.picture_id as u8,
                0x00,
                if key { 0x00 } else { 0x01 },
            ]);
        }
        out.resize(start + self.payload_len - 8, 0x5a);
        out.extend_from_slice(&stamp.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        self.tcc_seq = self.tcc_seq.wrapping_add(1);
        self.made += 1;
        match self.media {
            Media::Opus => self.timestamp = self.timestamp.wrapping_add(960),
            Media::Vp8 => {
                if last_of_frame {
                    self.in_frame = 0;
                    self.timestamp = self.timestamp.wrapping_add(3000);
                    self.picture_id = (self.picture_id + 1) & 0x7fff;
                    if key {
                        self.key_frame_next = false;
                    }
                } else {
                    self.in_frame += 1;
                    if key {
                        self.key_frame_next = false;
                    }
                }
            }
        }
    }
}

/// The send stamp [`PacketMaker::next`] put at the end of a (decrypted) packet's payload.
/// (The worker keeps payloads as they are and adds no padding.)
pub fn read_stamp(packet: &[u8]) -> Option<u64> {
    let at = packet.len().checked_sub(8)?;
    Some(u64::from_be_bytes(packet[at..].try_into().ok()?))
}

/// Decrypted packets a [`MemoryWorker`] delivered to one browser.
#[derive(Default)]
pub struct Inbox {
    /// RTP.
    pub rtp: Vec<Vec<u8>>,
    /// RTCP.
    pub rtcp: Vec<Vec<u8>>,
}

/// A peer of a [`MemoryWorker`]: its browser lives in the worker's table under `addr`.
#[derive(Debug, Clone, Copy)]
pub struct MemoryPeer {
    /// The peer.
    pub peer: PeerId,
    /// Its transport.
    pub transport: TransportId,
    /// The address its datagrams come from.
    pub addr: SocketAddr,
}

impl PeerRef for MemoryPeer {
    fn peer_id(&self) -> PeerId {
        self.peer
    }
    fn transport_id(&self) -> TransportId {
        self.transport
    }
}

/// A [`WorkerCore`] driven in memory with the real clock: what it sends to a browser of
/// its table is handed to that browser (decrypted media lands in `inbox`); what it sends
/// elsewhere is counted.
pub struct MemoryWorker {
    /// The core.
    pub core: WorkerCore,
    /// Browsers by address.
    pub browsers: HashMap<SocketAddr, Browser>,
    /// What each browser received.
    pub inbox: HashMap<SocketAddr, Inbox>,
    /// Events other than replies.
    pub events: Vec<EngineEvent>,
    /// Datagrams sent to addresses with no browser.
    pub to_strangers: u64,
    next_tag: u64,
    next_port: u16,
    cert: DtlsCertificate,
}

/// The port a [`MemoryWorker`] says it listens on.
pub const MEMORY_WORKER_PORT: u16 = 44444;

impl MemoryWorker {
    /// A core with a fresh certificate.
    pub fn new() -> Result<Self, String> {
        let settings = WorkerSettings {
            listen_ip: "127.0.0.1".parse().expect("ip"),
            announced_address: "127.0.0.1".into(),
            port: MEMORY_WORKER_PORT,
        };
        let cert = |e| format!("certificate: {e}");
        Ok(MemoryWorker {
            core: WorkerCore::new(
                settings,
                DtlsCertificate::generate().map_err(cert)?,
                rand::rngs::StdRng::seed_from_u64(7),
            ),
            browsers: HashMap::new(),
            inbox: HashMap::new(),
            events: Vec::new(),
            to_strangers: 0,
            next_tag: 0,
            next_port: 5000,
            cert: DtlsCertificate::generate().map_err(cert)?,
        })
    }

    /// The core's tuple for datagrams from `addr`.
    pub fn tuple(&self, addr: SocketAddr) -> Tuple {
        self.core.tuple(TupleProtocol::Udp, addr)
    }

    /// Delivers everything the core sends to its browsers, and everything the browsers'
    /// DTLS sends back, until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..100 {
            let now = Instant::now();
            let mut moved = false;
            while let Some(t) = self.core.poll_transmit() {
                moved = true;
                let Some(b) = self.browsers.get_mut(&t.tuple.remote) else {
                    self.to_strangers += 1;
                    continue;
                };
                let mut d = t.data;
                match b.handle_datagram(now, &mut d) {
                    Incoming::Rtp => self.inbox.entry(t.tuple.remote).or_default().rtp.push(d),
                    Incoming::Rtcp => self.inbox.entry(t.tuple.remote).or_default().rtcp.push(d),
                    _ => {}
                }
            }
            let addrs: Vec<SocketAddr> = self.browsers.keys().copied().collect();
            for addr in addrs {
                let b = self.browsers.get_mut(&addr).expect("browser");
                if b.poll_timeout().is_some_and(|t| t <= now) {
                    b.handle_timeout(now);
                }
                let mut out = Vec::new();
                while let Some(d) = b.poll_transmit() {
                    out.push(d);
                }
                let tuple = self.tuple(addr);
                for mut d in out {
                    moved = true;
                    self.core.handle_datagram(now, tuple, &mut d);
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

    /// The browser at `addr` sends an RTP packet (protected here), and everything moves.
    pub fn send_rtp(&mut self, addr: SocketAddr, mut packet: Vec<u8>) -> Result<(), String> {
        let b = self.browsers.get_mut(&addr).ok_or("no such browser")?;
        b.protect_rtp(&mut packet)?;
        let tuple = self.tuple(addr);
        self.core
            .handle_datagram(Instant::now(), tuple, &mut packet);
        self.pump();
        Ok(())
    }
}

impl MediaWorker for MemoryWorker {
    type Peer = MemoryPeer;

    fn submit(&mut self, command: EngineCommand) {
        self.core.handle_command(Instant::now(), command);
        self.pump();
    }

    fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<Value, EngineError> {
        self.next_tag += 1;
        let tag = RequestTag(self.next_tag);
        self.core.handle_command(Instant::now(), make(tag));
        self.pump();
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, EngineEvent::Reply { tag: t, .. } if *t == tag))
            .expect("the core replies at once");
        match self.events.remove(i) {
            EngineEvent::Reply { result, .. } => result,
            _ => unreachable!(),
        }
    }

    fn connect_peer(&mut self, room: RoomId) -> Result<MemoryPeer, String> {
        let peer = PeerId::random();
        let v = self
            .command(|tag| create_transport(tag, room, peer))
            .map_err(|e| format!("createWebRtcTransport: {e}"))?;
        let transport: TransportId = transport_id(&v)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.next_port));
        self.next_port = self.next_port.checked_add(1).ok_or("out of ports")?;
        let browser = Browser::new(&v, &self.cert, Instant::now())?;
        let mut stun = browser.binding_request();
        let dtls_parameters = browser.dtls_parameters();
        self.browsers.insert(addr, browser);
        let tuple = self.tuple(addr);
        self.core.handle_datagram(Instant::now(), tuple, &mut stun);
        self.pump();
        self.command(|tag| EngineCommand::ConnectWebRtcTransport {
            tag,
            peer,
            transport,
            dtls_parameters,
        })
        .map_err(|e| format!("connectWebRtcTransport: {e}"))?;
        self.pump();
        if !self.browsers[&addr].is_connected() {
            return Err("DTLS did not connect".into());
        }
        Ok(MemoryPeer {
            peer,
            transport,
            addr,
        })
    }
}

fn create_transport(tag: RequestTag, room: RoomId, peer: PeerId) -> EngineCommand {
    EngineCommand::CreateWebRtcTransport {
        tag,
        room,
        peer,
        force_tcp: false,
        producing: true,
        consuming: true,
    }
}

fn transport_id(v: &Value) -> Result<TransportId, String> {
    v["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "createWebRtcTransport: no id".into())
}

/// A peer of a [`UdpWorker`]: its browser and its own UDP socket, connected to the
/// worker's port.
pub struct UdpPeer {
    /// The peer.
    pub peer: PeerId,
    /// Its transport.
    pub transport: TransportId,
    /// Its browser (connected).
    pub browser: Browser,
    /// Its socket (blocking, with a short read timeout, after setup).
    pub socket: UdpSocket,
}

impl PeerRef for UdpPeer {
    fn peer_id(&self) -> PeerId {
        self.peer
    }
    fn transport_id(&self) -> TransportId {
        self.transport
    }
}

/// Wakes a thread waiting for the worker's events.
#[derive(Default)]
struct Wake {
    flag: Mutex<bool>,
    cond: Condvar,
}

/// Events other than replies a [`UdpWorker`] keeps (it counts the rest).
const KEPT_EVENTS: usize = 10_000;

/// One real worker thread in this process, on 127.0.0.1 and a free port, driven through
/// [`WorkerEngine`] like the server does; its peers talk to it over UDP.
pub struct UdpWorker {
    engine: WorkerEngine,
    addr: SocketAddr,
    wake: Arc<Wake>,
    /// Events other than replies (the first [`KEPT_EVENTS`]).
    pub events: Vec<EngineEvent>,
    /// Events other than replies seen in all.
    pub events_seen: u64,
    next_tag: u64,
    cert: DtlsCertificate,
    /// How long one reply or one connection may take.
    pub timeout: Duration,
}

impl UdpWorker {
    /// Starts the worker (its thread is `media-worker-0`).
    pub fn start() -> io::Result<Self> {
        let wake = Arc::new(Wake::default());
        let w = wake.clone();
        let notify: kolabmeet_engine::worker::Notify = Arc::new(move || {
            *w.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
            w.cond.notify_all();
        });
        let settings = WorkerSettings {
            listen_ip: "127.0.0.1".parse().expect("ip"),
            announced_address: "127.0.0.1".into(),
            port: 0,
        };
        let engine = WorkerEngine::start(settings, 1, notify)?;
        let port = engine.ports()[0];
        let cert = DtlsCertificate::generate()
            .map_err(|e| io::Error::other(format!("certificate: {e}")))?;
        Ok(UdpWorker {
            engine,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            wake,
            events: Vec::new(),
            events_seen: 0,
            next_tag: 0,
            cert,
            timeout: Duration::from_secs(5),
        })
    }

    /// The worker's media address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the worker's pending events (keeping the first [`KEPT_EVENTS`] in `events`);
    /// returns how many there were.
    pub fn drain_events(&mut self) -> usize {
        let mut n = 0;
        while let Some(e) = self.engine.poll_event() {
            n += 1;
            self.keep(e);
        }
        n
    }

    fn keep(&mut self, e: EngineEvent) {
        self.events_seen += 1;
        if self.events.len() < KEPT_EVENTS {
            self.events.push(e);
        }
    }

    fn wait_reply(&mut self, tag: RequestTag) -> Result<Value, EngineError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            while let Some(e) = self.engine.poll_event() {
                match e {
                    EngineEvent::Reply { tag: t, result } if t == tag => return result,
                    e => self.keep(e),
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(EngineError::InvalidParameters(format!(
                    "no reply from the worker in {:?}",
                    self.timeout
                )));
            }
            let mut flag = self.wake.flag.lock().unwrap_or_else(|e| e.into_inner());
            if !*flag {
                flag = self
                    .wake
                    .cond
                    .wait_timeout(flag, (deadline - now).min(Duration::from_millis(20)))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            *flag = false;
        }
    }

    fn handshake(&mut self, browser: &mut Browser, socket: &UdpSocket) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout;
        let mut buf = vec![0u8; 4096];
        while !browser.is_connected() {
            let now = Instant::now();
            if now >= deadline {
                return Err("DTLS did not connect in time".into());
            }
            if browser.poll_timeout().is_some_and(|t| t <= now) {
                browser.handle_timeout(now);
            }
            while let Some(d) = browser.poll_transmit() {
                socket.send(&d).map_err(|e| format!("send: {e}"))?;
            }
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let mut d = buf[..n].to_vec();
                    browser.handle_datagram(Instant::now(), &mut d);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
        // The client's last flight may still be on its way; the worker is connected once
        // it has it (DTLS 1.2: the server's Finished comes last, so it already is).
        Ok(())
    }
}

impl MediaWorker for UdpWorker {
    type Peer = UdpPeer;

    fn submit(&mut self, command: EngineCommand) {
        self.engine.submit(command);
    }

    fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<Value, EngineError> {
        self.next_tag += 1;
        let tag = RequestTag(self.next_tag);
        self.engine.submit(make(tag));
        self.wait_reply(tag)
    }

    fn connect_peer(&mut self, room: RoomId) -> Result<UdpPeer, String> {
        let peer = PeerId::random();
        let v = self
            .command(|tag| create_transport(tag, room, peer))
            .map_err(|e| format!("createWebRtcTransport: {e}"))?;
        let transport = transport_id(&v)?;
        let io = |e: io::Error| format!("socket: {e}");
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
        socket.connect(self.addr).map_err(io)?;
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .map_err(io)?;
        let mut browser = Browser::new(&v, &self.cert, Instant::now())?;
        // ICE: nominate this address.
        let deadline = Instant::now() + self.timeout;
        let mut buf = vec![0u8; 4096];
        'ice: loop {
            if Instant::now() >= deadline {
                return Err("no ICE binding response".into());
            }
            socket.send(&browser.binding_request()).map_err(io)?;
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        let mut d = buf[..n].to_vec();
                        if browser.handle_datagram(Instant::now(), &mut d) == Incoming::StunResponse
                        {
                            break 'ice;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
        }
        let dtls_parameters = browser.dtls_parameters();
        self.command(|tag| EngineCommand::ConnectWebRtcTransport {
            tag,
            peer,
            transport,
            dtls_parameters,
        })
        .map_err(|e| format!("connectWebRtcTransport: {e}"))?;
        self.handshake(&mut browser, &socket)?;
        Ok(UdpPeer {
            peer,
            transport,
            browser,
            socket,
        })
    }
}
