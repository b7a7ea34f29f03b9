//! Room rules with injected time and no sockets: a control plane, an engine, and frames
//! collected per connection.

use std::time::{Duration, Instant};

use kolabmeet_media_types::unavailable::UnavailableEngine;
use kolabmeet_media_types::{MediaEngine, PeerId, RoomId};
use serde_json::{Value, json};

use super::*;
use crate::session::SessionConfig;

mod counters;
mod drain;
mod media;
mod moderation;
mod recovery;
mod rooms;
mod sockets;

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
