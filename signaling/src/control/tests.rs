//! Room rules with injected time and no sockets: a control plane, an engine, and frames
//! collected per connection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kolabmeet_engine::ortc::{RtpCapabilities, router_rtp_capabilities};
use kolabmeet_engine::unavailable::UnavailableEngine;
use kolabmeet_engine::{
    ConsumerId, EngineCommand, EngineEvent, MediaEngine, PeerId, ProducerId, RoomId, TransportId,
};
use serde_json::{Value, json};

use super::*;
use crate::session::SessionConfig;

struct Harness {
    cp: ControlPlane,
    now: Now,
    next_conn: u64,
    frames: std::collections::HashMap<ConnId, Vec<String>>,
    closed: Vec<ConnId>,
    webhooks: Vec<Webhook>,
}

fn config() -> ControlConfig {
    ControlConfig {
        session: SessionConfig {
            rate_burst: 20,
            rate_per_second: 10,
            ..SessionConfig::default()
        },
        ..ControlConfig::default()
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(config(), Box::new(UnavailableEngine::new()))
    }

    fn with(config: ControlConfig, engine: Box<dyn MediaEngine>) -> Self {
        Self {
            cp: ControlPlane::new(config, engine),
            now: Now {
                mono: Instant::now(),
                unix: 1_700_000_000,
            },
            next_conn: 1,
            frames: Default::default(),
            closed: Vec::new(),
            webhooks: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.cp.poll_output() {
            match o {
                Output::Frame(c, f) => self.frames.entry(c).or_default().push(f),
                Output::Close(c) => {
                    self.closed.push(c);
                    // The driver reports every closed socket back.
                    self.cp.socket_closed(c, self.now);
                }
                Output::Webhook(w) => self.webhooks.push(w),
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now.mono + d;
        loop {
            match self.cp.poll_timeout() {
                Some(t) if t <= end => {
                    self.now.mono = self.now.mono.max(t);
                    self.cp.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now.mono = end;
        self.now.unix += d.as_secs();
    }

    fn room(&mut self) -> RoomId {
        let r = self.cp.create_room(self.now).unwrap();
        self.drain();
        r
    }

    fn peer(&mut self, room: RoomId, role: Role) -> (PeerId, String) {
        let (id, url) = self.cp.create_peer(room, role, self.now).unwrap();
        let token = url.rsplit("authToken=").next().unwrap().to_owned();
        (id, token)
    }

    fn open(&mut self, q: HandshakeQuery) -> ConnId {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        self.cp.socket_open(c, q, self.now);
        self.drain();
        c
    }

    /// Opens a v4 socket for a peer and connects the namespace.
    fn connect(&mut self, room: RoomId, peer: PeerId, token: &str) -> ConnId {
        let c = self.open(HandshakeQuery {
            peer_id: Some(peer.to_string()),
            room_id: Some(room.to_string()),
            auth_token: Some(token.to_owned()),
            eio: Some("4".into()),
        });
        self.send(c, "40");
        c
    }

    fn send(&mut self, c: ConnId, text: &str) {
        self.cp.socket_frame(c, text, self.now);
        self.drain();
    }

    fn take(&mut self, c: ConnId) -> Vec<String> {
        self.frames.remove(&c).unwrap_or_default()
    }

    /// Sends a request with ack id 1 and returns the parsed ack arguments.
    fn request(&mut self, c: ConnId, method: &str, data: Value) -> Vec<Value> {
        self.take(c);
        let body = json!(["request", {"method": method, "data": data}]);
        self.send(c, &format!("421{body}"));
        let frames = self.take(c);
        let ack = frames
            .iter()
            .find(|f| f.starts_with("431"))
            .unwrap_or_else(|| panic!("no ack for {method}: {frames:?}"));
        // Notifications that arrived with the ack stay readable.
        let rest: Vec<String> = frames
            .iter()
            .filter(|f| !f.starts_with("431"))
            .cloned()
            .collect();
        self.frames.insert(c, rest);
        serde_json::from_str(&ack[3..]).unwrap()
    }

    fn notifications(&mut self, c: ConnId) -> Vec<(String, Value)> {
        self.take(c)
            .into_iter()
            .filter_map(|f| f.strip_prefix("42").map(str::to_owned))
            .filter_map(|f| serde_json::from_str::<Value>(&f).ok())
            .filter(|v| v[0] == "notification")
            .map(|v| {
                (
                    v[1]["method"].as_str().unwrap().to_owned(),
                    v[1]["data"].clone(),
                )
            })
            .collect()
    }

    fn joined(&mut self, room: RoomId, role: Role, nick: &str) -> (PeerId, ConnId) {
        let (p, t) = self.peer(room, role);
        let c = self.connect(room, p, &t);
        let ack = self.request(c, "join", json!({"nickname": nick}));
        assert!(ack[0].is_null(), "join failed: {ack:?}");
        self.take(c);
        (p, c)
    }
}

fn ok(ack: &[Value]) -> bool {
    ack.is_empty() || ack[0].is_null()
}

fn err(ack: &[Value]) -> (u64, String) {
    (
        ack[0].as_u64().expect("error code"),
        ack[1].as_str().unwrap().to_owned(),
    )
}

#[test]
fn connect_gives_room_ready() {
    let mut h = Harness::new();
    let room = h.room();
    let (peer, token) = h.peer(room, Role::PUBLISHER);
    let c = h.open(HandshakeQuery {
        peer_id: Some(peer.to_string()),
        room_id: Some(room.to_string()),
        auth_token: Some(token.clone()),
        eio: Some("4".into()),
    });
    let open = h.take(c);
    assert!(open[0].starts_with("0{\"sid\""), "{open:?}");
    h.send(c, "40");
    let frames = h.take(c);
    assert!(frames[0].starts_with("40{\"sid\""));
    assert_eq!(
        frames[1],
        format!(
            "42[\"notification\",{{\"method\":\"roomReady\",\"data\":{{\"iceServers\":null,\"roomId\":\"{room}\"}}}}]"
        )
    );
}

#[test]
fn turn_credentials_in_room_ready() {
    let mut cfg = config();
    cfg.turn = Some(TurnConfig {
        url: "turn:127.0.0.1:3478?transport=tcp".into(),
        secret: "s3cret".into(),
    });
    let mut h = Harness::with(cfg, Box::new(UnavailableEngine::new()));
    let room = h.room();
    let (peer, token) = h.peer(room, Role::PUBLISHER);
    let c = h.connect(room, peer, &token);
    let n = h.notifications(c);
    let ice = &n[0].1["iceServers"][0];
    assert_eq!(
        ice["username"],
        format!("{}:{peer}", 1_700_000_000u64 + 86_400)
    );
    assert_eq!(ice["urls"][0], "turn:127.0.0.1:3478?transport=tcp");
    assert!(ice["credential"].as_str().unwrap().ends_with('='));
}

#[test]
fn refusals_name_the_reason() {
    let mut h = Harness::new();
    let room = h.room();
    let other_room = h.room();
    let (peer, token) = h.peer(room, Role::PUBLISHER);
    let (stranger, stranger_token) = h.peer(other_room, Role::PUBLISHER);
    let cases = [
        (
            None,
            Some(room.to_string()),
            Some(token.clone()),
            "missing peerId",
        ),
        (
            Some(peer.to_string()),
            None,
            Some(token.clone()),
            "missing roomId",
        ),
        (
            Some(peer.to_string()),
            Some(room.to_string()),
            None,
            "missing authToken",
        ),
        (
            Some(peer.to_string()),
            Some(RoomId::random().to_string()),
            Some(token.clone()),
            "unknown room",
        ),
        (
            Some(PeerId::random().to_string()),
            Some(room.to_string()),
            Some(token.clone()),
            "unknown peer",
        ),
        (
            Some(stranger.to_string()),
            Some(room.to_string()),
            Some(stranger_token),
            "peer belongs to another room",
        ),
        (
            Some(peer.to_string()),
            Some(room.to_string()),
            Some("0".repeat(32)),
            "invalid authToken",
        ),
        (
            Some("x".into()),
            Some("y".into()),
            Some("z".into()),
            "unknown room",
        ),
    ];
    let n_cases = cases.len();
    for (p, r, t, reason) in cases {
        let c = h.open(HandshakeQuery {
            peer_id: p,
            room_id: r,
            auth_token: t,
            eio: Some("4".into()),
        });
        h.take(c);
        h.send(c, "40");
        let frames = h.take(c);
        assert_eq!(frames, vec![format!("44{{\"message\":\"{reason}\"}}")]);
        // Requests on a refused socket are ignored.
        h.send(c, "421[\"request\",{\"method\":\"ping\"}]");
        assert!(h.take(c).is_empty());
    }
    // Refused sockets do not linger.
    h.advance(Duration::from_secs(6));
    assert_eq!(h.closed.len(), n_cases);
}

#[test]
fn eio3_connects_implicitly() {
    let mut h = Harness::new();
    let room = h.room();
    let (peer, token) = h.peer(room, Role::PUBLISHER);
    let c = h.open(HandshakeQuery {
        peer_id: Some(peer.to_string()),
        room_id: Some(room.to_string()),
        auth_token: Some(token),
        eio: Some("3".into()),
    });
    let frames = h.take(c);
    assert!(frames[0].starts_with("0{"));
    assert_eq!(frames[1], "40");
    assert!(frames[2].contains("roomReady"));
    h.send(c, "2");
    assert_eq!(h.take(c), vec!["3"]);
}

#[test]
fn join_lists_others_and_announces() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "Ann");
    let (b, tb) = h.peer(room, Role::SUBSCRIBER);
    let cb = h.connect(room, b, &tb);
    let ack = h.request(cb, "join", json!({"nickname": "Bob"}));
    assert!(ack[0].is_null());
    let me = &ack[1];
    assert_eq!(me["id"], json!(b));
    assert_eq!(me["nickname"], "Bob");
    assert_eq!(me["role"], 1);
    assert_eq!(me["raisedHand"], false);
    assert_eq!(me["language"], Value::Null);
    assert_eq!(me["peers"].as_array().unwrap().len(), 1);
    assert_eq!(me["peers"][0]["id"], json!(a));
    let n = h.notifications(ca);
    assert_eq!(n[0].0, "newPeer");
    assert_eq!(n[0].1["nickname"], "Bob");
    // Twice is refused.
    let (code, msg) = err(&h.request(cb, "join", json!({})));
    assert_eq!(code, 409);
    assert!(msg.contains("already joined"));
}

#[test]
fn requests_before_join_are_refused_except_transport_ones() {
    let mut h = Harness::new();
    let room = h.room();
    let (p, t) = h.peer(room, Role::PUBLISHER);
    let c = h.connect(room, p, &t);
    let (code, msg) = err(&h.request(c, "chatMessage", json!({"message": "hi"})));
    assert_eq!(code, 409);
    assert!(msg.contains("not joined"), "{msg}");
    let (code, msg) = err(&h.request(c, "createWebRtcTransport", json!({"producing": true})));
    assert_eq!(code, 503);
    assert!(msg.contains("media is not available yet"), "{msg}");
    assert!(ok(&h.request(c, "ping", json!(null))));
    let caps = h.request(c, "getRouterRtpCapabilities", json!(null));
    assert!(caps[0].is_null());
    assert_eq!(
        caps[1],
        serde_json::to_value(router_rtp_capabilities()).unwrap()
    );
}

#[test]
fn unknown_and_malformed_requests() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, c) = h.joined(room, Role::PUBLISHER, "A");
    let (code, msg) = err(&h.request(c, "fly", json!({})));
    assert_eq!(
        (code, msg.as_str()),
        (400, "unknown request.method \"fly\"")
    );
    h.send(c, "421[\"request\",\"ping\"]");
    let f = h.take(c);
    assert!(f[0].starts_with("431[400,"), "{f:?}");
    let (code, msg) = err(&h.request(c, "produce", json!({"transportId": TransportId::random(), "kind": "video", "rtpParameters": {"codecs": []}, "appData": {"source": "tv"}})));
    assert_eq!(code, 400);
    assert!(msg.contains("source"), "{msg}");
}

#[test]
fn produce_needs_publisher() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, c) = h.joined(room, Role::SUBSCRIBER, "A");
    let rtp = json!({"codecs": [], "encodings": [], "headerExtensions": [], "rtcp": {}});
    let ack = h.request(c, "produce", json!({"transportId": TransportId::random(), "kind": "audio", "rtpParameters": rtp, "appData": {"source": "mic"}}));
    let (code, msg) = err(&ack);
    assert!(code == 403 || code == 400, "{ack:?}");
    assert!(
        msg.contains("PUBLISHER") || msg.contains("rtpParameters"),
        "{msg}"
    );
}

