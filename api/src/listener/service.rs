//! What the listener's event loop calls: the server behind the front door.
//!
//! The loop owns sockets; the [`Service`] owns everything else. Every callback may queue
//! [`Output`]s, which the loop drains with [`Service::poll_output`] after each callback
//! and each wake-up.

use std::net::SocketAddr;
use std::time::Instant;

/// The id of one accepted WebSocket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A complete HTTP request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The raw request-target, query included.
    pub target: String,
    /// Header names and values as received.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// The peer's address.
    pub remote: SocketAddr,
}

impl HttpRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP response. The listener adds `Content-Length` and `Connection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body.into();
        self
    }
}

/// The answer to a WebSocket upgrade request.
#[derive(Debug)]
pub enum WsDecision {
    /// Complete the RFC 6455 handshake.
    Accept,
    /// Send this response instead.
    Reject(HttpResponse),
}

/// Something the service wants done to a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a text message.
    Text(ConnId, String),
    /// Close the WebSocket (close frame 1000), then report it with `ws_closed`.
    Close(ConnId),
}

/// How the event loop should stop, once the service says so ([`Service::stop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The service is done (a drain finished): the loop gives the WebSockets the
    /// service closed a moment to take their close frames (at most
    /// [`LINGER`](super::event_loop::LINGER)), then returns.
    Graceful,
    /// Return now (a second stop signal).
    AtOnce,
}

/// The server behind the listener. See the module documentation.
pub trait Service {
    /// A complete HTTP request that is not a WebSocket upgrade.
    fn http(&mut self, req: HttpRequest, now: Instant) -> HttpResponse;
    /// A WebSocket upgrade request (a GET with `Upgrade: websocket`).
    fn ws_open(&mut self, conn: ConnId, req: &HttpRequest, now: Instant) -> WsDecision;
    /// One complete text message. Binary messages close the socket (1003). Also called
    /// while the loop applies outputs, for the messages still unread on a socket whose
    /// write has just failed (they are delivered before its `ws_closed`).
    fn ws_text(&mut self, conn: ConnId, text: &str, now: Instant);
    /// Called exactly once for every accepted WebSocket when it is gone, whatever the
    /// cause. `clean` is true only when the peer sent a Close frame.
    fn ws_closed(&mut self, conn: ConnId, clean: bool, now: Instant);
    /// One console line; the answer is written back followed by the prompt. `None`
    /// closes that console connection.
    fn console_line(&mut self, line: &str, now: Instant) -> Option<String>;
    /// The next output, until `None`.
    fn poll_output(&mut self) -> Option<Output>;
    /// When `handle_timeout` should next be called.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Timers are due.
    fn handle_timeout(&mut self, now: Instant);
    /// Another thread woke the loop through its waker.
    fn wake(&mut self, now: Instant);
    /// A signal the loop watches ([`Front::watch_signals`](super::Front::watch_signals))
    /// arrived (`SIGTERM`, `SIGINT`, ...).
    fn signal(&mut self, _signal: i32, _now: Instant) {}
    /// Whether the loop should stop, asked before every wait: `None` to go on.
    fn stop(&self) -> Option<Stop> {
        None
    }
    /// One round of the loop is done: it worked for `busy` (not counting the wait in
    /// `poll`) and holds `connections` HTTP and WebSocket connections (`/metrics`).
    fn loop_round(&mut self, busy: std::time::Duration, connections: usize) {
        let _ = (busy, connections);
    }
}
