//! The mio driver of one media worker thread: it owns the worker's UDP socket, its
//! passive ICE-TCP listener and connections (RFC 4571 framing), the waker, and the clock;
//! everything else happens in [`WorkerCore`]. Commands come in through a bounded
//! lock-free queue (and the waker); events go out through another, with a notification
//! that wakes the control loop.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use kolabmeet_net::tcp_framing::{FrameDecoder, frame_header};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::core::WorkerCore;
use super::event_outbox::EventOutbox;
use super::pipe_ends::PipeEnds;
use super::plain_sockets::PlainSockets;
use super::settings::WorkerSettings;
use super::udp_batch::UdpBatch;
use super::worker_command::WorkerCommand;
use crate::allocation::load_shed::LoadShed;
use crate::crypto::DtlsCertificate;
use crate::media_engine::EngineEvent;
use crate::transport::{Tuple, TupleProtocol};
use kolabmeet_media_types::bandwidth_stats::TransportBandwidthStats;
use kolabmeet_media_types::panic_message::panic_message;
use kolabmeet_media_types::worker_stats::WorkerStats;

/// Wakes the control loop when events are queued.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Commands queued per worker before `submit` refuses more.
pub const COMMAND_QUEUE: usize = 4096;

const UDP: Token = Token(0);
const TCP_LISTENER: Token = Token(1);
const WAKER: Token = Token(2);
const FIRST_CONN: usize = 3;
/// UDP batches read before the worker sends what they produced and serves its timers.
/// One: a batch of 32 datagrams fanned out to tens of consumers is already hundreds of
/// packets, and every further batch read first would add its processing time to the
/// latency of all of them (measured: p99 of several ms at 50,000 packets/s with 8).
const MAX_BATCHES_PER_ROUND: usize = 1;

/// Largest datagram read; WebRTC keeps packets under the path MTU.
const MAX_DATAGRAM: usize = 4096;
/// Passive ICE-TCP connections per worker.
const MAX_TCP_CONNECTIONS: usize = 4096;
/// Bytes queued towards one TCP connection before packets are dropped.
const MAX_TCP_PENDING: usize = 1 << 20;
/// How soon a worker retries publishing held-back events.
const BACKLOG_RETRY: Duration = Duration::from_millis(10);

struct TcpConn {
    stream: TcpStream,
    remote: SocketAddr,
    decoder: FrameDecoder,
    pending: Vec<u8>,
    writable_registered: bool,
}

/// What a worker thread is connected to: its command queue, its ends of the pipes to
/// the other workers, the shared event queue and the control loop's notification.
#[derive(Clone)]
pub struct WorkerLinks {
    /// Its commands (the engine keeps the queue per slot).
    pub commands: Arc<ArrayQueue<WorkerCommand>>,
    /// Its ends of the pipes between workers.
    pub pipes: PipeEnds,
    /// Every worker's events.
    pub events: Arc<ArrayQueue<EngineEvent>>,
    /// Wakes the control loop.
    pub notify: Notify,
}

/// A running worker thread: its waker, its stop flag and how it ended. The commands it
/// drains come through a queue its owner keeps ([`WorkerEngine`](super::WorkerEngine) keeps
/// one per worker slot, so that commands wait there while a failed worker is replaced).
pub struct WorkerThread {
    waker: Arc<Waker>,
    bandwidth: Arc<StatsSnapshot>,
    stop: Arc<AtomicBool>,
    exit: Arc<WorkerExit>,
    thread: Option<JoinHandle<()>>,
    port: u16,
}

/// The stats a worker publishes about once a second (`/metrics`, the API's stats, the
/// console): the only lock between a worker and the control plane, taken once a second
/// by the worker and when an operator or a scraper asks.
type StatsSnapshot = std::sync::Mutex<WorkerStats>;