#[test]
fn broadcasts_reach_joined_peers_including_sender() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "Ann");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "Bob");
    let (np, nt) = h.peer(room, Role::PUBLISHER);
    let cn = h.connect(room, np, &nt); // connected, not joined
    h.take(ca);
    h.take(cn);
    assert!(ok(&h.request(
        ca,
        "chatMessage",
        json!({"message": "hello"})
    )));
    for c in [ca, cb] {
        let n = h.notifications(c);
        assert_eq!(n[0].0, "chatMessage");
        assert_eq!(
            n[0].1,
            json!({"peerId": a, "nickname": "Ann", "message": "hello"})
        );
    }
    assert!(h.notifications(cn).is_empty());
    assert!(ok(&h.request(
        ca,
        "changeNickname",
        json!({"nickname": "Anna"})
    )));
    assert_eq!(
        h.notifications(cb)[0],
        (
            "changeNickname".into(),
            json!({"peerId": a, "nickname": "Anna"})
        )
    );
    assert!(ok(&h.request(
        ca,
        "raisedHand",
        json!({"raisedHand": true})
    )));
    assert_eq!(
        h.notifications(cb)[0],
        (
            "changeRaisedHand".into(),
            json!({"peerId": a, "raisedHand": true})
        )
    );
}

#[test]
fn signal_by_role() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, cm) = h.joined(room, Role::MODERATOR, "M");
    let (_, cs) = h.joined(room, Role::SUBSCRIBER, "S");
    h.take(cm);
    assert_eq!(
        h.cp.signal(room, "joinRequest", Some(Role::MODERATOR), &json!({"x": 1}))
            .unwrap(),
        1
    );
    h.drain();
    assert_eq!(
        h.notifications(cm),
        vec![("signal:joinRequest".into(), json!({"x": 1}))]
    );
    assert!(h.notifications(cs).is_empty());
    assert_eq!(h.cp.signal(room, "t", None, &json!(null)).unwrap(), 2);
    assert_eq!(
        h.cp.signal(RoomId::random(), "t", None, &json!(null)),
        Err(ControlError::RoomNotFound)
    );
}

