//! The control plane (`ControlPlane`) driven like the server's front door drives it, over
//! a real media engine: the test kit's `SimEngine`, a worker core run synchronously in
//! process on virtual time, with browser-like peers that can really connect the
//! transports the control plane creates and send media on them.
//!
//! The input is a list of operations, each one byte (low 4 bits: what; high 4 bits: how far
//! time moves first) and the bytes it reads: rooms and peers created through the HTTP-side
//! calls; signaling sockets of those peers opened (good or bad tokens, Engine.IO v3 or v4),
//! closed, sent Engine.IO frames and garbage; Socket.IO requests, mostly well formed (the
//! method chosen by a byte, fields filled from the bytes after it, ids taken from earlier
//! answers: transports, producers, consumers, peers), sometimes with a field replaced by
//! junk; acks of the server's `newConsumer` requests; ICE, DTLS and RTP from a browser on
//! a created transport; and time.
//!
//! Asserts: no panic; the control plane's tables stay bounded and consistent with the
//! engine's (every engine request answered at once, the same producers on both sides, an
//! engine with nothing in it once no room is left).
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kolabmeet_engine::ortc::router_rtp_capabilities;
use kolabmeet_engine::{PeerId, RoomId};
use kolabmeet_signaling::ConnId;
use kolabmeet_signaling::control::{ControlConfig, ControlPlane, HandshakeQuery, Now, Output};
use kolabmeet_signaling::roles::Role;
use kolabmeet_testkit::sim_engine::lock;
use kolabmeet_testkit::{
    Browser, Endpoint, SharedSim, Sim, SimEngine, certificates, chrome_packet, opus_packet,
    opus_params, simulcast_params, vp8, vp8_params,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// Operations one input may run.
const MAX_OPS: usize = 300;
/// Rooms, peers and sockets one input may create.
const MAX_ROOMS: usize = 2;
const MAX_PEERS: usize = 6;
const MAX_SOCKETS: usize = 16;
/// Ids kept from answers, per kind (the oldest go).
const KEPT_IDS: usize = 32;
/// How far time moves before an operation, by its byte's high 4 bits (ms).
const STEPS_MS: [u64; 16] = [
    0, 0, 0, 0, 0, 0, 1, 10, 50, 100, 500, 1000, 5000, 11_000, 21_000, 31_000,
];
/// Where browsers of created transports get their ports.
const FIRST_BROWSER_PORT: u16 = 20_000;

/// The client requests of contract section 5.
const METHODS: [&str; 27] = [
    "join",
    "join",
    "createWebRtcTransport",
    "createWebRtcTransport",
    "connectWebRtcTransport",
    "connectWebRtcTransport",
    "produce",
    "produce",
    "restartIce",
    "closeProducer",
    "pauseProducer",
    "resumeProducer",
    "pauseConsumer",
    "resumeConsumer",
    "changeNickname",
    "raisedHand",
    "chatMessage",
    "moderator:addRole",
    "moderator:removeRole",
    "moderator:changeLanguage",
    "moderator:joinRequestAccept",
    "moderator:joinRequestDeny",
    "moderator:kickPeer",
    "moderator:closeRoom",
    "getRouterRtpCapabilities",
    "createPlainTransport",
    "connectPlainTransport",
];

/// What a request the fuzzer sent was, to read its ack.
enum Asked {
    Transport,
    Produce { ssrc: u32, video: bool },
    Other,
}

/// A peer token handed out by `create_peer`.
struct PeerRec {
    room: RoomId,
    id: PeerId,
    token: String,
}

/// The control plane, its engine, and what the operations learnt from answers.
struct World {
    cp: ControlPlane,
    sim: SharedSim,
    start: Instant,
    now: Now,
    rooms: Vec<RoomId>,
    peers: Vec<PeerRec>,
    /// Opened sockets and the next ack id each uses.
    sockets: Vec<(ConnId, u64)>,
    asked: HashMap<(ConnId, u64), Asked>,
    /// `createWebRtcTransport` answers.
    transports: Vec<Value>,
    producers: Vec<String>,
    consumers: Vec<String>,
    /// SSRCs of produced streams (and whether video), and of consumers.
    produced: Vec<(u32, bool)>,
    consumer_ssrcs: Vec<u32>,
    /// `newConsumer` requests not acked yet.
    server_requests: Vec<(ConnId, u64)>,
    /// Browser ports in use.
    browsers: Vec<u16>,
    seq: u16,
}

/// Keeps at most [`KEPT_IDS`] of `v`.
fn keep<T>(v: &mut Vec<T>, x: T) {
    if v.len() >= KEPT_IDS {
        v.remove(0);
    }
    v.push(x);
}

impl World {
    fn new() -> Self {
        let (engine, sim) = SimEngine::new(Sim::with_shared_certificates());
        lock(&sim).strict = false;
        let start = lock(&sim).now;
        World {
            cp: ControlPlane::new(ControlConfig::default(), Box::new(engine)),
            sim,
            start,
            now: Now {
                mono: start,
                unix: 1_700_000_000,
            },
            rooms: Vec::new(),
            peers: Vec::new(),
            sockets: Vec::new(),
            asked: HashMap::new(),
            transports: Vec::new(),
            producers: Vec::new(),
            consumers: Vec::new(),
            produced: Vec::new(),
            consumer_ssrcs: Vec::new(),
            server_requests: Vec::new(),
            browsers: Vec::new(),
            seq: 0,
        }
    }

    /// Moves both clocks to `mono` and runs what is due (the engine's timers first).
    fn set_time(&mut self, mono: Instant) {
        self.now.mono = mono;
        self.now.unix = 1_700_000_000 + (mono - self.start).as_secs();
        {
            let mut sim = lock(&self.sim);
            sim.now = mono;
            if sim.core.poll_timeout().is_some_and(|t| t <= mono) {
                sim.core.handle_timeout(mono);
                sim.pump();
            }
        }
        self.cp.pump_engine(self.now);
        self.cp.handle_timeout(self.now);
        self.drain();
    }

    /// Moves time on by `d`, stopping at (at most 64 of) the deadlines on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now.mono + d;
        for _ in 0..64 {
            let engine = lock(&self.sim).core.poll_timeout();
            let next = [engine, self.cp.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(t) if t <= end => self.set_time(t.max(self.now.mono)),
                _ => break,
            }
        }
        self.set_time(end);
    }

    /// Runs one operation.
    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let op: u8 = u.arbitrary()?;
        let d = Duration::from_millis(STEPS_MS[usize::from(op >> 4)]);
        if !d.is_zero() {
            self.advance(d);
        }
        match op & 0x0f {
            0 => self.http(u)?,
            1 if self.peers.len() < MAX_PEERS && !self.rooms.is_empty() => {
                let room = *u.choose(&self.rooms)?;
                let role =
                    Role::from_bits(u64::from(u.arbitrary::<u8>()? & 31)).unwrap_or(Role::NONE);
                if let Ok((id, url)) = self.cp.create_peer(room, role, self.now) {
                    let token = url.rsplit("authToken=").next().unwrap_or("").to_owned();
                    self.peers.push(PeerRec { room, id, token });
                }
            }
            2 => self.open_socket(u)?,
            3 => {
                let (conn, _) = *u.choose(&self.sockets)?;
                self.cp.socket_closed(conn, self.now);
            }
            4..=9 => self.request(u)?,
            10 => {
                let i = u.choose_index(self.server_requests.len())?;
                let (conn, id) = self.server_requests.remove(i);
                let args = if u.ratio(7, 8)? { "[]" } else { "[500,\"no\"]" };
                self.frame(conn, &format!("43{id}{args}"));
            }
            11 => {
                let (conn, _) = *u.choose(&self.sockets)?;
                let text = *u.choose(&["3", "2", "1", "6", "41", "40", "5", "2probe"])?;
                self.frame(conn, text);
            }
            12 => {
                let (conn, _) = *u.choose(&self.sockets)?;
                let prefix = *u.choose(&["", "4", "42", "43", "421", "40/x,"])?;
                let len = u.int_in_range(0..=200)?;
                let junk = String::from_utf8_lossy(u.bytes(len.min(u.len()))?).into_owned();
                self.frame(conn, &format!("{prefix}{junk}"));
            }
            13 => {
                let secs: u16 = u.arbitrary()?;
                self.advance(Duration::from_millis(u64::from(secs) * 100));
            }
            14 => self.browser_connects(u)?,
            15 => self.browser_sends(u)?,
            _ => {}
        }
        self.drain();
        Ok(())
    }

    /// The HTTP API and console side: rooms, signals, stats.
    fn http(&mut self, u: &mut Unstructured) -> Result<()> {
        match u.int_in_range(0..=3)? {
            0 | 1 if self.rooms.len() < MAX_ROOMS => {
                if let Ok(r) = self.cp.create_room(self.now) {
                    self.rooms.push(r);
                }
            }
            2 => {
                let room = *u.choose(&self.rooms)?;
                let role = Role::from_bits(u64::from(u.arbitrary::<u8>()? & 31));
                let _ = self.cp.signal(room, "fuzz", role, &json!({"x": 1}));
            }
            _ => {
                let _ = (self.cp.stats(), self.cp.dump_rooms(), self.cp.dump_peers());
            }
        }
        Ok(())
    }

    /// A signaling socket for a known peer (or a stranger), with a good or bad token.
    fn open_socket(&mut self, u: &mut Unstructured) -> Result<()> {
        if self.sockets.len() >= MAX_SOCKETS {
            return Ok(());
        }
        let flags: u8 = u.arbitrary()?;
        let (peer, room, token) = match u.choose(&self.peers) {
            Ok(p) => (p.id.to_string(), p.room.to_string(), p.token.clone()),
            Err(_) => (
                PeerId::random().to_string(),
                RoomId::random().to_string(),
                "x".into(),
            ),
        };
        let query = HandshakeQuery {
            peer_id: (flags & 1 == 0).then_some(peer),
            room_id: (flags & 2 == 0).then_some(room),
            auth_token: (flags & 4 == 0).then(|| if flags & 8 == 0 { token } else { "bad".into() }),
            eio: Some(if flags & 0x10 == 0 { "4" } else { "3" }.into()),
        };
        let conn = ConnId(self.sockets.len() as u64 + 1);
        self.sockets.push((conn, 1));
        self.cp.socket_open(conn, query, self.now);
        self.drain();
        if flags & 0x30 == 0 {
            self.frame(conn, "40");
        }
        Ok(())
    }

    /// One text frame from a socket.
    fn frame(&mut self, conn: ConnId, text: &str) {
        self.cp.socket_frame(conn, text, self.now);
        self.drain();
    }

    /// A `request` event, mostly well formed.
    fn request(&mut self, u: &mut Unstructured) -> Result<()> {
        let i = u.choose_index(self.sockets.len())?;
        let method = *u.choose(&METHODS)?;
        let (mut data, asked) = self.request_data(method, u)?;
        if u.ratio(1, 16)? {
            junk_field(&mut data, u)?;
        }
        let (conn, ack) = self.sockets[i];
        let with_ack = u.ratio(15, 16)?;
        let body = json!(["request", { "method": method, "data": data }]);
        let text = if with_ack {
            self.sockets[i].1 += 1;
            self.asked.insert((conn, ack), asked);
            format!("42{ack}{body}")
        } else {
            format!("42{body}")
        };
        self.frame(conn, &text);
        Ok(())
    }

    /// The data of `method`, filled from the input and from earlier answers.
    fn request_data(&mut self, method: &str, u: &mut Unstructured) -> Result<(Value, Asked)> {
        let transport = pick(u, &self.transports)?.map(|t| t["id"].clone());
        let producer = pick(u, &self.producers)?;
        let consumer = pick(u, &self.consumers)?;
        let peer = pick(u, &self.peers)?.map(|p| p.id.to_string());
        let flag: u8 = u.arbitrary()?;
        let text = |u: &mut Unstructured| -> Result<String> { u.arbitrary() };
        Ok(match method {
            "join" => {
                let mut d = json!({});
                if flag & 1 == 0 {
                    d["nickname"] = json!(text(u)?);
                }
                if flag & 2 == 0 {
                    d["rtpCapabilities"] =
                        serde_json::to_value(router_rtp_capabilities()).unwrap_or(Value::Null);
                }
                (d, Asked::Other)
            }
            "createWebRtcTransport" => (
                json!({ "forceTcp": flag & 1 != 0, "producing": flag & 2 == 0, "consuming": flag & 4 == 0 }),
                Asked::Transport,
            ),
            "connectWebRtcTransport" => {
                let fps = certificates().browsers.fingerprints().to_vec();
                let role = *u.choose(&["client", "server", "auto"])?;
                let dtls = json!({ "role": role, "fingerprints": fps });
                (
                    json!({ "transportId": transport, "dtlsParameters": dtls }),
                    Asked::Other,
                )
            }
            "produce" => {
                let ssrc: u32 = u.arbitrary()?;
                let mid = (flag >> 4).to_string();
                let (kind, mut params) = match flag & 3 {
                    0 => ("audio", opus_params(ssrc, &mid)),
                    1 => ("video", vp8_params(ssrc, ssrc.wrapping_add(1))),
                    _ => ("video", simulcast_params()),
                };
                params.mid = Some(mid);
                let source = *u.choose(&["mic", "webcam", "screen", "other"])?;
                let d = json!({
                    "transportId": transport, "kind": kind, "appData": { "source": source },
                    "rtpParameters": serde_json::to_value(params).unwrap_or(Value::Null),
                });
                (
                    d,
                    Asked::Produce {
                        ssrc,
                        video: kind == "video",
                    },
                )
            }
            "restartIce" => (json!({ "transportId": transport }), Asked::Other),
            "closeProducer" | "pauseProducer" | "resumeProducer" => {
                (json!({ "producerId": producer }), Asked::Other)
            }
            "pauseConsumer" | "resumeConsumer" => (json!({ "consumerId": consumer }), Asked::Other),
            "changeNickname" => (json!({ "nickname": text(u)? }), Asked::Other),
            "raisedHand" => (json!({ "raisedHand": flag & 1 == 0 }), Asked::Other),
            "chatMessage" => (json!({ "message": text(u)? }), Asked::Other),
            "moderator:addRole" | "moderator:removeRole" => {
                (json!({ "peerId": peer, "role": flag & 31 }), Asked::Other)
            }
            "moderator:changeLanguage" => {
                let lang = u
                    .choose(&[json!("en"), json!("de"), json!(null), json!("EN!")])?
                    .clone();
                (json!({ "peerId": peer, "language": lang }), Asked::Other)
            }
            "moderator:joinRequestAccept" | "moderator:joinRequestDeny" => (
                json!({ "requestId": format!("r{}", flag % 4) }),
                Asked::Other,
            ),
            "moderator:kickPeer" => (json!({ "peerId": peer }), Asked::Other),
            "connectPlainTransport" => (
                json!({ "transportId": transport, "ip": "127.0.0.1", "port": 5004, "rtcpPort": 5005 }),
                Asked::Other,
            ),
            _ => (Value::Null, Asked::Other),
        })
    }

    /// A browser for a created transport: ICE check and DTLS client (the transport
    /// connects once `connectWebRtcTransport` carries the browsers' fingerprints).
    fn browser_connects(&mut self, u: &mut Unstructured) -> Result<()> {
        let i = u.choose_index(self.transports.len())?;
        let port = FIRST_BROWSER_PORT + i as u16;
        if self.browsers.contains(&port) {
            return Ok(());
        }
        {
            let mut sim = lock(&self.sim);
            let now = sim.now;
            let Ok(browser) = Browser::new(&self.transports[i], &certificates().browsers, now)
            else {
                return Ok(());
            };
            let check = browser.binding_request();
            let endpoint = Endpoint::new(browser);
            sim.endpoints
                .insert(kolabmeet_testkit::tuple(port), endpoint);
            sim.raw(port, &check);
        }
        self.browsers.push(port);
        self.cp.pump_engine(self.now);
        Ok(())
    }

    /// A connected browser sends RTP of a produced stream, or RTCP about a consumer.
    fn browser_sends(&mut self, u: &mut Unstructured) -> Result<()> {
        let port = *u.choose(&self.browsers)?;
        self.seq = self.seq.wrapping_add(1);
        let (mut packet, rtcp) = match u.int_in_range(0..=2)? {
            0 | 1 => {
                let (ssrc, video) = *u.choose(&self.produced)?;
                let key: bool = u.arbitrary()?;
                let p = if video {
                    let ts = u32::from(self.seq) * 3000;
                    chrome_packet(96, self.seq, ts, ssrc, "0", None, &vp8(key, 1))
                } else {
                    opus_packet(self.seq, ssrc)
                };
                (p, false)
            }
            _ => {
                let ssrc = *u.choose(&self.consumer_ssrcs)?;
                let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 9];
                pli.extend_from_slice(&ssrc.to_be_bytes());
                (pli, true)
            }
        };
        {
            let mut sim = lock(&self.sim);
            let b = &mut sim.endpoint(port).browser;
            let ok = if rtcp {
                b.protect_rtcp(&mut packet)
            } else {
                b.protect_rtp(&mut packet)
            };
            if ok.is_ok() {
                sim.raw(port, &packet);
            }
        }
        self.cp.pump_engine(self.now);
        Ok(())
    }

    /// Runs the driver's side of every output; learns ids from acks and server requests.
    fn drain(&mut self) {
        while let Some(o) = self.cp.poll_output() {
            match o {
                Output::Frame(conn, f) => self.read_frame(conn, &f),
                Output::Close(conn) => self.cp.socket_closed(conn, self.now),
                Output::Webhook(_) => {}
            }
        }
        // Browsers only keep what they got for the length of one operation.
        for e in lock(&self.sim).endpoints.values_mut() {
            e.rtp.clear();
            e.rtcp.clear();
        }
    }

    fn read_frame(&mut self, conn: ConnId, f: &str) {
        let (Some(kind), Some(rest)) = (f.get(..2), f.get(2..)) else {
            return;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(id) = rest[..digits].parse::<u64>() else {
            return;
        };
        let Ok(v) = serde_json::from_str::<Value>(&rest[digits..]) else {
            return;
        };
        match kind {
            "43" => match self.asked.remove(&(conn, id)) {
                Some(Asked::Transport) if v[0].is_null() => {
                    keep(&mut self.transports, v[1].clone())
                }
                Some(Asked::Produce { ssrc, video }) if v[0].is_null() => {
                    if let Some(p) = v[1]["id"].as_str() {
                        keep(&mut self.producers, p.to_owned());
                        keep(&mut self.produced, (ssrc, video));
                    }
                }
                _ => {}
            },
            "42" if v[0] == "request" => {
                keep(&mut self.server_requests, (conn, id));
                let data = &v[1]["data"];
                if let Some(c) = data["id"].as_str() {
                    keep(&mut self.consumers, c.to_owned());
                }
                if let Some(s) = data["rtpParameters"]["encodings"][0]["ssrc"].as_u64() {
                    keep(&mut self.consumer_ssrcs, s as u32);
                }
            }
            _ => {}
        }
    }

    /// The tables stay bounded and agree with the engine's.
    fn check(&self, timers_compacted: bool) {
        let counts = self.cp.internal_counts();
        let n: HashMap<&str, usize> = counts
            .split(' ')
            .filter_map(|kv| kv.split_once(':'))
            .map(|(k, v)| (k, v.parse().unwrap_or(usize::MAX)))
            .collect();
        assert!(
            n["rooms"] <= MAX_ROOMS && n["peers"] <= MAX_PEERS,
            "{counts}"
        );
        assert_eq!(n["peers"], n["peerIndex"], "{counts}");
        assert!(n["sockets"] <= self.sockets.len(), "{counts}");
        assert_eq!(
            n["pendingEngineRequests"], 0,
            "the engine answers at once: {counts}"
        );
        assert!(n["consumerOffers"] <= 256 * self.sockets.len(), "{counts}");
        let live = n["sockets"] + n["peerIndex"] + n["rooms"];
        if timers_compacted {
            assert!(n["timers"] <= 2 * live + 1024, "{counts}");
        }
        let sim = lock(&self.sim);
        let s = sim.core.sizes();
        assert_eq!(
            n["producers"], s.producers,
            "control plane and engine: {counts} {s:?}"
        );
        assert!(s.rooms <= n["rooms"], "{counts} {s:?}");
        if n["rooms"] == 0 {
            let tables = sim.tables();
            assert!(
                tables.iter().all(|n| *n == 0),
                "no room, nothing in the engine: {tables:?} {s:?}"
            );
        }
        assert!(sim.events.is_empty(), "every engine event taken");
    }
}

