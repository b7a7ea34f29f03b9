//! The in-memory harness: a [`WorkerCore`] with virtual time and browser-like peers
//! ([`Browser`]) at UDP ports of 127.0.0.1, everything the core sends handed to the peer
//! it is for, decrypted media kept per peer. The engine's tests, the forwarding bench and
//! the fuzz targets drive the real core through it, with no socket and no thread.
//!
//! Time is [`Sim::now`]: it moves only when a test moves it ([`Sim::advance`], or by
//! assignment before the next call). A bench may drive [`Sim::core`] with the real clock
//! after setting up, since `Instant::now()` is never earlier.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::{DtlsCertificate, SrtpProfile};
use kolabmeet_engine::ortc::{MediaKind, RtpParameters, router_rtp_capabilities};
use kolabmeet_engine::replies::PlainTransportInfo;
use kolabmeet_engine::transport::{PROBATOR_SSRC, Transmit, Tuple, TupleProtocol};
use kolabmeet_engine::worker::{WorkerCore, WorkerSettings};
use kolabmeet_engine::{
    EngineCommand, EngineError, EngineEvent, EngineReply, PeerId, ProducerId, RequestTag, RoomId,
    TransportId,
};
use rand::SeedableRng;

use crate::browser::{Browser, Incoming};
use crate::setup::{MediaWorker, Peer, answer_id, connect_transport, create_transport};

/// The port the simulated worker says it listens on (127.0.0.1).
pub const SIM_PORT: u16 = 44444;

/// Where [`Sim`]'s [`MediaWorker::connect_peer`] starts picking browser ports (tests pick
/// their own below it).
const FIRST_AUTO_PORT: u16 = 40_000;

/// The core's tuple for datagrams from the browser at `port` (UDP, 127.0.0.1).
pub fn tuple(port: u16) -> Tuple {
    Tuple {
        protocol: TupleProtocol::Udp,
        local: ([127, 0, 0, 1], SIM_PORT).into(),
        remote: ([127, 0, 0, 1], port).into(),
    }
}

/// One browser of the simulation and what it received.
pub struct Endpoint {
    /// The browser.
    pub browser: Browser,
    /// Decrypted RTP received (media: not the probation stream).
    pub rtp: Vec<Vec<u8>>,
    /// Decrypted probe packets received (the probation stream, SSRC 1234, which
    /// `mediasoup-client`'s probator receiver takes and discards).
    pub probes: Vec<Vec<u8>>,
    /// Decrypted RTCP received (compound packets as sent).
    pub rtcp: Vec<Vec<u8>>,
}

impl Endpoint {
    /// A browser that received nothing yet.
    pub fn new(browser: Browser) -> Self {
        Endpoint {
            browser,
            rtp: Vec::new(),
            rtcp: Vec::new(),
            probes: Vec::new(),
        }
    }
}

/// A worker core and its browsers in memory. See the module documentation.
pub struct Sim {
    /// The core under test.
    pub core: WorkerCore,
    /// Virtual time.
    pub now: Instant,
    /// The browsers, by the tuple the core sees them at.
    pub endpoints: HashMap<Tuple, Endpoint>,
    /// Events of the core not taken as replies by [`Sim::command`].
    pub events: Vec<EngineEvent>,
    /// What the core sent to addresses that are no browser of the simulation.
    pub to_strangers: Vec<Transmit>,
    /// Panic when a browser cannot decrypt what the core sent it (on by default; the
    /// fuzz targets count instead).
    pub strict: bool,
    /// SRTP and SRTCP from the core that a browser could not decrypt.
    pub undecryptable: u64,
    /// SRTP and SRTCP from the core that a browser had received before (a duplicate the
    /// core forwarded as it came: browsers drop it; not a failure, even when strict).
    pub replayed: u64,
    next_tag: u64,
    next_port: u16,
    /// The browsers' certificate (one for all, to save setup time).
    cert: DtlsCertificate,
    /// The SRTP profiles new browsers offer, in order (Chromium's by default).
    pub srtp_profiles: Vec<SrtpProfile>,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    /// A core and the browsers' certificate, both freshly generated.
    pub fn new() -> Self {
        let generate = || DtlsCertificate::generate().expect("a DTLS certificate");
        Sim::with_certificates(generate(), generate())
    }