#[test]
fn reconnection_swaps_sockets() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "A");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    let tok = h.cp.rooms[&room].peers[&a].auth_token.clone();
    let ca2 = h.connect(room, a, &tok);
    let n = h.notifications(ca2);
    assert_eq!(n[0].0, "roomBack");
    let old = h.take(ca);
    assert!(old.contains(&"41".to_owned()), "{old:?}");
    assert!(h.closed.contains(&ca));
    assert!(h.notifications(cb).is_empty(), "no peerClosed on a swap");
    // The peer stays joined on the new socket.
    assert!(ok(&h.request(
        ca2,
        "chatMessage",
        json!({"message": "back"})
    )));
}

#[test]
fn lost_socket_grace_then_close() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "A");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    h.take(cb);
    h.cp.socket_closed(ca, h.now);
    h.drain();
    h.advance(Duration::from_secs(9));
    assert!(h.notifications(cb).is_empty());
    // Comes back within the grace.
    let tok = h.cp.rooms[&room].peers[&a].auth_token.clone();
    let ca2 = h.connect(room, a, &tok);
    assert_eq!(h.notifications(ca2)[0].0, "roomBack");
    h.advance(Duration::from_secs(5));
    assert!(h.notifications(cb).is_empty());
    // Lost again, gone for good.
    h.cp.socket_closed(ca2, h.now);
    h.drain();
    h.advance(Duration::from_secs(11));
    assert_eq!(
        h.notifications(cb),
        vec![("peerClosed".into(), json!({"peerId": a}))]
    );
    assert!(h.cp.room_of(&a).is_none());
}

