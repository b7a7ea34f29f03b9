//! One signaling socket: the Engine.IO session (handshake, heartbeats) and the Socket.IO
//! default namespace on top of it (connect, events, acknowledgements in both
//! directions), as a sans-IO state machine.
//!
//! Text frames go in with [`Session::on_frame`]; frames to send are appended to a
//! caller-owned `Vec<String>`; time is a parameter. Contract section 4: heartbeats every
//! 25 s with a 20 s timeout; server-to-client requests wait 20 s for their ack and are
//! tried 3 times.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engineio::{EioPacket, EioVersion, OpenPayload};
use crate::rate_limit::TokenBucket;
use crate::socketio::{self, SioPacket};

/// Largest Engine.IO packet accepted (socket.io's default `maxHttpBufferSize`).
pub const MAX_PAYLOAD: u64 = 1_000_000;
/// Server-to-client requests one socket may have waiting for their ack.
pub const MAX_PENDING_SERVER_REQUESTS: usize = 256;

/// Timing and limits of sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Heartbeat interval (socket.io default 25 s).
    pub ping_interval: Duration,
    /// Heartbeat timeout (socket.io default 20 s).
    pub ping_timeout: Duration,
    /// How long a server-to-client request waits for its ack (20 s).
    pub request_timeout: Duration,
    /// How many times it is sent (3).
    pub request_tries: u32,
    /// Requests a socket may burst.
    pub rate_burst: u32,
    /// Requests per second a socket may sustain.
    pub rate_per_second: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            request_timeout: Duration::from_millis(20_000),
            request_tries: 3,
            rate_burst: crate::rate_limit::DEFAULT_BURST,
            rate_per_second: crate::rate_limit::DEFAULT_PER_SECOND,
        }
    }
}

/// Why a session ended (socket.io's disconnect reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client left the namespace on purpose (`socket.disconnect()`):
    /// "client namespace disconnect". The peer closes at once.
    ClientDisconnect,
    /// The transport closed ("transport close"), including an Engine.IO close packet.
    TransportClose,
    /// No heartbeat answer in time ("ping timeout").
    PingTimeout,
    /// The client sent something that is not Engine.IO/Socket.IO ("parse error").
    ParseError,
    /// The server closed it (kick, replacement by a newer socket, room closed).
    ServerClose,
}

/// Errors that end a session: the caller closes the socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not an Engine.IO packet.
    #[error(transparent)]
    EngineIo(#[from] crate::engineio::EioError),
    /// Not a Socket.IO packet.
    #[error(transparent)]
    SocketIo(#[from] socketio::SioError),
    /// Valid envelope, invalid JSON or shape.
    #[error("invalid socket.io event data")]
    BadEventData,
    /// Too large.
    #[error("packet larger than maxPayload")]
    TooLarge,
}

/// What a frame meant to the room protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Nothing for the room (heartbeat, noop, ignored namespace).
    Nothing,
    /// The client connected to the default namespace (v5: `40`, with optional auth).
    Connect,
    /// A `request` event: its ack id (if the client wants an answer) and argument.
    Request {
        /// The ack id.
        ack: Option<u64>,
        /// The `{method, data}` argument.
        payload: Value,
    },
    /// An event other than `request` (ignored by the room, logged).
    OtherEvent(String),
    /// The answer to a server-to-client request.
    Ack {
        /// What the server request was for (chosen by the caller of `send_request`).
        token: u64,
        /// The ack arguments.
        args: Vec<Value>,
    },
    /// The client left on purpose.
    Disconnect,
    /// The client closed the Engine.IO session.
    Close,
}

/// Something that happened on a timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOutcome {
    /// The heartbeat was not answered: close the socket.
    PingTimeout,
    /// A server-to-client request got no ack after all tries.
    RequestFailed {
        /// The token given to `send_request`.
        token: u64,
    },
}

#[derive(Debug, Clone)]
struct PendingRequest {
    token: u64,
    frame_body: String,
    tries_left: u32,
    deadline: Instant,
}

/// One socket's Engine.IO + Socket.IO state.
#[derive(Debug)]
pub struct Session {
    version: EioVersion,
    sid: String,
    connected: bool,
    /// v4: when to send the next ping; v3: unused.
    next_ping: Instant,
    /// v4: when the outstanding ping expires; v3: when the client's ping is overdue.
    deadline: Option<Instant>,
    next_ack_id: u64,
    pending: HashMap<u64, PendingRequest>,
    bucket: TokenBucket,
    config: SessionConfig,
}

