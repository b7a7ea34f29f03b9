//! One real media worker thread in this process ([`WorkerEngine`], as the server runs
//! it) on 127.0.0.1 and a free port, whose browser-like peers reach it over real sockets
//! ([`Pipe`]: UDP, or ICE-TCP): for the socket tests and the media load tool.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::{DtlsCertificate, SrtpProfile};
use kolabmeet_engine::worker::{WorkerEngine, WorkerSettings};
use kolabmeet_engine::{
    EngineCommand, EngineError, EngineEvent, EngineReply, MediaEngine, PeerId, RequestTag, RoomId,
    TransportId,
};
use serde_json::Value;

use crate::browser::{Browser, Incoming};
use crate::pipe::Pipe;
use crate::setup::{MediaWorker, Peer, answer_id, connect_transport, create_transport};

/// Events other than replies a [`UdpWorker`] keeps (it counts the rest).
const KEPT_EVENTS: usize = 10_000;

/// How long a peer waits for one datagram before it looks at its timers again.
const READ_TIMEOUT: Duration = Duration::from_millis(20);

/// How often a peer repeats its ICE check until it is answered.
const ICE_RETRY: Duration = Duration::from_millis(200);

/// The client end of a peer of a [`UdpWorker`]: its browser and its own UDP socket,
/// connected to the worker's port.
pub struct UdpClient {
    /// The browser (connected).
    pub browser: Browser,
    /// The socket (blocking, with a short read timeout).
    pub socket: UdpSocket,
}

impl UdpClient {
    /// The media packets of `ssrc` waiting at the socket (read without blocking until it
    /// is empty), decrypted with `srtp`: how many authenticated. RTCP and anything else
    /// is read and left aside.
    pub fn drain_rtp(&self, srtp: &mut kolabmeet_engine::crypto::SrtpSession, ssrc: u32) -> usize {
        let mut got = 0;
        let mut buf = vec![0u8; 2048];
        if self.socket.set_nonblocking(true).is_err() {
            return 0;
        }
        while let Ok(n) = self.socket.recv(&mut buf) {
            let mut p = buf[..n].to_vec();
            if !(128..=191).contains(&p[0]) || kolabmeet_net::rtcp::is_rtcp(&p) {
                continue;
            }
            if kolabmeet_net::rtp::RtpHeader::parse(&p).is_ok_and(|h| h.ssrc == ssrc)
                && srtp.unprotect_rtp(&mut p).is_ok()
            {
                got += 1;
            }
        }
        let _ = self.socket.set_nonblocking(false);
        got
    }
}

/// A peer of a [`UdpWorker`].
pub type UdpPeer = Peer<UdpClient>;

/// Wakes a thread waiting for the worker's events.
#[derive(Default)]
struct Wake {
    flag: Mutex<bool>,
    cond: Condvar,
}

/// One worker thread and the client side of its peers. See the module documentation.
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
    /// The SRTP profiles new browsers offer, in order (Chromium's by default).
    pub srtp_profiles: Vec<SrtpProfile>,
}

impl UdpWorker {
    /// Starts the worker (its thread is `media-worker-0`).
    pub fn start() -> io::Result<Self> {
        Self::start_workers(1, kolabmeet_engine::worker::DEFAULT_ROUTER_SCALE_SIZE)
    }