#[test]
fn ping_timeout_starts_grace() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "A");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    // B answers pings, A does not.
    for _ in 0..3 {
        h.advance(Duration::from_secs(25));
        h.send(cb, "3");
    }
    assert!(h.closed.contains(&ca));
    let n = h.notifications(cb);
    assert!(
        n.iter()
            .any(|(m, d)| m == "peerClosed" && d["peerId"] == json!(a)),
        "{n:?}"
    );
    assert!(!h.closed.contains(&cb));
}

#[test]
fn deliberate_disconnect_closes_at_once() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "A");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    h.take(cb);
    h.send(ca, "41");
    assert_eq!(
        h.notifications(cb),
        vec![("peerClosed".into(), json!({"peerId": a}))]
    );
    assert!(h.closed.contains(&ca));
}

#[test]
fn room_closes_after_last_peer_unless_someone_joins() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, ca) = h.joined(room, Role::PUBLISHER, "A");
    h.send(ca, "41");
    h.advance(Duration::from_secs(5));
    assert!(h.cp.room_exists(&room));
    // Someone comes back in time: the close is cancelled.
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    h.advance(Duration::from_secs(20));
    assert!(h.cp.room_exists(&room));
    h.send(cb, "41");
    h.advance(Duration::from_secs(9));
    assert!(h.cp.room_exists(&room));
    h.advance(Duration::from_secs(2));
    assert!(!h.cp.room_exists(&room));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
}

