//! The listener's event loop: accepts TCP and console connections, dispatches readiness
//! to them, runs their deadlines and the service's timers, and applies the service's
//! outputs. Reads the clock once per wake-up and hands it to everything.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook_mio::v1_0::Signals;
use tungstenite::protocol::frame::coding::CloseCode;

use super::connection::{Conn, ConnLimits, ConnStatus};
use super::console_conn::ConsoleConn;
use super::http_parse::HeadLimits;
use super::service::{ConnId, Output, Service, Stop};
use super::stream::{Stream, TlsStream};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const CONSOLE: Token = Token(2);
const SIGNALS: Token = Token(3);
const FIRST_CONN: usize = 4;
/// How long a graceful stop ([`Stop::Graceful`]) waits for the WebSockets still open or
/// closing to go, so that their last frames (Socket.IO disconnect, close frame) get out.
pub const LINGER: Duration = Duration::from_secs(2);
/// Console clients at most.
const MAX_CONSOLE_CLIENTS: usize = 16;

/// Settings of the listener.
#[derive(Clone)]
pub struct FrontConfig {
    /// TCP address.
    pub listen: SocketAddr,
    /// TLS, if configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Console unix socket path.
    pub console_path: Option<PathBuf>,
    /// Largest request body (5 MB by contract).
    pub max_body: usize,
    /// Open connections at most.
    pub max_connections: usize,
    /// Keep-alive idle timeout.
    pub idle_http_timeout: Duration,
    /// Time to receive a request head.
    pub header_timeout: Duration,
    /// Largest WebSocket message.
    pub max_ws_message: usize,
    /// Bytes queued to one slow WebSocket before it is dropped.
    pub max_ws_pending_out: usize,
    /// Headers added to responses the listener makes itself.
    pub front_error_headers: Vec<(String, String)>,
}