    /// Starts `workers` worker threads on free ports, rooms spreading over them past
    /// `scale` peers per router (`ROUTER_SCALE_SIZE`). Each peer connects to the port its
    /// transport's candidates name.
    pub fn start_workers(workers: usize, scale: usize) -> io::Result<Self> {
        let wake = Arc::new(Wake::default());
        let w = wake.clone();
        let notify: kolabmeet_engine::worker::Notify = Arc::new(move || {
            *w.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
            w.cond.notify_all();
        });
        let settings = WorkerSettings {
            listen_ip: [127, 0, 0, 1].into(),
            announced_address: "127.0.0.1".into(),
            port: 0,
            sender_report_clock: Default::default(),
        };
        let mut engine = WorkerEngine::start(settings, workers, notify)?;
        engine.set_router_scale_size(scale);
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
            srtp_profiles: crate::browser::CHROMIUM_SRTP_PROFILES.to_vec(),
        })
    }

    /// The (first) worker's media address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine (its placement and stats).
    pub fn engine(&self) -> &WorkerEngine {
        &self.engine
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

    fn wait_reply(&mut self, tag: RequestTag) -> Result<EngineReply, EngineError> {
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
                return Err(EngineError::Refused(kolabmeet_engine::Refusal::NoReply));
            }
            let mut flag = self.wake.flag.lock().unwrap_or_else(|e| e.into_inner());
            if !*flag {
                flag = self
                    .wake
                    .cond
                    .wait_timeout(flag, (deadline - now).min(READ_TIMEOUT))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            *flag = false;
        }
    }

    /// Connects the transport of a `createWebRtcTransport` `answer` (of `peer`) over
    /// `pipe`: ICE checks until one is answered, `connectWebRtcTransport` with a browser
    /// as DTLS client, then the handshake. Returns the connected browser.
    pub fn connect_over(
        &mut self,
        pipe: &mut Pipe,
        answer: &Value,
        peer: PeerId,
    ) -> Result<Browser, String> {
        let transport: TransportId = answer["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no transport id in {answer}"))?;
        let mut browser =
            Browser::offering(answer, &self.cert, &self.srtp_profiles, Instant::now())?;
        let io = |e: io::Error| format!("socket: {e}");
        let deadline = Instant::now() + self.timeout;
        'ice: loop {
            if Instant::now() >= deadline {
                return Err("no ICE binding response".into());
            }
            pipe.send(&browser.binding_request()).map_err(io)?;
            let until = Instant::now() + ICE_RETRY;
            while Instant::now() < until {
                if let Some(mut d) = pipe.recv().map_err(io)?
                    && browser.handle_datagram(Instant::now(), &mut d) == Incoming::StunResponse
                {
                    break 'ice;
                }
            }
        }
        let dtls_parameters = browser.dtls_parameters();
        self.command(|tag| connect_transport(tag, peer, transport, dtls_parameters))
            .map_err(|e| format!("connectWebRtcTransport: {e}"))?;
        while !browser.is_connected() {
            let now = Instant::now();
            if now >= deadline {
                return Err("DTLS did not connect in time".into());
            }
            if browser.poll_timeout().is_some_and(|t| t <= now) {
                browser.handle_timeout(now);
            }
            while let Some(d) = browser.poll_transmit() {
                pipe.send(&d).map_err(io)?;
            }
            if let Some(mut d) = pipe.recv().map_err(io)? {
                browser.handle_datagram(Instant::now(), &mut d);
            }
        }
        // The client's last flight may still be on its way; the worker is connected once
        // it has it (DTLS 1.2: the server's Finished comes last, so it already is).
        Ok(browser)
    }

    /// A new transport of `peer` in `room` (the peer's first, or another one: a
    /// participant's send and receive transports), created, ICE-nominated and
    /// DTLS-connected over its own UDP socket.
    pub fn connect_transport(&mut self, room: RoomId, peer: PeerId) -> Result<UdpPeer, String> {
        let v = self
            .command(|tag| create_transport(tag, room, peer))
            .map_err(|e| format!("createWebRtcTransport: {e}"))?;
        let answer = crate::setup::wire(&v);
        let port = answer["iceCandidates"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["protocol"] == "udp"))
            .and_then(|c| c["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("no UDP candidate in {answer}"))?;
        let addr = SocketAddr::new(self.addr.ip(), port);
        let mut pipe = Pipe::udp(addr, READ_TIMEOUT).map_err(|e| format!("socket: {e}"))?;
        let browser = self.connect_over(&mut pipe, &answer, peer)?;
        let Pipe::Udp(socket) = pipe else {
            unreachable!("made as UDP above")
        };
        Ok(Peer {
            peer,
            transport: answer_id(&v)?,
            client: UdpClient { browser, socket },
        })
    }
}

impl MediaWorker for UdpWorker {
    type Client = UdpClient;

    fn submit(&mut self, command: EngineCommand) {
        self.engine.submit(command);
    }

    fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<EngineReply, EngineError> {
        self.next_tag += 1;
        let tag = RequestTag(self.next_tag);
        self.engine.submit(make(tag));
        self.wait_reply(tag)
    }

    fn connect_peer(&mut self, room: RoomId) -> Result<UdpPeer, String> {
        self.connect_transport(room, PeerId::random())
    }
}