    /// A core and browsers with the process's shared certificates
    /// ([`crate::certificates`]): no key generated.
    pub fn with_shared_certificates() -> Self {
        let c = crate::certificates::certificates();
        Sim::with_certificates(c.server.clone(), c.browsers.clone())
    }

    /// A core with `server`'s certificate whose browsers use `browsers` (certificates
    /// are cheap to clone and slow to generate).
    pub fn with_certificates(server: DtlsCertificate, browsers: DtlsCertificate) -> Self {
        let settings = WorkerSettings {
            listen_ip: [127, 0, 0, 1].into(),
            announced_address: "127.0.0.1".into(),
            port: SIM_PORT,
            sender_report_clock: Default::default(),
        };
        Sim {
            core: WorkerCore::new(settings, server, rand::rngs::StdRng::seed_from_u64(7)),
            now: Instant::now(),
            endpoints: HashMap::new(),
            events: Vec::new(),
            to_strangers: Vec::new(),
            strict: true,
            undecryptable: 0,
            replayed: 0,
            next_tag: 0,
            next_port: FIRST_AUTO_PORT,
            cert: browsers,
            srtp_profiles: crate::browser::CHROMIUM_SRTP_PROFILES.to_vec(),
        }
    }

    /// Runs a command and returns its reply (which the core gives at once).
    pub fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<EngineReply, EngineError> {
        let tag = self.next_request_tag();
        self.core.handle_command(self.now, make(tag));
        // No sockets here: a plain transport asked for by command is unavailable (tests
        // make theirs with `create_plain_transport` and ports of their own).
        self.core.serve_port_requests(|| None);
        self.take_reply(tag)
    }

    /// Creates a plain RTP transport for `peer` in `room` on the local `ports` (RTP,
    /// RTCP), as the worker's driver does once it has bound them; its `{id, ip, port,
    /// rtcpPort}`. Panics if the core refuses.
    pub fn create_plain_transport(
        &mut self,
        room: RoomId,
        peer: PeerId,
        ports: (u16, u16),
    ) -> PlainTransportInfo {
        let tag = self.next_request_tag();
        self.core.handle_command(
            self.now,
            EngineCommand::CreatePlainTransport {
                tag,
                room,
                peer,
                producing: true,
                consuming: true,
            },
        );
        self.core.serve_port_requests(|| Some(ports));
        match self.take_reply(tag) {
            Ok(EngineReply::PlainTransportCreated(info)) => info,
            other => panic!("{other:?}"),
        }
    }

    fn next_request_tag(&mut self) -> RequestTag {
        self.next_tag += 1;
        RequestTag(self.next_tag)
    }