#[test]
fn unused_rooms_expire() {
    let mut h = Harness::new();
    let room = h.room();
    h.advance(Duration::from_secs(3599));
    assert!(h.cp.room_exists(&room));
    h.advance(Duration::from_secs(2));
    assert!(!h.cp.room_exists(&room));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
}

#[test]
fn role_rules() {
    let mut h = Harness::new();
    let room = h.room();
    let (owner, co) = h.joined(
        room,
        Role::OWNER.with(Role::MODERATOR).with(Role::PUBLISHER),
        "O",
    );
    let (sub, cs) = h.joined(room, Role::SUBSCRIBER, "S");
    // Without MODERATOR.
    let (code, msg) = err(&h.request(cs, "moderator:addRole", json!({"peerId": owner, "role": 2})));
    assert_eq!(code, 403);
    assert!(msg.contains("MODERATOR"));
    // OWNER can be neither given nor taken.
    assert_eq!(
        err(&h.request(co, "moderator:addRole", json!({"peerId": sub, "role": 16}))).0,
        403
    );
    assert_eq!(
        err(&h.request(
            co,
            "moderator:removeRole",
            json!({"peerId": owner, "role": 16})
        ))
        .0,
        403
    );
    // MODERATOR cannot be taken from the OWNER.
    assert_eq!(
        err(&h.request(
            co,
            "moderator:removeRole",
            json!({"peerId": owner, "role": 4})
        ))
        .0,
        403
    );
    // Unknown bits.
    assert_eq!(
        err(&h.request(co, "moderator:addRole", json!({"peerId": sub, "role": 32}))).0,
        400
    );
    // Unknown target.
    assert_eq!(
        err(&h.request(
            co,
            "moderator:addRole",
            json!({"peerId": PeerId::random(), "role": 2})
        ))
        .0,
        404
    );
    // Giving PUBLISHER lowers the raised hand.
    assert!(ok(&h.request(
        cs,
        "raisedHand",
        json!({"raisedHand": true})
    )));
    h.take(co);
    h.take(cs);
    assert!(ok(&h.request(
        co,
        "moderator:addRole",
        json!({"peerId": sub, "role": 2})
    )));
    let n = h.notifications(cs);
    assert_eq!(
        n[0],
        ("changeRole".into(), json!({"peerId": sub, "role": 3}))
    );
    assert!(!h.cp.rooms[&room].peers[&sub].raised_hand);
    // Taking PUBLISHER clears the language.
    assert!(ok(&h.request(
        co,
        "moderator:changeLanguage",
        json!({"peerId": sub, "language": "de"})
    )));
    assert_eq!(
        h.notifications(cs)[0],
        (
            "changeLanguage".into(),
            json!({"peerId": sub, "language": "de"})
        )
    );
    assert!(ok(&h.request(
        co,
        "moderator:removeRole",
        json!({"peerId": sub, "role": 2})
    )));
    assert_eq!(
        h.notifications(cs)[0],
        ("changeRole".into(), json!({"peerId": sub, "role": 1}))
    );
    assert_eq!(h.cp.rooms[&room].peers[&sub].language, None);
    assert_eq!(
        err(&h.request(
            co,
            "moderator:changeLanguage",
            json!({"peerId": sub, "language": "xyz"})
        ))
        .0,
        400
    );
}

