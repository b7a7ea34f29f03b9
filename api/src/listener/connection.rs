//! One TCP connection of the listener: HTTP/1.1 requests (keep-alive, pipelining,
//! `100-continue`, chunked bodies, limits) until it upgrades to a WebSocket, then
//! WebSocket messages through `tungstenite` over the same non-blocking stream.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use super::http_parse::{
    BodyKind, ChunkProgress, ChunkedDecoder, HeadLimits, RequestHead, parse_request_head,
    write_response,
};
use super::service::{ConnId, HttpRequest, HttpResponse, Service, WsDecision};
use super::stream::Stream;

/// Limits and timeouts that apply to every connection.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Largest request body.
    pub max_body: usize,
    /// Request head limits.
    pub head: HeadLimits,
    /// Time to receive a request head.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may stay idle.
    pub idle_timeout: Duration,
    /// Largest WebSocket message.
    pub max_ws_message: usize,
    /// Bytes queued to one WebSocket before it is dropped as a slow consumer.
    pub max_ws_pending_out: usize,
    /// Headers added to responses the listener makes itself.
    pub error_headers: Vec<(String, String)>,
}

/// What became of a connection after some work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnStatus {
    /// Still open.
    Open,
    /// The WebSocket is over for the service (report `ws_closed`), but the socket lingers
    /// a moment to drain what the peer still sends, so that the close frame arrives
    /// instead of a reset.
    WsGone {
        /// The peer sent a Close frame.
        clean: bool,
    },
    /// Closed; if it was a WebSocket, `ws_closed` must be reported with `clean`.
    Closed {
        /// It was an accepted WebSocket.
        was_ws: bool,
        /// The peer sent a Close frame.
        clean: bool,
    },
}

enum ReqState {
    Head,
    Body {
        head: RequestHead,
        body: Vec<u8>,
        remaining: u64,
        chunked: Option<ChunkedDecoder>,
    },
}

struct HttpPhase {
    stream: Stream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    state: ReqState,
    close_after_flush: bool,
}

enum Phase {
    Http(Box<HttpPhase>),
    Ws(Box<WebSocket<Stream>>),
    /// After a server-initiated close: discarding input until the peer closes.
    Draining(Box<WebSocket<Stream>>),
    /// An HTTP response was sent and our side is shut: discarding what the client still
    /// sends (an oversized body, say) so it can read the response instead of a reset.
    Lingering(Box<Stream>),
    Dead,
}

/// How long a closed WebSocket drains before its socket is dropped.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// One connection.
pub struct Conn {
    id: ConnId,
    remote: SocketAddr,
    phase: Phase,
    /// When the connection times out (HTTP phase only).
    pub deadline: Option<Instant>,
}

const READ_CHUNK: usize = 16 * 1024;