/// Errors starting or running the listener.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// Binding the TCP listener failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Binding the console socket failed.
    #[error("cannot open the console socket {path}: {source}")]
    Console {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Installing the signal handlers failed.
    #[error("cannot watch signals: {0}")]
    Signals(io::Error),
    /// The poll failed.
    #[error("event loop: {0}")]
    Poll(#[from] io::Error),
}

/// Makes [`Front::run`] return.
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Asks the loop to stop.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// The listener. See the module documentation.
pub struct Front {
    poll: Poll,
    listener: TcpListener,
    console: Option<(UnixListener, PathBuf)>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    config: FrontConfig,
    local: SocketAddr,
    /// The signals handed to [`Service::signal`], once watched.
    signals: Option<Signals>,
}

impl Front {
    /// Binds the TCP listener and the console socket.
    pub fn bind(config: FrontConfig) -> Result<Front, FrontError> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen).map_err(|source| FrontError::Bind {
            addr: config.listen,
            source,
        })?;
        let local = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let console = match &config.console_path {
            None => None,
            Some(path) => {
                // A socket file left by an earlier run is removed; anything else is not.
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    use std::os::unix::fs::FileTypeExt;
                    if meta.file_type().is_socket() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                let mut l = UnixListener::bind(path).map_err(|source| FrontError::Console {
                    path: path.clone(),
                    source,
                })?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
                poll.registry()
                    .register(&mut l, CONSOLE, Interest::READABLE)?;
                Some((l, path.clone()))
            }
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Front {
            poll,
            listener,
            console,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            config,
            local,
            signals: None,
        })
    }

    /// Hands these signals (e.g. `SIGTERM`, `SIGINT`) to [`Service::signal`] from now on,
    /// instead of their default action. signal-hook's handler writes to a self-pipe that
    /// the loop polls, so the service sees them on the loop's thread like any event.
    pub fn watch_signals(&mut self, signals: &[i32]) -> Result<(), FrontError> {
        let mut watched = Signals::new(signals).map_err(FrontError::Signals)?;
        self.poll
            .registry()
            .register(&mut watched, SIGNALS, Interest::READABLE)?;
        self.signals = Some(watched);
        Ok(())
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Wakes the loop from another thread (the service's `wake` is called).
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// A handle that stops the loop.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Runs until shut down.
    pub fn run<S: Service>(mut self, svc: &mut S) -> Result<(), FrontError> {
        let limits = ConnLimits {
            max_body: self.config.max_body,
            head: HeadLimits::default(),
            header_timeout: self.config.header_timeout,
            idle_timeout: self.config.idle_http_timeout,
            max_ws_message: self.config.max_ws_message,
            max_ws_pending_out: self.config.max_ws_pending_out,
            error_headers: self.config.front_error_headers.clone(),
        };
        let mut state = LoopState {
            conns: HashMap::new(),
            consoles: HashMap::new(),
            deadlines: BinaryHeap::new(),
            next_token: FIRST_CONN,
            dirty: HashSet::new(),
            refused_logged: None,
        };
        let mut events = Events::with_capacity(1024);
        // Set once the service asks for a graceful stop: the loop returns then, or
        // earlier once no WebSocket is left.
        let mut linger_until: Option<Instant> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            match svc.stop() {
                None => {}
                Some(Stop::AtOnce) => break,
                Some(Stop::Graceful) => {
                    let until = *linger_until.get_or_insert(now + LINGER);
                    let open = state
                        .conns
                        .values()
                        .filter(|c| c.is_ws_or_closing())
                        .count();
                    if open == 0 || now >= until {
                        if open > 0 {
                            tracing::info!(open, "stopping with WebSockets still closing");
                        }
                        break;
                    }
                }
            }
            let mut next = svc.poll_timeout();
            if let Some(Reverse((t, _))) = state.deadlines.peek() {
                next = Some(next.map_or(*t, |n| n.min(*t)));
            }
            if let Some(t) = linger_until {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
            let timeout = next.map(|t| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(&mut state, &limits, now),
                    CONSOLE => self.accept_console(&mut state),
                    WAKER => svc.wake(now),
                    SIGNALS => {
                        if let Some(signals) = &mut self.signals {
                            for signal in signals.pending() {
                                svc.signal(signal, now);
                            }
                        }
                    }
                    token => {
                        if let Some(conn) = state.conns.get_mut(&token.0) {
                            let status = conn.on_ready(svc, &limits, now);
                            if let Some(d) = conn.deadline {
                                state.deadlines.push(Reverse((d, token.0)));
                            }
                            state.finish(&self.poll, token.0, status, svc, now);
                        } else if let Some(c) = state.consoles.get_mut(&token.0)
                            && !c.on_ready(svc, now)
                        {
                            let mut c = state.consoles.remove(&token.0).expect("present");
                            let _ = self.poll.registry().deregister(&mut c.stream);
                        }
                    }
                }
                state.apply_outputs(&self.poll, svc, now);
            }
            // Timers.
            if svc.poll_timeout().is_some_and(|t| t <= now) {
                svc.handle_timeout(now);
            }
            while let Some(Reverse((t, token))) = state.deadlines.peek().copied() {
                if t > now {
                    break;
                }
                state.deadlines.pop();
                if let Some(conn) = state.conns.get_mut(&token)
                    && conn.deadline == Some(t)
                {
                    let status = conn.on_deadline(&limits);
                    state.finish(&self.poll, token, status, svc, now);
                }
            }
            state.maybe_compact_deadlines();
            state.apply_outputs(&self.poll, svc, now);
            svc.loop_round(now.elapsed(), state.conns.len());
        }
        if let Some((_, path)) = &self.console {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    fn accept(&mut self, state: &mut LoopState, limits: &ConnLimits, now: Instant) {
        loop {
            let (mut tcp, remote) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and try again on the next readiness.
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            };
            if state.conns.len() >= self.config.max_connections {
                if state
                    .refused_logged
                    .is_none_or(|t: Instant| now.duration_since(t) > Duration::from_secs(10))
                {
                    tracing::warn!(
                        max = self.config.max_connections,
                        "too many connections, refusing new ones"
                    );
                    state.refused_logged = Some(now);
                }
                drop(tcp);
                continue;
            }
            let _ = tcp.set_nodelay(true);
            let token = state.next_token;
            state.next_token += 1;
            if let Err(e) = self.poll.registry().register(
                &mut tcp,
                Token(token),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!(error = %e, "cannot register a connection");
                continue;
            }
            let stream = match &self.config.tls {
                None => Stream::Plain(tcp),
                Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                    Ok(tls) => Stream::Tls(Box::new(TlsStream::new(tcp, tls))),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot start TLS");
                        continue;
                    }
                },
            };
            let conn = Conn::new(ConnId(token as u64), stream, remote, limits, now);
            if let Some(d) = conn.deadline {
                state.deadlines.push(Reverse((d, token)));
            }
            state.conns.insert(token, conn);
        }
    }

    fn accept_console(&mut self, state: &mut LoopState) {
        let Some((listener, _)) = &self.console else {
            return;
        };
        loop {
            let (mut stream, _) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "console accept failed");
                    return;
                }
            };
            if state.consoles.len() >= MAX_CONSOLE_CLIENTS {
                continue;
            }
            let token = state.next_token;
            state.next_token += 1;
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(token),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_ok()
            {
                state.consoles.insert(token, ConsoleConn::new(stream));
            }
        }
    }
}