#[test]
fn join_requests_send_webhooks() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, cm) = h.joined(room, Role::MODERATOR, "M");
    let (_, cs) = h.joined(room, Role::SUBSCRIBER, "S");
    assert!(ok(&h.request(
        cm,
        "moderator:joinRequestAccept",
        json!({"requestId": "r1"})
    )));
    assert!(ok(&h.request(
        cm,
        "moderator:joinRequestDeny",
        json!({"requestId": "r2"})
    )));
    assert_eq!(
        err(&h.request(cs, "moderator:joinRequestDeny", json!({"requestId": "r3"}))).0,
        403
    );
    assert_eq!(
        h.webhooks,
        vec![
            Webhook::JoinRequest {
                accepted: true,
                request_id: "r1".into(),
                room
            },
            Webhook::JoinRequest {
                accepted: false,
                request_id: "r2".into(),
                room
            },
        ]
    );
    assert_eq!(
        h.webhooks[0].body(),
        json!({"requestId": "r1", "roomId": room, "event": "joinRequestAccepted"})
    );
}

#[test]
fn kick_and_close_room() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, co) = h.joined(room, Role::OWNER.with(Role::MODERATOR), "O");
    let (victim, cv) = h.joined(room, Role::PUBLISHER, "V");
    let (_, cx) = h.joined(room, Role::MODERATOR, "X");
    h.take(co);
    h.take(cx);
    h.take(cv);
    assert!(ok(&h.request(
        cx,
        "moderator:kickPeer",
        json!({"peerId": victim})
    )));
    let nv = h.notifications(cv);
    assert_eq!(nv[0].0, "moderator:kickPeer");
    assert!(h.closed.contains(&cv));
    assert!(
        h.notifications(co)
            .iter()
            .any(|(m, d)| m == "peerClosed" && d["peerId"] == json!(victim))
    );
    // Only the OWNER closes the room.
    assert_eq!(err(&h.request(cx, "moderator:closeRoom", json!({}))).0, 403);
    h.take(co);
    h.take(cx);
    let ack = h.request(co, "moderator:closeRoom", json!({}));
    assert!(ok(&ack));
    assert!(
        h.notifications(cx)
            .iter()
            .any(|(m, _)| m == "moderator:closeRoom")
    );
    assert!(!h.cp.room_exists(&room));
    assert!(h.closed.contains(&co) && h.closed.contains(&cx));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
}

#[test]
fn flooding_is_rate_limited() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, c) = h.joined(room, Role::PUBLISHER, "A");
    let mut limited = 0;
    for _ in 0..50 {
        let ack = h.request(c, "ping", json!(null));
        if !ok(&ack) {
            assert_eq!(err(&ack).0, 429);
            limited += 1;
        }
    }
    assert!(limited >= 25, "{limited}");
    h.advance(Duration::from_secs(1));
    assert!(ok(&h.request(c, "ping", json!(null))));
}