fn ws_config(limits: &ConnLimits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_ws_pending_out)
        .max_message_size(Some(limits.max_ws_message))
        .max_frame_size(Some(limits.max_ws_message))
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(
        id: ConnId,
        stream: Stream,
        remote: SocketAddr,
        limits: &ConnLimits,
        now: Instant,
    ) -> Self {
        Self {
            id,
            remote,
            phase: Phase::Http(Box::new(HttpPhase {
                stream,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                state: ReqState::Head,
                close_after_flush: false,
            })),
            deadline: Some(now + limits.header_timeout),
        }
    }

    /// The socket, for (de)registration.
    pub fn stream_mut(&mut self) -> Option<&mut Stream> {
        match &mut self.phase {
            Phase::Http(h) => Some(&mut h.stream),
            Phase::Ws(ws) | Phase::Draining(ws) => Some(ws.get_mut()),
            Phase::Lingering(s) => Some(s),
            Phase::Dead => None,
        }
    }

    /// Whether this is an accepted WebSocket.
    pub fn is_ws(&self) -> bool {
        matches!(self.phase, Phase::Ws(_))
    }

    /// Whether this is a WebSocket, open or closing (its close frame not yet through).
    pub fn is_ws_or_closing(&self) -> bool {
        matches!(self.phase, Phase::Ws(_) | Phase::Draining(_))
    }

    /// The socket is readable and/or writable: does all the work it can.
    pub fn on_ready<S: Service>(
        &mut self,
        svc: &mut S,
        limits: &ConnLimits,
        now: Instant,
    ) -> ConnStatus {
        match &mut self.phase {
            Phase::Http(_) => self.http_ready(svc, limits, now),
            Phase::Ws(_) => self.ws_ready(svc, limits, now),
            Phase::Draining(_) | Phase::Lingering(_) => {
                let stream = match &mut self.phase {
                    Phase::Draining(ws) => ws.get_mut(),
                    Phase::Lingering(s) => &mut **s,
                    _ => unreachable!("matched above"),
                };
                let mut buf = [0u8; READ_CHUNK];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ConnStatus::Open,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                self.phase = Phase::Dead;
                ConnStatus::Closed {
                    was_ws: false,
                    clean: false,
                }
            }
            Phase::Dead => ConnStatus::Closed {
                was_ws: false,
                clean: false,
            },
        }
    }

    /// The HTTP (or draining) deadline passed.
    pub fn on_deadline(&mut self, limits: &ConnLimits) -> ConnStatus {
        match &mut self.phase {
            Phase::Draining(ws) => {
                let _ = ws.get_mut().tcp_mut().shutdown(std::net::Shutdown::Both);
            }
            Phase::Lingering(s) => {
                let _ = s.tcp_mut().shutdown(std::net::Shutdown::Both);
            }
            _ => {}
        }
        if let Phase::Http(h) = &mut self.phase {
            if !h.inbuf.is_empty() || matches!(h.state, ReqState::Body { .. }) {
                let mut out = Vec::new();
                write_response(
                    &mut out,
                    408,
                    &limits.error_headers,
                    b"request timeout",
                    false,
                    false,
                );
                let _ = h.stream.write_all(&out);
            }
            h.stream.shutdown();
        }
        self.phase = Phase::Dead;
        ConnStatus::Closed {
            was_ws: false,
            clean: false,
        }
    }

    /// Shuts our side after the last response and drains the socket for a moment.
    fn linger(&mut self, now: Instant) -> ConnStatus {
        let Phase::Http(h) = std::mem::replace(&mut self.phase, Phase::Dead) else {
            return ConnStatus::Open;
        };
        let mut stream = h.stream;
        stream.shutdown_write();
        self.phase = Phase::Lingering(Box::new(stream));
        self.deadline = Some(now + DRAIN_TIME);
        ConnStatus::Open
    }

    fn close_http(&mut self) -> ConnStatus {
        if let Phase::Http(h) = &mut self.phase {
            h.stream.shutdown();
        }
        self.phase = Phase::Dead;
        ConnStatus::Closed {
            was_ws: false,
            clean: false,
        }
    }

    fn http_ready<S: Service>(
        &mut self,
        svc: &mut S,
        limits: &ConnLimits,
        now: Instant,
    ) -> ConnStatus {
        let Phase::Http(h) = &mut self.phase else {
            return ConnStatus::Open;
        };
        // Read everything available, within a bound.
        let cap = limits.max_body + limits.head.max_head_bytes + READ_CHUNK;
        let mut eof = false;
        let mut chunk = [0u8; READ_CHUNK];
        while !h.close_after_flush && h.inbuf.len() < cap {
            match h.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    if h.inbuf.is_empty() && matches!(h.state, ReqState::Head) {
                        self.deadline = Some(now + limits.header_timeout);
                    }
                    if matches!(h.state, ReqState::Body { .. }) {
                        self.deadline = Some(now + limits.idle_timeout);
                    }
                    h.inbuf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close_http(),
            }
        }
        // Handle every complete request (pipelining), unless the connection closes.
        loop {
            let Phase::Http(h) = &mut self.phase else {
                return ConnStatus::Open;
            };
            if h.close_after_flush {
                break;
            }
            match std::mem::replace(&mut h.state, ReqState::Head) {
                ReqState::Head => {
                    let parsed = match parse_request_head(&h.inbuf, limits.head) {
                        Ok(Some(p)) => p,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(remote = %self.remote, error = %e, "bad HTTP request");
                            error_response(h, limits, e.status(), &e.to_string());
                            break;
                        }
                    };
                    let (head, used) = parsed;
                    h.inbuf.drain(..used);
                    if head.websocket_key.is_some() && head.body == BodyKind::None {
                        return self.upgrade(svc, head, limits, now);
                    }
                    match head.body {
                        BodyKind::None => {
                            let req = request(&head, Vec::new(), self.remote);
                            respond(h, svc, req, &head, limits, now);
                            self.deadline = Some(now + limits.idle_timeout);
                        }
                        BodyKind::Length(n) if n > limits.max_body as u64 => {
                            error_response(h, limits, 413, "request body larger than 5 MB");
                        }
                        BodyKind::Length(n) => {
                            if head.expect_continue {
                                h.outbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                            }
                            h.state = ReqState::Body {
                                head,
                                body: Vec::with_capacity(n.min(64 * 1024) as usize),
                                remaining: n,
                                chunked: None,
                            };
                        }
                        BodyKind::Chunked => {
                            if head.expect_continue {
                                h.outbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                            }
                            h.state = ReqState::Body {
                                head,
                                body: Vec::new(),
                                remaining: 0,
                                chunked: Some(ChunkedDecoder::default()),
                            };
                        }
                    }
                }
                ReqState::Body {
                    head,
                    mut body,
                    mut remaining,
                    mut chunked,
                } => {
                    let done = match &mut chunked {
                        None => {
                            let take = (remaining as usize).min(h.inbuf.len());
                            body.extend_from_slice(&h.inbuf[..take]);
                            h.inbuf.drain(..take);
                            remaining -= take as u64;
                            remaining == 0
                        }
                        Some(dec) => match dec.decode(&h.inbuf, &mut body, limits.max_body) {
                            Ok(ChunkProgress::More { consumed }) => {
                                h.inbuf.drain(..consumed);
                                false
                            }
                            Ok(ChunkProgress::Done { consumed }) => {
                                h.inbuf.drain(..consumed);
                                true
                            }
                            Err(e) => {
                                let status = if e.status() == 431 { 413 } else { e.status() };
                                error_response(h, limits, status, &e.to_string());
                                break;
                            }
                        },
                    };
                    if !done {
                        h.state = ReqState::Body {
                            head,
                            body,
                            remaining,
                            chunked,
                        };
                        break;
                    }
                    let req = request(&head, body, self.remote);
                    respond(h, svc, req, &head, limits, now);
                    self.deadline = Some(now + limits.idle_timeout);
                }
            }
        }
        let Phase::Http(h) = &mut self.phase else {
            return ConnStatus::Open;
        };
        match flush_buf(&mut h.stream, &mut h.outbuf) {
            Ok(()) => {}
            Err(_) => return self.close_http(),
        }
        let Phase::Http(h) = &mut self.phase else {
            return ConnStatus::Open;
        };
        if eof {
            return self.close_http();
        }
        if h.close_after_flush && h.outbuf.is_empty() {
            return self.linger(now);
        }
        ConnStatus::Open
    }

    fn upgrade<S: Service>(
        &mut self,
        svc: &mut S,
        head: RequestHead,
        limits: &ConnLimits,
        now: Instant,
    ) -> ConnStatus {
        let req = request(&head, Vec::new(), self.remote);
        let decision = svc.ws_open(self.id, &req, now);
        let Phase::Http(h) = &mut self.phase else {
            return ConnStatus::Open;
        };
        match decision {
            WsDecision::Reject(resp) => {
                write_response(
                    &mut h.outbuf,
                    resp.status,
                    &resp.headers,
                    &resp.body,
                    false,
                    false,
                );
                h.close_after_flush = true;
                let _ = flush_buf(&mut h.stream, &mut h.outbuf);
                if h.outbuf.is_empty() {
                    return self.linger(now);
                }
                ConnStatus::Open
            }
            WsDecision::Accept => {
                let key = head.websocket_key.unwrap_or_default();
                let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                h.outbuf.extend_from_slice(response.as_bytes());
                let Phase::Http(phase) = std::mem::replace(&mut self.phase, Phase::Dead) else {
                    return ConnStatus::Open;
                };
                let HttpPhase {
                    mut stream,
                    inbuf,
                    mut outbuf,
                    ..
                } = *phase;
                // The 101 is small; if the socket cannot take it now, it rides in front
                // of the first frames through tungstenite's own buffer is not possible,
                // so write it synchronously with a short bounded wait.
                let started = Instant::now();
                while !outbuf.is_empty() {
                    match flush_buf(&mut stream, &mut outbuf) {
                        Ok(()) if outbuf.is_empty() => break,
                        Ok(()) if started.elapsed() < Duration::from_millis(100) => {
                            std::thread::yield_now();
                        }
                        _ => {
                            stream.shutdown();
                            return ConnStatus::Closed {
                                was_ws: true,
                                clean: false,
                            };
                        }
                    }
                }
                let ws = WebSocket::from_partially_read(
                    stream,
                    inbuf,
                    Role::Server,
                    Some(ws_config(limits)),
                );
                self.phase = Phase::Ws(Box::new(ws));
                self.deadline = None;
                // Frames that came with the upgrade request are handled now.
                self.ws_ready(svc, limits, now)
            }
        }
    }

    fn ws_ready<S: Service>(
        &mut self,
        svc: &mut S,
        _limits: &ConnLimits,
        now: Instant,
    ) -> ConnStatus {
        let Phase::Ws(ws) = &mut self.phase else {
            return ConnStatus::Open;
        };
        let mut clean = false;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => svc.ws_text(self.id, t.as_str(), now),
                Ok(Message::Binary(_)) => {
                    return self.ws_close_with(
                        CloseCode::Unsupported,
                        "binary messages are not supported",
                        now,
                    );
                }
                Ok(Message::Close(_)) => clean = true,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return self.ws_drop(clean);
                }
                Err(tungstenite::Error::Capacity(e)) => {
                    tracing::debug!(conn = self.id.0, error = %e, "websocket message too large");
                    return self.ws_close_with(CloseCode::Size, "message too large", now);
                }
                Err(tungstenite::Error::Protocol(e)) => {
                    tracing::debug!(conn = self.id.0, error = %e, "websocket protocol error");
                    return self.ws_close_with(CloseCode::Protocol, "protocol error", now);
                }
                Err(tungstenite::Error::Utf8(_)) => {
                    return self.ws_close_with(CloseCode::Invalid, "invalid UTF-8", now);
                }
                Err(e) => {
                    tracing::debug!(conn = self.id.0, error = %e, "websocket read failed");
                    return self.ws_drop(clean);
                }
            }
        }
        self.ws_flush(svc, now)
    }

    /// Queues a text message (flushed by [`Conn::ws_flush`]).
    pub fn ws_send<S: Service>(&mut self, text: String, svc: &mut S, now: Instant) -> ConnStatus {
        let Phase::Ws(ws) = &mut self.phase else {
            return ConnStatus::Open;
        };
        match ws.write(Message::text(text)) {
            Ok(()) => ConnStatus::Open,
            Err(tungstenite::Error::WriteBufferFull(_)) => {
                tracing::warn!(conn = self.id.0, remote = %self.remote, "signaling socket too slow, dropping it");
                self.ws_drop(false)
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                ConnStatus::Open
            }
            Err(_) => self.ws_write_failed(svc, now),
        }
    }

    /// Writes what is queued, as far as the socket takes it.
    pub fn ws_flush<S: Service>(&mut self, svc: &mut S, now: Instant) -> ConnStatus {
        let Phase::Ws(ws) = &mut self.phase else {
            return ConnStatus::Open;
        };
        match ws.flush() {
            Ok(()) => ConnStatus::Open,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                ConnStatus::Open
            }
            Err(_) => self.ws_write_failed(svc, now),
        }
    }

    /// A write failed (the peer reset or closed the connection): before dropping the
    /// socket, hands the service the messages the peer sent before it went away and that
    /// are still unread. A client that sends `41` (leave) and closes while it has unread
    /// input resets the connection; if a notification to it is written before its
    /// readiness is handled, the write fails first, and without this its leave would be
    /// lost and its peer kept for the reconnection grace instead of closed at once.
    fn ws_write_failed<S: Service>(&mut self, svc: &mut S, now: Instant) -> ConnStatus {
        let mut clean = false;
        if let Phase::Ws(ws) = &mut self.phase {
            // Bounded: the kernel's receive queue of a reset socket is finite and
            // tungstenite stops at the first error (the reset itself).
            loop {
                match ws.read() {
                    Ok(Message::Text(t)) => svc.ws_text(self.id, t.as_str(), now),
                    Ok(Message::Close(_)) => {
                        clean = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        self.ws_drop(clean)
    }

    /// The server closes the WebSocket: a close frame with `code`, our sending side shut,
    /// and the socket drained for a moment so the peer reads the frame (closing a socket
    /// with unread input would reset it instead).
    pub fn ws_close_with(&mut self, code: CloseCode, reason: &str, now: Instant) -> ConnStatus {
        let Phase::Ws(mut ws) = std::mem::replace(&mut self.phase, Phase::Dead) else {
            return ConnStatus::Open;
        };
        let _ = ws.close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        }));
        let _ = ws.flush();
        if let Stream::Tls(_) = ws.get_ref() {
            ws.get_mut().shutdown_write();
        } else {
            let _ = ws.get_mut().tcp_mut().shutdown(std::net::Shutdown::Write);
        }
        self.phase = Phase::Draining(ws);
        self.deadline = Some(now + DRAIN_TIME);
        ConnStatus::WsGone { clean: false }
    }

    fn ws_drop(&mut self, clean: bool) -> ConnStatus {
        if let Phase::Ws(ws) = &mut self.phase {
            ws.get_mut().shutdown();
        }
        self.phase = Phase::Dead;
        ConnStatus::Closed {
            was_ws: true,
            clean,
        }
    }
}