/// How often a worker publishes its stats.
/// A wake-up this much later than the loop asked for means the process was stopped or
/// starved (issue 18 §4): media read until the socket is drained is not forwarded. Not
/// less: skipped media costs each receiver a key frame (seconds of freeze with the
/// client's 3 s key frame request delay), while a second's burst its jitter buffer
/// absorbs; at 0.5 s, three Chromiums on two cores starved the worker that long now and
/// then, and the five-minute soak froze for 4-6 s.
const STALL: Duration = Duration::from_secs(2);
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// When a reader held the stats snapshot: try again this soon.
const STATS_RETRY: Duration = Duration::from_millis(5);

/// How a worker thread ended, written once by the thread itself as it exits.
#[derive(Default)]
struct WorkerExit {
    /// Set once the thread is done with its sockets (they are closed).
    exited: AtomicBool,
    /// Why, when the thread was not asked to stop.
    reason: std::sync::Mutex<Option<String>>,
}

/// Binds UDP and TCP on the same port: the configured one, or (port 0) a free one.
fn bind_pair(settings: &WorkerSettings) -> io::Result<(UdpSocket, TcpListener, u16)> {
    for _ in 0..16 {
        let udp = UdpSocket::bind(SocketAddr::new(settings.listen_ip, settings.port))?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(settings.listen_ip, port)) {
            Ok(tcp) => return Ok((udp, tcp, port)),
            Err(e) if settings.port != 0 => return Err(e),
            Err(_) => continue,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no port free for both UDP and TCP",
    ))
}