#[test]
fn hostile_frames_close_only_that_socket() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "A");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    h.send(ca, "\u{0}\u{1}garbage");
    assert!(h.closed.contains(&ca));
    assert!(!h.closed.contains(&cb));
    // Its peer goes through the grace path, then closes.
    h.advance(Duration::from_secs(11));
    assert!(h.cp.room_of(&a).is_none());
    assert!(ok(&h.request(cb, "ping", json!(null))));
}

#[test]
fn stats_shape() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, _) = h.joined(room, Role::PUBLISHER, "A");
    let s = h.cp.stats();
    assert_eq!(s["rooms"][0]["id"], json!(room));
    let p = &s["rooms"][0]["peers"][0];
    assert_eq!(p["id"], json!(a));
    assert_eq!(p["nickname"], "A");
    assert_eq!(p["joined"], true);
    assert_eq!(p["connected"], true);
    assert_eq!(p["transports"], json!([]));
    assert_eq!(h.cp.counts(), (1, 1));
}

/// A scripted engine for the consumer flow (the real one arrives with the media
/// workers): creates transports, producers and consumers with fresh ids and records
/// every command.
struct ScriptedEngine {
    caps: RtpCapabilities,
    events: VecDeque<EngineEvent>,
    log: Arc<Mutex<Vec<String>>>,
    /// Events the test injects, delivered after the scripted ones.
    inject: Arc<Mutex<VecDeque<EngineEvent>>>,
}

impl MediaEngine for ScriptedEngine {
    fn router_rtp_capabilities(&self) -> &RtpCapabilities {
        &self.caps
    }