fn push_message(out: &mut Vec<String>, body: impl FnOnce(&mut String)) {
    let mut frame = String::with_capacity(64);
    frame.push('4');
    body(&mut frame);
    out.push(frame);
}

impl Session {
    /// A new session: appends the Engine.IO open packet (and for v3 the implicit
    /// Socket.IO connect of the default namespace) to `out`.
    pub fn open(
        version: EioVersion,
        sid: String,
        config: SessionConfig,
        now: Instant,
        out: &mut Vec<String>,
    ) -> Self {
        out.push(
            OpenPayload {
                sid: &sid,
                ping_interval_ms: config.ping_interval.as_millis() as u64,
                ping_timeout_ms: config.ping_timeout.as_millis() as u64,
                max_payload: MAX_PAYLOAD,
            }
            .encode(version),
        );
        let deadline = match version {
            EioVersion::V4 => None,
            EioVersion::V3 => Some(now + config.ping_interval + config.ping_timeout),
        };
        Self {
            version,
            sid,
            connected: false,
            next_ping: now + config.ping_interval,
            deadline,
            next_ack_id: 0,
            pending: HashMap::new(),
            bucket: TokenBucket::new(config.rate_burst, config.rate_per_second, now),
            config,
        }
    }

    /// The Engine.IO version.
    pub fn version(&self) -> EioVersion {
        self.version
    }

    /// The Engine.IO session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Whether the default namespace is connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Handles one text frame from the client.
    pub fn on_frame(
        &mut self,
        frame: &str,
        now: Instant,
        out: &mut Vec<String>,
    ) -> Result<Incoming, SessionError> {
        if frame.len() as u64 > MAX_PAYLOAD {
            return Err(SessionError::TooLarge);
        }
        match EioPacket::decode(frame)? {
            EioPacket::Ping(data) => {
                // v3 heartbeat (client pings); v4 clients never ping except "probe".
                let mut pong = String::with_capacity(1 + data.len());
                EioPacket::Pong(data).encode_into(&mut pong);
                out.push(pong);
                if self.version == EioVersion::V3 {
                    self.deadline =
                        Some(now + self.config.ping_interval + self.config.ping_timeout);
                }
                Ok(Incoming::Nothing)
            }
            EioPacket::Pong(_) => {
                if self.version == EioVersion::V4 {
                    self.deadline = None;
                }
                Ok(Incoming::Nothing)
            }
            EioPacket::Close => Ok(Incoming::Close),
            EioPacket::Open(_) | EioPacket::Upgrade | EioPacket::Noop => Ok(Incoming::Nothing),
            EioPacket::Message(payload) => self.on_socketio(payload, now),
        }
    }

    fn on_socketio(&mut self, payload: &str, _now: Instant) -> Result<Incoming, SessionError> {
        let packet = SioPacket::decode(payload)?;
        match packet {
            SioPacket::Connect { nsp, .. } => {
                if nsp != "/" {
                    return Ok(Incoming::Nothing);
                }
                if self.version == EioVersion::V3 || self.connected {
                    // v4 protocol connects the default namespace implicitly.
                    return Ok(Incoming::Nothing);
                }
                Ok(Incoming::Connect)
            }
            SioPacket::Disconnect { nsp } => {
                if nsp == "/" {
                    Ok(Incoming::Disconnect)
                } else {
                    Ok(Incoming::Nothing)
                }
            }
            SioPacket::Event { nsp, id, data } => {
                if nsp != "/" || !self.connected {
                    return Ok(Incoming::Nothing);
                }
                let mut args: Vec<Value> =
                    serde_json::from_str(data).map_err(|_| SessionError::BadEventData)?;
                if args.is_empty() {
                    return Err(SessionError::BadEventData);
                }
                let name = match args.remove(0) {
                    Value::String(s) => s,
                    _ => return Err(SessionError::BadEventData),
                };
                if name == "request" {
                    let payload = if args.is_empty() {
                        Value::Null
                    } else {
                        args.swap_remove(0)
                    };
                    Ok(Incoming::Request { ack: id, payload })
                } else {
                    let shown: String = name.chars().take(64).collect();
                    Ok(Incoming::OtherEvent(shown))
                }
            }
            SioPacket::Ack { nsp, id, data } => {
                if nsp != "/" {
                    return Ok(Incoming::Nothing);
                }
                let args: Vec<Value> =
                    serde_json::from_str(data).map_err(|_| SessionError::BadEventData)?;
                match self.pending.remove(&id) {
                    Some(p) => Ok(Incoming::Ack {
                        token: p.token,
                        args,
                    }),
                    None => Ok(Incoming::Nothing),
                }
            }
            SioPacket::ConnectError { .. } => Ok(Incoming::Nothing),
        }
    }