    /// Runs the core until the reply to `tag`, which it gives at once, and takes it.
    fn take_reply(&mut self, tag: RequestTag) -> Result<EngineReply, EngineError> {
        self.pump();
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, EngineEvent::Reply { tag: t, .. } if *t == tag))
            .expect("the core replies at once");
        match self.events.remove(i) {
            EngineEvent::Reply { result, .. } => result,
            _ => unreachable!("found as a reply"),
        }
    }

    /// Delivers everything the core sends, and everything the browsers' DTLS sends back
    /// (with their retransmission timers at [`Sim::now`]), until nothing moves.
    pub fn pump(&mut self) {
        self.core.serve_port_requests(|| None);
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.core.poll_transmit() {
                moved = true;
                self.deliver(t);
            }
            let tuples: Vec<Tuple> = self.endpoints.keys().copied().collect();
            for t in tuples {
                let b = &mut self.endpoints.get_mut(&t).expect("listed above").browser;
                if b.poll_timeout().is_some_and(|at| at <= self.now) {
                    b.handle_timeout(self.now);
                }
                let out: Vec<Vec<u8>> = std::iter::from_fn(|| b.poll_transmit()).collect();
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

    /// Hands one transmit of the core to its browser.
    fn deliver(&mut self, t: Transmit) {
        let Some(e) = self.endpoints.get_mut(&t.tuple) else {
            self.to_strangers.push(t);
            return;
        };
        let mut d = t.data;
        match e.browser.handle_datagram(self.now, &mut d) {
            Incoming::Rtp if d.get(8..12) == Some(&PROBATOR_SSRC.to_be_bytes()[..]) => {
                e.probes.push(d)
            }
            Incoming::Rtp => e.rtp.push(d),
            Incoming::Rtcp => e.rtcp.push(d),
            Incoming::Undecryptable => {
                assert!(
                    !self.strict,
                    "the browser at {} cannot decrypt what the worker sent it",
                    t.tuple.remote
                );
                self.undecryptable += 1;
            }
            Incoming::Replayed => self.replayed += 1,
            Incoming::StunResponse | Incoming::Dtls | Incoming::Invalid => {}
        }
    }

    /// Moves time on by `d` and runs the core's timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
        self.pump();
    }

    /// A new room (router).
    pub fn room(&mut self) -> RoomId {
        let room = RoomId::random();
        self.core
            .handle_command(self.now, EngineCommand::CreateRouter { room });
        room
    }

    /// A peer of `room` whose browser at `port` connected a WebRTC transport (ICE
    /// nomination, DTLS as client, SRTP keyed). Panics if it does not connect.
    pub fn connect_peer_at(&mut self, room: RoomId, port: u16) -> (PeerId, TransportId) {
        self.try_connect(room, port)
            .unwrap_or_else(|e| panic!("peer at {port}: {e}"))
    }

    fn try_connect(&mut self, room: RoomId, port: u16) -> Result<(PeerId, TransportId), String> {
        let peer = PeerId::random();
        let v = self
            .command(|tag| create_transport(tag, room, peer))
            .map_err(|e| format!("createWebRtcTransport: {e}"))?;
        let transport = answer_id(&v)?;
        let browser = Browser::offering(
            &crate::setup::wire(&v),
            &self.cert,
            &self.srtp_profiles,
            self.now,
        )?;
        let mut stun = browser.binding_request();
        let dtls_parameters = browser.dtls_parameters();
        let t = tuple(port);
        self.endpoints.insert(t, Endpoint::new(browser));
        self.core.handle_datagram(self.now, t, &mut stun);
        self.pump();
        self.command(|tag| connect_transport(tag, peer, transport, dtls_parameters))
            .map_err(|e| format!("connectWebRtcTransport: {e}"))?;
        self.pump();
        if !self.endpoints[&t].browser.is_connected() {
            return Err("DTLS did not connect".into());
        }
        Ok((peer, transport))
    }

    /// `peer` produces `params` of `kind` on `transport`.
    pub fn produce(
        &mut self,
        peer: PeerId,
        transport: TransportId,
        kind: MediaKind,
        params: RtpParameters,
    ) -> Result<ProducerId, EngineError> {
        let v = self.command(|tag| EngineCommand::Produce {
            tag,
            peer,
            transport,
            kind,
            rtp_parameters: params,
            source: kolabmeet_engine::media_engine::ProducerSource::of_kind(kind),
        })?;
        Ok(answer_id(&v).expect("a producer id"))
    }

    /// `peer` consumes `producer` on `transport` with the router's full capabilities;
    /// the `consume` answer.
    pub fn consume(
        &mut self,
        peer: PeerId,
        transport: TransportId,
        producer: ProducerId,
    ) -> Result<EngineReply, EngineError> {
        self.command(|tag| EngineCommand::Consume {
            tag,
            peer,
            transport,
            producer,
            rtp_capabilities: router_rtp_capabilities(),
            paused: false,
        })
    }

    /// The browser at `port` and what it received. Panics if there is none.
    pub fn endpoint(&mut self, port: u16) -> &mut Endpoint {
        self.endpoints
            .get_mut(&tuple(port))
            .unwrap_or_else(|| panic!("no browser at {port}"))
    }

    /// The browser at `port` protects an RTP packet with its SRTP session (for tests that
    /// then tamper with it or send it twice).
    pub fn protect(&mut self, port: u16, mut packet: Vec<u8>) -> Vec<u8> {
        let b = &mut self.endpoint(port).browser;
        b.protect_rtp(&mut packet).expect("SRTP keyed");
        packet
    }

    /// The browser at `port` sends an RTP packet (protected here), and everything moves.
    pub fn send(&mut self, port: u16, packet: Vec<u8>) {
        let mut p = self.protect(port, packet);
        self.core.handle_datagram(self.now, tuple(port), &mut p);
        self.pump();
    }

    /// The browser at `port` sends an RTCP packet (protected here), and everything moves.
    pub fn send_rtcp(&mut self, port: u16, mut packet: Vec<u8>) {
        let b = &mut self.endpoint(port).browser;
        b.protect_rtcp(&mut packet).expect("SRTP keyed");
        self.core
            .handle_datagram(self.now, tuple(port), &mut packet);
        self.pump();
    }

    /// Hands raw bytes to the core as if they came from `port`, and everything moves.
    pub fn raw(&mut self, port: u16, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        self.core.handle_datagram(self.now, tuple(port), &mut buf);
        self.pump();
    }

    /// Takes the decrypted RTP the browser at `port` received.
    pub fn take_rtp(&mut self, port: u16) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.endpoint(port).rtp)
    }

    /// Takes the probe packets the browser at `port` received.
    pub fn take_probes(&mut self, port: u16) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.endpoint(port).probes)
    }

    /// Takes the decrypted RTCP (compound packets) the browser at `port` received.
    pub fn take_rtcp(&mut self, port: u16) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.endpoint(port).rtcp)
    }

    /// Takes the RTCP the browser at `port` received and returns the (NTP, RTP) pairs of
    /// the sender reports about `ssrc` in it.
    pub fn take_sender_reports(&mut self, port: u16, ssrc: u32) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for c in self.take_rtcp(port) {
            for p in kolabmeet_net::rtcp::packets(&c) {
                if let Ok(kolabmeet_net::rtcp::RtcpPacket::SenderReport(s)) = p
                    && s.ssrc() == ssrc
                {
                    out.push((s.ntp(), s.rtp_time()));
                }
            }
        }
        out
    }

    /// Takes the RTCP the browser at `port` received and returns the media SSRCs its key
    /// frame requests (PLI, and every FIR entry) ask for, in order.
    pub fn take_key_frame_requests(&mut self, port: u16) -> Vec<u32> {
        use kolabmeet_net::rtcp::{RtcpPacket, packets};
        let mut out = Vec::new();
        for c in self.take_rtcp(port) {
            for p in packets(&c).flatten() {
                match p {
                    RtcpPacket::Pli(pli) => out.push(pli.media_ssrc()),
                    RtcpPacket::Fir(fir) => out.extend(fir.entries().map(|(ssrc, _)| ssrc)),
                    _ => {}
                }
            }
        }
        out
    }

    /// The size of every table of the core, in the order of
    /// [`kolabmeet_engine::worker::WorkerSizes`]: all 0 once everything closed.
    pub fn tables(&self) -> [usize; 11] {
        let s = self.core.sizes();
        [
            s.rooms,
            s.transports,
            s.ufrags,
            s.tuples,
            s.producers,
            s.consumers,
            s.routes,
            s.key_frame_timers,
            s.per_transport,
            s.peers,
            s.room_timers,
        ]
    }
}

impl MediaWorker for Sim {
    /// The browser's port.
    type Client = u16;

    fn submit(&mut self, command: EngineCommand) {
        self.core.handle_command(self.now, command);
        self.pump();
    }

    fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<EngineReply, EngineError> {
        Sim::command(self, make)
    }

    fn connect_peer(&mut self, room: RoomId) -> Result<Peer<u16>, String> {
        while self.endpoints.contains_key(&tuple(self.next_port)) {
            self.next_port = self.next_port.checked_add(1).ok_or("out of ports")?;
        }
        let port = self.next_port;
        let (peer, transport) = self.try_connect(room, port)?;
        Ok(Peer {
            peer,
            transport,
            client: port,
        })
    }
}