fn request(head: &RequestHead, body: Vec<u8>, remote: SocketAddr) -> HttpRequest {
    HttpRequest {
        method: head.method.clone(),
        target: head.target.clone(),
        headers: head.headers.clone(),
        body,
        remote,
    }
}

fn respond<S: Service>(
    h: &mut HttpPhase,
    svc: &mut S,
    req: HttpRequest,
    head: &RequestHead,
    _limits: &ConnLimits,
    now: Instant,
) {
    let head_only = head.method == "HEAD";
    let resp: HttpResponse = svc.http(req, now);
    write_response(
        &mut h.outbuf,
        resp.status,
        &resp.headers,
        &resp.body,
        head.keep_alive,
        head_only,
    );
    if !head.keep_alive {
        h.close_after_flush = true;
    }
}

fn error_response(h: &mut HttpPhase, limits: &ConnLimits, status: u16, reason: &str) {
    let mut headers = limits.error_headers.clone();
    headers.push(("Content-Type".into(), "text/plain; charset=utf-8".into()));
    write_response(
        &mut h.outbuf,
        status,
        &headers,
        reason.as_bytes(),
        false,
        false,
    );
    h.close_after_flush = true;
    h.inbuf.clear();
}

/// Writes `buf` until it is empty or the socket would block.
fn flush_buf(stream: &mut Stream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut written = 0;
    let result = loop {
        if written == buf.len() {
            break stream.flush().or_else(|e| {
                if e.kind() == io::ErrorKind::WouldBlock {
                    Ok(())
                } else {
                    Err(e)
                }
            });
        }
        match stream.write(&buf[written..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    buf.drain(..written);
    result
}