    /// Takes one request token from the socket's bucket; false when it floods.
    pub fn allow_request(&mut self, now: Instant) -> bool {
        self.bucket.try_take(now)
    }

    /// Accepts the Socket.IO connection (v5: `40{"sid":..}`; v3: already implicit).
    pub fn accept_connect(&mut self, out: &mut Vec<String>) {
        if self.version == EioVersion::V4 {
            let data = serde_json::json!({ "sid": self.sid }).to_string();
            push_message(out, |f| socketio::write_connect(f, "/", Some(&data)));
        } else {
            push_message(out, |f| socketio::write_connect(f, "/", None));
        }
        self.connected = true;
    }

    /// Refuses the Socket.IO connection with a reason (client `connect_error`).
    pub fn refuse_connect(&mut self, message: &str, out: &mut Vec<String>) {
        let data = match self.version {
            EioVersion::V4 => serde_json::json!({ "message": message }).to_string(),
            EioVersion::V3 => Value::String(message.to_owned()).to_string(),
        };
        push_message(out, |f| socketio::write_connect_error(f, "/", &data));
        self.connected = false;
    }

    /// Tells the client the server disconnects it (`41`), then an Engine.IO close.
    pub fn disconnect(&mut self, out: &mut Vec<String>) {
        if self.connected {
            push_message(out, |f| socketio::write_disconnect(f, "/"));
        }
        self.connected = false;
        out.push(EioPacket::Close.encode());
    }

    /// Appends a notification event `["notification", {method, data}]`.
    pub fn notify(&self, method: &str, data: &Value, out: &mut Vec<String>) {
        out.push(notification_frame(method, data));
    }

    /// Appends a success ack: `[null, response]`, or `[]` without a response.
    pub fn ack_ok(&self, id: u64, response: Option<&Value>, out: &mut Vec<String>) {
        let args = match response {
            Some(v) => format!("[null,{v}]"),
            None => "[]".to_owned(),
        };
        push_message(out, |f| socketio::write_ack(f, "/", id, &args));
    }

    /// Appends a failure ack: `[code, message]`.
    pub fn ack_err(&self, id: u64, code: u16, message: &str, out: &mut Vec<String>) {
        let args = format!("[{code},{}]", Value::String(message.to_owned()));
        push_message(out, |f| socketio::write_ack(f, "/", id, &args));
    }

    /// Sends a server-to-client request (`["request", {method, data}]` with an ack id).
    /// `token` comes back in [`Incoming::Ack`] or [`TimerOutcome::RequestFailed`].
    /// Returns false (nothing sent) when too many requests are already waiting.
    pub fn send_request(
        &mut self,
        method: &str,
        data: &impl serde::Serialize,
        token: u64,
        now: Instant,
        out: &mut Vec<String>,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING_SERVER_REQUESTS {
            return false;
        }
        let body = serde_json::json!(["request", { "method": method, "data": data }]).to_string();
        let id = self.next_ack_id;
        self.next_ack_id += 1;
        push_message(out, |f| socketio::write_event(f, "/", Some(id), &body));
        self.pending.insert(
            id,
            PendingRequest {
                token,
                frame_body: body,
                tries_left: self.config.request_tries.saturating_sub(1),
                deadline: now + self.config.request_timeout,
            },
        );
        true
    }