/// `Some` of an element of `v` most of the time, `None` (a missing id) otherwise.
fn pick<'a, T>(u: &mut Unstructured, v: &'a [T]) -> Result<Option<&'a T>> {
    if v.is_empty() || u.ratio(1, 16)? {
        return Ok(None);
    }
    Ok(Some(&v[u.choose_index(v.len())?]))
}

/// Replaces one field of `data` (or `data` itself) with a value of the wrong kind.
fn junk_field(data: &mut Value, u: &mut Unstructured) -> Result<()> {
    let junk = match u.int_in_range(0..=4)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<i64>()?),
        2 => json!(u.arbitrary::<String>()?),
        3 => json!([1, "x", null]),
        _ => json!({ "a": { "b": [] } }),
    };
    match data.as_object_mut() {
        Some(obj) if !obj.is_empty() => {
            let keys: Vec<String> = obj.keys().cloned().collect();
            let k = u.choose(&keys)?;
            obj.insert(k.clone(), junk);
        }
        _ => *data = junk,
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut world = World::new();
    let mut u = Unstructured::new(data);
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let op_kind = u.peek_bytes(1).map(|b| b[0] & 0x0f);
        if world.step(&mut u).is_err() {
            break;
        }
        world.check(op_kind == Some(13));
    }
});