impl WorkerThread {
    /// Binds the worker's ports (`settings.port`, or a free port when it is 0) and starts
    /// its thread, which drains `commands` and publishes to `events`. When the thread ends
    /// without being asked to (its loop panicked or failed), it first closes its sockets,
    /// then records why ([`WorkerThread::failure`]) and calls `notify`.
    pub fn spawn(
        index: usize,
        mut settings: WorkerSettings,
        certificate: DtlsCertificate,
        links: WorkerLinks,
        #[cfg(any(test, feature = "fault-injection"))] fault: Arc<super::fault::FaultSwitch>,
    ) -> io::Result<Self> {
        let WorkerLinks {
            commands,
            pipes,
            events,
            notify,
        } = links;
        let (udp, listener, port) = bind_pair(&settings)?;
        settings.port = port;
        let granted = super::udp_batch::enlarge_buffers(&udp);
        tracing::debug!(target: "kolabmeet::worker", worker = index, port, ?granted, "media port socket buffers (receive, send)");
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let exit = Arc::new(WorkerExit::default());
        let bandwidth = Arc::new(StatsSnapshot::default());
        let mut core = WorkerCore::new(settings, certificate, StdRng::from_os_rng());
        // The one wall clock read: NTP timestamps of sender reports count from it.
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        core.set_wall_clock(Instant::now(), since_epoch);
        core.set_index(pipes.index());
        pipes.attach(waker.clone());
        #[cfg(any(test, feature = "fault-injection"))]
        fault.attach(waker.clone());
        let mut driver = Driver {
            poll,
            udp,
            listener,
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            next_token: FIRST_CONN,
            core,
            commands,
            pipes,
            woken: Vec::new(),
            unknown_room: Vec::new(),
            shed: LoadShed::new(),
            stale_drain: false,
            last_round: None,
            shed_next: Instant::now(),
            shed_rounds: (0, 0),
            events,
            backlog: EventOutbox::default(),
            notify: notify.clone(),
            stop: stop.clone(),
            udp_out: Vec::new(),
            port,
            index,
            bandwidth: bandwidth.clone(),
            next_stats: Instant::now(),
            plain: PlainSockets::default(),
            busy: Duration::ZERO,
            #[cfg(any(test, feature = "fault-injection"))]
            fault,
        };
        let thread_stop = stop.clone();
        let thread_exit = exit.clone();
        let thread = std::thread::Builder::new()
            .name(format!("media-worker-{index}"))
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(|| driver.run()));
                // The sockets close here, before anyone learns that the worker is gone,
                // so that a replacement can bind the same port.
                drop(driver);
                let reason = match outcome {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("its loop failed: {e}")),
                    Err(payload) => Some(format!("it panicked: {}", panic_message(&*payload))),
                };
                let asked = thread_stop.load(Ordering::Acquire);
                if let Some(r) = &reason {
                    tracing::error!(target: "kolabmeet::worker", worker = index, port, reason = %r, "media worker failed");
                }
                if let Ok(mut slot) = thread_exit.reason.lock() {
                    *slot = match (&reason, asked) {
                        (Some(r), _) => Some(r.clone()),
                        (None, true) => None,
                        (None, false) => Some("it stopped".to_owned()),
                    };
                }
                thread_exit.exited.store(true, Ordering::Release);
                if !asked {
                    notify();
                }
            })?;
        Ok(WorkerThread {
            waker,
            bandwidth,
            stop,
            exit,
            thread: Some(thread),
            port,
        })
    }

    /// The worker's media port (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bandwidth stats it last published.
    pub fn bandwidth_stats(&self) -> Vec<TransportBandwidthStats> {
        self.bandwidth
            .lock()
            .map(|s| s.bandwidth.clone())
            .unwrap_or_default()
    }

    /// Everything it last published about itself (its index and port even before the
    /// first snapshot).
    pub fn stats(&self) -> WorkerStats {
        let mut s = self.bandwidth.lock().map(|s| s.clone()).unwrap_or_default();
        s.port = self.port;
        s
    }

    /// Wakes the worker (commands were queued).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Why the thread ended, once it has ended without being asked to stop (its sockets
    /// are closed by then); `None` while it runs.
    pub fn failure(&self) -> Option<String> {
        let ended = self.exit.exited.load(Ordering::Acquire)
            || self.thread.as_ref().is_some_and(JoinHandle::is_finished);
        if !ended || self.stop.load(Ordering::Acquire) {
            return None;
        }
        let reason = self.exit.reason.lock().ok().and_then(|r| r.clone());
        Some(reason.unwrap_or_else(|| "it stopped".to_owned()))
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Driver {
    poll: Poll,
    udp: UdpSocket,
    listener: TcpListener,
    conns: HashMap<Token, TcpConn>,
    by_remote: HashMap<SocketAddr, Token>,
    next_token: usize,
    core: WorkerCore,
    commands: Arc<ArrayQueue<WorkerCommand>>,
    /// Its ends of the pipes to the other workers (issue 16).
    pipes: PipeEnds,
    /// Which workers this round's messages went to (reused).
    woken: Vec<bool>,
    /// Whether the loop is falling behind, judged every `LoadShed::WINDOW` (issue 16:
    /// overload is shed by layer), when next, and this window's rounds and those that
    /// left datagrams in the socket (a backlog when a quarter of at least 40 did: one
    /// burst that fills a batch is not one).
    shed: LoadShed,
    /// Draining the socket after a stall: what is read is stale media.
    stale_drain: bool,
    /// When the last round of the loop began (after `poll`) and ended.
    last_round: Option<(Instant, Instant)>,
    shed_next: Instant,
    shed_rounds: (u32, u32),
    /// Messages for a room with no router here yet, tried again after the commands.
    unknown_room: Vec<crate::mirror::PipeMessage>,
    events: Arc<ArrayQueue<EngineEvent>>,
    backlog: EventOutbox,
    notify: Notify,
    stop: Arc<AtomicBool>,
    /// UDP datagrams of one round, sent together.
    udp_out: Vec<(SocketAddr, Vec<u8>)>,
    /// Its media port.
    port: u16,
    /// Its index among the workers.
    index: usize,
    /// Where it publishes its stats, and when next.
    bandwidth: Arc<StatsSnapshot>,
    next_stats: Instant,
    /// Plain transports' UDP sockets by local port.
    plain: PlainSockets,
    /// Time its loop spent working rather than waiting in `poll`.
    busy: Duration,
    /// The test builds' injected fault.
    #[cfg(any(test, feature = "fault-injection"))]
    fault: Arc<super::fault::FaultSwitch>,
}

impl Driver {
    fn run(&mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.udp, UDP, Interest::READABLE)?;
        self.poll
            .registry()
            .register(&mut self.listener, TCP_LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(256);
        let mut buf: Vec<u8> = Vec::with_capacity(MAX_DATAGRAM);
        // Made here, on the worker's thread: its system-call headers hold raw pointers.
        let mut batch = UdpBatch::new(MAX_DATAGRAM);
        let mut udp_more = false;
        while !self.stop.load(Ordering::Acquire) {
            #[cfg(any(test, feature = "fault-injection"))]
            self.fault.strike(&mut self.core)?;
            let mut timeout = self
                .core
                .poll_timeout()
                .map(|t| t.saturating_duration_since(Instant::now()) + Duration::from_millis(1));
            if udp_more || self.plain.has_more() {
                timeout = Some(Duration::ZERO);
            }
            timeout = Some(timeout.map_or(STATS_INTERVAL, |t| t.min(STATS_INTERVAL)));
            if !self.backlog.is_empty() {
                // The shared event queue was full: try again soon.
                timeout = Some(timeout.map_or(BACKLOG_RETRY, |t| t.min(BACKLOG_RETRY)));
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            // Woken far later than asked since the last round ended, or that round took
            // far too long: the process was stopped (SIGSTOP, a VM paused) or starved,
            // wherever it was then (in `poll`, interrupted and polling again, or working).
            // What waits in the socket now is stale media until it is drained.
            let overslept = self.last_round.map_or(Duration::ZERO, |(began, ended)| {
                now.saturating_duration_since(ended)
                    .saturating_sub(timeout.unwrap_or(Duration::MAX))
                    .max(ended.saturating_duration_since(began))
            });
            if overslept > STALL && !self.stale_drain {
                tracing::warn!(target: "kolabmeet::worker", worker = self.index, stalled_ms = overslept.as_millis() as u64, "the worker's loop stalled (process stopped or starved): media that waited meanwhile is not forwarded");
                self.stale_drain = true;
                self.core.set_stale_input(true);
            }
            let mut udp_read = false;
            for ev in events.iter() {
                match ev.token() {
                    UDP => {
                        udp_more = self.read_udp(now, &mut batch);
                        udp_read = true;
                    }
                    TCP_LISTENER => self.accept(),
                    WAKER => {}
                    token if PlainSockets::port_of(token).is_some() => {
                        if let Some(port) = PlainSockets::port_of(token) {
                            self.plain.read(&mut self.core, now, port);
                        }
                    }
                    token => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read_tcp(now, token, &mut buf);
                        }
                        if ev.is_writable() {
                            self.flush_tcp(token);
                        }
                    }
                }
            }
            if udp_more && !udp_read {
                udp_more = self.read_udp(now, &mut batch);
            }
            if self.stale_drain && !udp_more {
                self.stale_drain = false;
                self.core.set_stale_input(false);
            }
            self.plain.read_more(&mut self.core, now);
            self.pipes
                .drain(&mut self.core, now, &mut self.unknown_room);
            let mut drained = 0;
            while let Some(cmd) = self.commands.pop() {
                // What other workers sent before this command was queued is seen first
                // (a producer's mirror before a consume of it).
                self.pipes
                    .drain(&mut self.core, now, &mut self.unknown_room);
                let cmd = match cmd {
                    WorkerCommand::Engine(c) => c,
                    WorkerCommand::RoomWorkers { room, workers } => {
                        self.core.set_room_workers(room, &workers);
                        drained += 1;
                        continue;
                    }
                    WorkerCommand::WorkerLost(w) => {
                        self.core.worker_lost(w);
                        drained += 1;
                        continue;
                    }
                };
                self.core.handle_command(now, cmd);
                drained += 1;
            }
            // Plain transports asked for: their sockets, then the transports.
            let Driver {
                core, plain, poll, ..
            } = self;
            let ip = core.listen_ip();
            core.serve_port_requests(|| plain.bind(poll.registry(), ip));
            // Messages for a room whose router was still in the queue: once more, then
            // dropped (the room closed meanwhile).
            for m in self.unknown_room.drain(..) {
                if let Some(m) = self.core.try_pipe(now, m) {
                    self.core.drop_pipe(m);
                }
            }
            if drained >= COMMAND_QUEUE {
                // The queue was full: the control plane may hold deferred commands that
                // now fit; wake it so that it moves them.
                (self.notify)();
            }
            if self.core.poll_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
            }
            // Other workers first: they forward in parallel while this one sends.
            self.pipes.flush(&mut self.core, now, &mut self.woken);
            self.send_all(&mut batch);
            self.plain.release(self.poll.registry(), &mut self.core);
            self.publish_events();
            let done = Instant::now();
            self.last_round = Some((now, done));
            self.busy += done.saturating_duration_since(now);
            self.shed_rounds.0 += 1;
            self.shed_rounds.1 += u32::from(udp_more);
            if done >= self.shed_next {
                self.shed_next = done + LoadShed::WINDOW;
                let (rounds, more) = self.shed_rounds;
                // A backlog counts only with the loop really working: on a machine whose
                // other processes take the CPU, the socket fills without this worker
                // being the one behind (and shedding its layers would not help).
                let cpu = thread_cpu_time().unwrap_or(self.busy);
                let backlog = more >= 10 && more * 4 >= rounds;
                if let Some(level) = self.shed.observe(done, cpu, backlog) {
                    self.core.set_shed_level(level);
                }
                self.shed_rounds = (0, 0);
            }
            if done >= self.next_stats {
                // Never wait for a reader: a control thread that holds the snapshot while
                // the scheduler keeps it off its CPU would stall this worker's media (seen
                // in the overload runs: seconds of socket overflow while the load tool's
                // main thread, starved by its real-time client threads, read the stats).
                // Busy: the snapshot is made again in a few ms.
                match self.bandwidth.try_lock() {
                    Ok(mut slot) => {
                        self.next_stats = done + STATS_INTERVAL;
                        let mut stats = self.core.worker_stats(done, self.index);
                        stats.busy_seconds = self.busy.as_secs_f64();
                        self.pipes.count_into(&mut stats.pipes);
                        stats.command_queue = self.commands.len();
                        stats.event_backlog = self.backlog.len();
                        *slot = stats;
                    }
                    Err(std::sync::TryLockError::WouldBlock) => {
                        self.next_stats = done + STATS_RETRY;
                    }
                    // A reader panicked holding it: publish nothing more (readers get
                    // the default).
                    Err(std::sync::TryLockError::Poisoned(_)) => {
                        self.next_stats = done + STATS_INTERVAL;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads at most [`MAX_BATCHES_PER_ROUND`] batches, so that routing's output is sent
    /// and timers run between them under overload; returns whether the socket may hold
    /// more (the loop then polls without waiting, since readiness is edge-triggered).
    fn read_udp(&mut self, now: Instant, batch: &mut UdpBatch) -> bool {
        let Self { udp, core, .. } = self;
        let mut rounds = 0;
        loop {
            let read = batch.recv(udp, |from, buf| {
                let tuple = core.tuple(TupleProtocol::Udp, from);
                core.handle_datagram(now, tuple, buf);
            });
            match read {
                Ok(n) if n < super::udp_batch::BATCH => return false,
                Ok(_) => {
                    rounds += 1;
                    if rounds == MAX_BATCHES_PER_ROUND {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors (port unreachable) surface here on Linux: not fatal.
                    tracing::debug!(target: "kolabmeet::worker", error = %e, "UDP receive error");
                    return true;
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, remote)) => {
                    if self.conns.len() >= MAX_TCP_CONNECTIONS {
                        tracing::debug!(target: "kolabmeet::worker", %remote, "ICE-TCP connection refused: too many");
                        continue;
                    }
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    self.by_remote.insert(remote, token);
                    self.conns.insert(
                        token,
                        TcpConn {
                            stream,
                            remote,
                            decoder: FrameDecoder::new(),
                            pending: Vec::new(),
                            writable_registered: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(target: "kolabmeet::worker", error = %e, "ICE-TCP accept error");
                    return;
                }
            }
        }
    }

    fn read_tcp(&mut self, now: Instant, token: Token, buf: &mut Vec<u8>) {
        let mut closed = false;
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let tuple = self.core.tuple(TupleProtocol::Tcp, conn.remote);
        loop {
            match conn.stream.read(conn.decoder.spare()) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    conn.decoder.commit(n);
                    while let Some(frame) = conn.decoder.next_frame() {
                        buf.clear();
                        buf.extend_from_slice(frame);
                        self.core.handle_datagram(now, tuple, buf);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            self.close_conn(now, token);
        }
    }

    fn close_conn(&mut self, now: Instant, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.by_remote.remove(&conn.remote);
            let tuple = self.core.tuple(TupleProtocol::Tcp, conn.remote);
            self.core.tcp_closed(now, tuple);
        }
    }

    fn send_all(&mut self, batch: &mut UdpBatch) {
        // TCP connections written to this round (allocates only when there are some).
        let mut touched = Vec::new();
        let mut udp_out = std::mem::take(&mut self.udp_out);
        while let Some(t) = self.core.poll_transmit() {
            match t.tuple.protocol {
                TupleProtocol::Udp if t.tuple.local.port() != self.port => {
                    // A plain transport's own socket.
                    self.plain
                        .send(t.tuple.local.port(), &t.data, t.tuple.remote);
                    self.core.recycle(t.data);
                }
                TupleProtocol::Udp => udp_out.push((t.tuple.remote, t.data)),
                TupleProtocol::Tcp => {
                    if let Some(token) = self.queue_tcp(&t.tuple, &t.data) {
                        touched.push(token);
                    }
                    self.core.recycle(t.data);
                }
            }
        }
        if !udp_out.is_empty() {
            let (sent, failed) = batch.send(&self.udp, &udp_out);
            if sent + failed < udp_out.len() {
                tracing::debug!(target: "kolabmeet::worker", dropped = udp_out.len() - sent - failed, "UDP send buffer full");
            }
        }
        for (_, data) in udp_out.drain(..) {
            self.core.recycle(data);
        }
        self.udp_out = udp_out;
        touched.dedup();
        for token in touched {
            self.flush_tcp(token);
        }
    }

    fn queue_tcp(&mut self, tuple: &Tuple, data: &[u8]) -> Option<Token> {
        let token = *self.by_remote.get(&tuple.remote)?;
        let conn = self.conns.get_mut(&token)?;
        let header = frame_header(data.len()).ok()?;
        if conn.pending.len() + data.len() + 2 > MAX_TCP_PENDING {
            return None;
        }
        conn.pending.extend_from_slice(&header);
        conn.pending.extend_from_slice(data);
        Some(token)
    }

    fn flush_tcp(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(0) => break,
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.pending.clear();
                    break;
                }
            }
        }
        let want_writable = !conn.pending.is_empty();
        if want_writable != conn.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .poll
                .registry()
                .reregister(&mut conn.stream, token, interest)
                .is_ok()
            {
                conn.writable_registered = want_writable;
            }
        }
    }

    fn publish_events(&mut self) {
        let dropped = self.backlog.dropped();
        while let Some(e) = self.core.poll_event() {
            self.backlog.push(e);
        }
        if self.backlog.dropped() > dropped {
            tracing::warn!(target: "kolabmeet::worker", total = self.backlog.dropped(), "control plane lagging: superseded score/layer events dropped");
        }
        if self.backlog.publish(&self.events) {
            (self.notify)();
        }
    }
}

/// The calling thread's CPU time so far, from `/proc/thread-self/schedstat` (its first
/// field, nanoseconds on a CPU): what the overload judgment counts, since the loop's wall
/// time between waits also counts the time other processes held the CPU. `None` where
/// the kernel does not say (the wall time is used then).
fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}