    /// When [`Session::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = match self.version {
            EioVersion::V4 => self.deadline.unwrap_or(self.next_ping),
            EioVersion::V3 => self.deadline.unwrap_or(self.next_ping),
        };
        for p in self.pending.values() {
            t = t.min(p.deadline);
        }
        t
    }

    /// Advances timers: sends heartbeats, retries requests, reports what expired.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<String>) -> Vec<TimerOutcome> {
        let mut outcomes = Vec::new();
        match self.version {
            EioVersion::V4 => {
                if let Some(d) = self.deadline {
                    if now >= d {
                        outcomes.push(TimerOutcome::PingTimeout);
                        return outcomes;
                    }
                } else if now >= self.next_ping {
                    out.push(EioPacket::Ping("").encode());
                    self.deadline = Some(now + self.config.ping_timeout);
                    self.next_ping = now + self.config.ping_interval;
                }
            }
            EioVersion::V3 => {
                if self.deadline.is_some_and(|d| now >= d) {
                    outcomes.push(TimerOutcome::PingTimeout);
                    return outcomes;
                }
            }
        }
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let Some(mut p) = self.pending.remove(&id) else {
                continue;
            };
            if p.tries_left == 0 {
                outcomes.push(TimerOutcome::RequestFailed { token: p.token });
                continue;
            }
            p.tries_left -= 1;
            p.deadline = now + self.config.request_timeout;
            let new_id = self.next_ack_id;
            self.next_ack_id += 1;
            let body = &p.frame_body;
            push_message(out, |f| socketio::write_event(f, "/", Some(new_id), body));
            self.pending.insert(new_id, p);
        }
        outcomes
    }
}