    fn submit(&mut self, command: EngineCommand) {
        let reply = |tag, v: Value| EngineEvent::Reply { tag, result: Ok(v) };
        let mut log = self.log.lock().unwrap();
        match command {
            EngineCommand::CreateWebRtcTransport { tag, .. } => {
                self.events
                    .push_back(reply(tag, json!({"id": TransportId::random()})));
            }
            EngineCommand::Produce { tag, .. } => {
                self.events
                    .push_back(reply(tag, json!({"id": ProducerId::random()})));
            }
            EngineCommand::Consume { tag, paused, .. } => {
                log.push(format!("consume paused={paused}"));
                self.events.push_back(reply(
                    tag,
                    json!({"id": ConsumerId::random(), "kind": "video", "rtpParameters": {}, "type": "simulcast", "producerPaused": false}),
                ));
            }
            EngineCommand::SetConsumerPaused { tag, paused, .. } => {
                log.push(format!("consumer paused={paused}"));
                self.events.push_back(reply(tag, Value::Null));
            }
            EngineCommand::CloseConsumer { .. } => log.push("close consumer".into()),
            EngineCommand::ClosePeer { .. } => log.push("close peer".into()),
            _ => {}
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events
            .pop_front()
            .or_else(|| self.inject.lock().unwrap().pop_front())
    }
}

#[test]
fn consumer_flow_with_new_consumer_request() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let inject = Arc::new(Mutex::new(VecDeque::new()));
    let engine = ScriptedEngine {
        caps: router_rtp_capabilities(),
        events: VecDeque::new(),
        log: log.clone(),
        inject: inject.clone(),
    };
    let mut h = Harness::with(config(), Box::new(engine));
    let room = h.room();
    let caps = serde_json::to_value(router_rtp_capabilities()).unwrap();
    // B: receive transport, then join with capabilities.
    let (b, tb) = h.peer(room, Role::PUBLISHER);
    let cb = h.connect(room, b, &tb);
    let t = h.request(cb, "createWebRtcTransport", json!({"consuming": true}));
    assert!(t[0].is_null(), "{t:?}");
    assert!(ok(&h.request(
        cb,
        "join",
        json!({"nickname": "B", "rtpCapabilities": caps})
    )));
    // A produces video.
    let (_, ca) = h.joined(room, Role::PUBLISHER, "A");
    h.take(cb);
    let rtp = json!({
        "mid": "0",
        "codecs": [{"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "parameters": {}, "rtcpFeedback": []}],
        "headerExtensions": [],
        "encodings": [{"ssrc": 1111}],
        "rtcp": {"cname": "x", "reducedSize": true}
    });
    let p = h.request(ca, "produce", json!({"transportId": TransportId::random(), "kind": "video", "rtpParameters": rtp, "appData": {"source": "webcam"}}));
    assert!(p[0].is_null(), "{p:?}");
    // B is asked to consume it, created paused.
    let frames = h.take(cb);
    let req = frames
        .iter()
        .find(|f| f.contains("newConsumer"))
        .expect("newConsumer sent");
    assert!(req.starts_with("420[\"request\""), "{req}");
    let v: Value = serde_json::from_str(&req[3..]).unwrap();
    assert_eq!(v[1]["data"]["appData"], json!({"source": "webcam"}));
    assert_eq!(log.lock().unwrap()[0], "consume paused=true");
    // The ack resumes it.
    h.send(cb, "430[]");
    assert!(
        log.lock()
            .unwrap()
            .contains(&"consumer paused=false".to_owned())
    );
    // The engine's score and layer changes reach B as the contract's notifications.
    let consumer: ConsumerId = serde_json::from_value(v[1]["data"]["id"].clone()).unwrap();
    inject.lock().unwrap().extend([
        EngineEvent::ConsumerScoreChanged {
            peer: b,
            consumer,
            score: kolabmeet_engine::media_engine::ConsumerScore {
                score: 7,
                producer_score: 9,
                producer_scores: vec![9, 10],
            },
        },
        EngineEvent::ConsumerLayersChanged {
            peer: b,
            consumer,
            layers: Some(kolabmeet_engine::media_engine::ConsumerLayers {
                spatial_layer: 1,
                temporal_layer: 2,
            }),
        },
    ]);
    h.cp.pump_engine(h.now);
    h.drain();
    let notes = h.notifications(cb);
    assert!(
        notes.contains(&(
            "consumerScoreChanged".to_owned(),
            json!({"consumerId": consumer, "score": {"score": 7, "producerScore": 9, "producerScores": [9, 10]}})
        )),
        "{notes:?}"
    );
    assert!(
        notes.contains(&(
            "consumerLayersChanged".to_owned(),
            json!({"consumerId": consumer, "layers": {"spatialLayer": 1, "temporalLayer": 2}})
        )),
        "{notes:?}"
    );
    // A second producer whose newConsumer is never acked: tried 3 times, then closed.
    let p = h.request(ca, "produce", json!({"transportId": TransportId::random(), "kind": "video", "rtpParameters": rtp, "appData": {"source": "screen"}}));
    assert!(p[0].is_null());
    let mut tries = 0;
    for _ in 0..4 {
        tries += h
            .take(cb)
            .iter()
            .filter(|f| f.contains("newConsumer"))
            .count();
        h.advance(Duration::from_secs(20));
        h.send(cb, "3");
        h.send(ca, "3");
    }
    assert_eq!(tries, 3);
    assert!(log.lock().unwrap().contains(&"close consumer".to_owned()));
}

#[test]
fn timers_stay_bounded_under_socket_churn() {
    // Timers are cancelled lazily; sockets that open and close faster than their
    // heartbeat and grace timers come due must not pile entries up without bound.
    let mut h = Harness::new();
    let room = h.room();
    let (p, t) = h.peer(room, Role::PUBLISHER);
    let mut most = 0;
    for _ in 0..5000 {
        h.now.mono += Duration::from_millis(1);
        let c = h.connect(room, p, &t);
        h.cp.socket_closed(c, h.now);
        h.drain();
        most = most.max(h.cp.timers.len());
    }
    let live = h.cp.sockets.len() + h.cp.peer_rooms.len() + h.cp.rooms.len();
    assert!(
        most <= 2 * live + 1024 + 8,
        "{most} timers for {live} live sockets, peers and rooms"
    );
    // Still working: the peer comes back and joins.
    let c = h.connect(room, p, &t);
    assert!(ok(&h.request(c, "join", json!({"nickname": "back"}))));
}