struct LoopState {
    conns: HashMap<usize, Conn>,
    consoles: HashMap<usize, ConsoleConn>,
    deadlines: BinaryHeap<Reverse<(Instant, usize)>>,
    next_token: usize,
    /// WebSockets written to since their last flush.
    dirty: HashSet<usize>,
    refused_logged: Option<Instant>,
}

impl LoopState {
    /// Drops deadline entries that no longer match their connection once they outnumber
    /// the connections. Every readiness of an HTTP connection pushes its new deadline and
    /// old ones stay until they come due (up to the 60 s idle timeout), so under steady
    /// connection churn the heap would hold the churn of the last minute and keep that
    /// capacity; this bounds it by the open connections.
    fn maybe_compact_deadlines(&mut self) {
        if self.deadlines.len() <= 2 * self.conns.len() + 1024 {
            return;
        }
        let conns = &self.conns;
        self.deadlines
            .retain(|Reverse((t, token))| conns.get(token).is_some_and(|c| c.deadline == Some(*t)));
        let floor = self.deadlines.len().saturating_mul(2).max(64);
        if self.deadlines.capacity() > floor.saturating_mul(2) {
            self.deadlines.shrink_to(floor);
        }
    }

    /// Removes a closed connection and reports a closed WebSocket to the service.
    fn finish<S: Service>(
        &mut self,
        poll: &Poll,
        token: usize,
        status: ConnStatus,
        svc: &mut S,
        now: Instant,
    ) {
        let (was_ws, clean) = match status {
            ConnStatus::Open => return,
            ConnStatus::WsGone { clean } => {
                // The socket drains until its deadline; the service is done with it.
                self.dirty.remove(&token);
                if let Some(d) = self.conns.get(&token).and_then(|c| c.deadline) {
                    self.deadlines.push(Reverse((d, token)));
                }
                svc.ws_closed(ConnId(token as u64), clean, now);
                return;
            }
            ConnStatus::Closed { was_ws, clean } => (was_ws, clean),
        };
        if let Some(mut conn) = self.conns.remove(&token)
            && let Some(s) = conn.stream_mut()
        {
            let _ = poll.registry().deregister(s.tcp_mut());
        }
        self.dirty.remove(&token);
        if was_ws {
            svc.ws_closed(ConnId(token as u64), clean, now);
        }
    }

    /// Applies every output of the service, then flushes the sockets written to.
    fn apply_outputs<S: Service>(&mut self, poll: &Poll, svc: &mut S, now: Instant) {
        loop {
            while let Some(out) = svc.poll_output() {
                match out {
                    Output::Text(ConnId(id), text) => {
                        let token = id as usize;
                        if let Some(conn) = self.conns.get_mut(&token)
                            && conn.is_ws()
                        {
                            let status = conn.ws_send(text, svc, now);
                            self.dirty.insert(token);
                            self.finish(poll, token, status, svc, now);
                        }
                    }
                    Output::Close(ConnId(id)) => {
                        let token = id as usize;
                        if let Some(conn) = self.conns.get_mut(&token) {
                            let status = if conn.is_ws() {
                                conn.ws_close_with(CloseCode::Normal, "", now)
                            } else {
                                ConnStatus::Open
                            };
                            self.finish(poll, token, status, svc, now);
                        }
                    }
                }
            }
            if self.dirty.is_empty() {
                return;
            }
            let dirty: Vec<usize> = self.dirty.drain().collect();
            for token in dirty {
                if let Some(conn) = self.conns.get_mut(&token) {
                    let status = conn.ws_flush(svc, now);
                    self.finish(poll, token, status, svc, now);
                }
            }
        }
    }
}