/// The frame of a notification, built once and sent to many sockets.
pub fn notification_frame(method: &str, data: &Value) -> String {
    let mut frame = String::with_capacity(64);
    frame.push_str("42[\"notification\",{\"method\":");
    let _ = write!(frame, "{}", Value::String(method.to_owned()));
    let _ = write!(frame, ",\"data\":{data}}}]");
    frame
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cfg() -> SessionConfig {
        SessionConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            request_tries: 3,
            rate_burst: 5,
            rate_per_second: 1,
        }
    }

    fn open(version: EioVersion, now: Instant) -> (Session, Vec<String>) {
        let mut out = Vec::new();
        let s = Session::open(version, "sid1".into(), cfg(), now, &mut out);
        (s, out)
    }

    #[test]
    fn v4_handshake_and_connect() {
        let t0 = Instant::now();
        let (mut s, out) = open(EioVersion::V4, t0);
        assert!(out[0].starts_with("0{\"sid\":\"sid1\""));
        let mut out = Vec::new();
        assert_eq!(s.on_frame("40", t0, &mut out), Ok(Incoming::Connect));
        s.accept_connect(&mut out);
        assert_eq!(out, vec!["40{\"sid\":\"sid1\"}".to_owned()]);
        assert!(s.is_connected());
    }

    #[test]
    fn v3_connects_implicitly_and_answers_pings() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V3, t0);
        let mut out = Vec::new();
        s.accept_connect(&mut out);
        assert_eq!(out, vec!["40".to_owned()]);
        out.clear();
        assert_eq!(s.on_frame("2", t0, &mut out), Ok(Incoming::Nothing));
        assert_eq!(out, vec!["3".to_owned()]);
        // No ping for interval + timeout: dead.
        let late = t0 + Duration::from_secs(46);
        assert_eq!(
            s.handle_timeout(late, &mut out),
            vec![TimerOutcome::PingTimeout]
        );
    }

    #[test]
    fn v4_heartbeat_and_timeout() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        let mut out = Vec::new();
        assert_eq!(s.poll_timeout(), t0 + Duration::from_secs(25));
        let t1 = t0 + Duration::from_secs(25);
        assert!(s.handle_timeout(t1, &mut out).is_empty());
        assert_eq!(out, vec!["2".to_owned()]);
        // Answered: next ping 25 s later.
        s.on_frame("3", t1 + Duration::from_secs(1), &mut out)
            .unwrap();
        assert_eq!(s.poll_timeout(), t1 + Duration::from_secs(25));
        // Unanswered: timeout after 20 s.
        let t2 = t1 + Duration::from_secs(25);
        out.clear();
        s.handle_timeout(t2, &mut out);
        assert_eq!(out, vec!["2".to_owned()]);
        assert_eq!(s.poll_timeout(), t2 + Duration::from_secs(20));
        assert_eq!(
            s.handle_timeout(t2 + Duration::from_secs(20), &mut out),
            vec![TimerOutcome::PingTimeout]
        );
    }

    #[test]
    fn requests_and_acks() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        let mut out = Vec::new();
        s.on_frame("40", t0, &mut out).unwrap();
        s.accept_connect(&mut out);
        out.clear();
        let inc = s
            .on_frame("425[\"request\",{\"method\":\"ping\"}]", t0, &mut out)
            .unwrap();
        assert_eq!(
            inc,
            Incoming::Request {
                ack: Some(5),
                payload: json!({"method": "ping"})
            }
        );
        s.ack_ok(5, None, &mut out);
        s.ack_ok(6, Some(&json!({"a": 1})), &mut out);
        s.ack_err(7, 400, "bad \"x\"", &mut out);
        assert_eq!(
            out,
            vec!["435[]", "436[null,{\"a\":1}]", "437[400,\"bad \\\"x\\\"\"]"]
        );
    }

    #[test]
    fn events_before_connect_are_ignored() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        let mut out = Vec::new();
        assert_eq!(
            s.on_frame("42[\"request\",{}]", t0, &mut out),
            Ok(Incoming::Nothing)
        );
    }

    #[test]
    fn hostile_frames_are_errors() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        let mut out = Vec::new();
        s.on_frame("40", t0, &mut out).unwrap();
        s.accept_connect(&mut out);
        assert!(s.on_frame("hello", t0, &mut out).is_err());
        assert!(s.on_frame("", t0, &mut out).is_err());
        assert!(s.on_frame("42not json", t0, &mut out).is_err());
        assert!(s.on_frame("42[]", t0, &mut out).is_err());
        assert!(s.on_frame("42[5]", t0, &mut out).is_err());
        assert!(s.on_frame("451-[\"x\"]", t0, &mut out).is_err());
        assert!(s.on_frame("43x[]", t0, &mut out).is_err());
        // Acks for unknown ids are ignored, not errors.
        assert_eq!(
            s.on_frame("4399[null]", t0, &mut out),
            Ok(Incoming::Nothing)
        );
    }

    #[test]
    fn server_requests_retry_then_fail() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        let mut out = Vec::new();
        s.on_frame("40", t0, &mut out).unwrap();
        s.accept_connect(&mut out);
        out.clear();
        assert!(s.send_request("newConsumer", &json!({"id": "c"}), 77, t0, &mut out));
        assert_eq!(
            out,
            vec!["420[\"request\",{\"data\":{\"id\":\"c\"},\"method\":\"newConsumer\"}]"]
        );
        // Keep the heartbeat alive so only the request times out.
        let mut now = t0;
        let mut sends = 1;
        let mut failed = false;
        for _ in 0..8 {
            now += Duration::from_secs(20);
            out.clear();
            for o in s.handle_timeout(now, &mut out) {
                assert_eq!(o, TimerOutcome::RequestFailed { token: 77 });
                failed = true;
            }
            sends += out.iter().filter(|f| f.contains("newConsumer")).count();
            s.on_frame("3", now, &mut out).unwrap();
            if failed {
                break;
            }
        }
        assert!(failed);
        assert_eq!(sends, 3, "sent three times in all");
    }

    #[test]
    fn ack_of_server_request() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        let mut out = Vec::new();
        s.on_frame("40", t0, &mut out).unwrap();
        s.accept_connect(&mut out);
        s.send_request("newConsumer", &json!({}), 9, t0, &mut out);
        assert_eq!(
            s.on_frame("430[]", t0, &mut out),
            Ok(Incoming::Ack {
                token: 9,
                args: vec![]
            })
        );
        // A second ack for the same id is ignored.
        assert_eq!(s.on_frame("430[]", t0, &mut out), Ok(Incoming::Nothing));
    }

    #[test]
    fn rate_limit() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        for _ in 0..5 {
            assert!(s.allow_request(t0));
        }
        assert!(!s.allow_request(t0));
        assert!(s.allow_request(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn refuse_connect_per_version() {
        let t0 = Instant::now();
        let (mut s, _) = open(EioVersion::V4, t0);
        let mut out = Vec::new();
        s.refuse_connect("unknown room", &mut out);
        assert_eq!(out, vec!["44{\"message\":\"unknown room\"}"]);
        let (mut s, _) = open(EioVersion::V3, t0);
        out.clear();
        s.refuse_connect("unknown room", &mut out);
        assert_eq!(out, vec!["44\"unknown room\""]);
    }

    #[test]
    fn notification_frame_shape() {
        let f = notification_frame("roomBack", &json!({}));
        assert_eq!(
            f,
            "42[\"notification\",{\"method\":\"roomBack\",\"data\":{}}]"
        );
    }
}
