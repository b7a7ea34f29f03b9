//! The server's [`Service`]: what the front door's event loop calls. It turns HTTP
//! requests into API calls, WebSocket events into control-plane calls, and control-plane
//! outputs into frames, closes and webhooks. Everything runs on the loop's thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kolabmeet_signaling::ConnId as SigConn;
use kolabmeet_signaling::control::{ControlPlane, HandshakeQuery, Now, Output as CtlOutput};
use serde_json::json;

use crate::console;
use crate::demo::DemoPage;
use crate::front::{ConnId, HttpRequest, HttpResponse, Output, Service, Stop, WsDecision};
use crate::logging::LogControl;
use crate::memory::HeapTrimmer;
use crate::routes;
use crate::shutdown::{Shutdown, SignalAction, signal_name};
use crate::webhooks::WebhookSender;

/// Paths of the signaling WebSocket (contract section 4; `/socket.io/` as in the old
/// operator README's wscat example).
pub const SIGNALING_PATHS: &[&str] = &[
    "/meetmedia/signaling",
    "/meetmedia/signaling/",
    "/socket.io",
    "/socket.io/",
];

/// Reads both clocks once (the edge is the only place that reads them).
pub fn now_at(mono: Instant) -> Now {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Now { mono, unix }
}

/// The server behind the front door.
pub struct ServerService {
    control: ControlPlane,
    token: String,
    webhooks: WebhookSender,
    log: LogControl,
    started: Instant,
    trimmer: HeapTrimmer,
    /// Stop signals received (graceful drain, issue 10).
    shutdown: Shutdown,
    /// `DRAIN_TIMEOUT`: how long a drain waits for the rooms to empty.
    drain_timeout: Duration,
    /// The meeting page, when `DEMO_PAGE` serves it.
    demo: Option<DemoPage>,
    /// The control loop's own figures (`/metrics`).
    loop_stats: crate::metrics::LoopStats,
    /// Test builds only: makes media workers or transports fail on demand (console
    /// `crashWorker`, `crashTransport`).
    #[cfg(feature = "fault-injection")]
    faults: Option<kolabmeet_engine::worker::FaultInjector>,
}

impl ServerService {
    /// Wires the parts together.
    pub fn new(
        control: ControlPlane,
        token: String,
        webhooks: WebhookSender,
        log: LogControl,
    ) -> Self {
        Self {
            control,
            token,
            webhooks,
            log,
            started: Instant::now(),
            trimmer: HeapTrimmer::new(Instant::now()),
            shutdown: Shutdown::default(),
            drain_timeout: crate::shutdown::DEFAULT_DRAIN_TIMEOUT,
            demo: None,
            loop_stats: crate::metrics::LoopStats::default(),
            #[cfg(feature = "fault-injection")]
            faults: None,
        }
    }

    /// Sets `DRAIN_TIMEOUT`.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// After the loop returned: `Some(status)` when a second signal stopped the server at
    /// once (exit with that status without waiting for anything).
    pub fn forced_exit_status(&self) -> Option<u8> {
        self.shutdown.forced_exit_status()
    }

    /// After the loop returned from a finished drain: stops the media workers, then posts
    /// the webhooks still queued (waiting at most `webhook_wait`). Returns how many
    /// webhooks were left unsent.
    pub fn finish(self, webhook_wait: Duration) -> usize {
        let Self {
            control, webhooks, ..
        } = self;
        drop(control);
        webhooks.finish(webhook_wait)
    }

    /// Serves the meeting page (`GET /`, `POST /demo/join`).
    pub fn with_demo_page(mut self, demo: DemoPage) -> Self {
        self.demo = Some(demo);
        self
    }

    /// Test builds only: lets the console's `crashWorker <n> [panic|error]` make media
    /// worker `n` fail, and `crashTransport <transportId>` make one transport panic.
    #[cfg(feature = "fault-injection")]
    pub fn with_fault_injector(mut self, faults: kolabmeet_engine::worker::FaultInjector) -> Self {
        self.faults = Some(faults);
        self
    }

    /// `crashWorker <n> [panic|error] [holdMs]` and `crashTransport <transportId>` (test
    /// builds only); `None` for any other line.
    #[cfg(feature = "fault-injection")]
    fn fault_command(&self, line: &str) -> Option<String> {
        use kolabmeet_engine::worker::Fault;
        let mut words = line.split_whitespace();
        match words.next() {
            Some("crashWorker") => {}
            Some("crashTransport") => return self.crash_transport(words.next()),
            _ => return None,
        }
        let faults = self.faults.as_ref()?;
        let usage = || {
            format!(
                "usage: crashWorker <0-{}> [panic|error] [ms before the replacement starts]",
                faults.workers().saturating_sub(1)
            )
        };
        let Some(worker) = words.next().and_then(|w| w.parse::<usize>().ok()) else {
            return Some(usage());
        };
        let fault = match words.next() {
            None | Some("panic") => Fault::Panic,
            Some("error") => Fault::LoopError,
            Some(_) => return Some(usage()),
        };
        let hold = match words.next().map(str::parse::<u64>) {
            None => 0,
            Some(Ok(ms)) => ms,
            Some(Err(_)) => return Some(usage()),
        };
        if !faults.inject(worker, fault, std::time::Duration::from_millis(hold)) {
            return Some(usage());
        }
        tracing::warn!(
            worker,
            ?fault,
            hold_ms = hold,
            "console: injected fault into a media worker"
        );
        Some(format!("media worker {worker}: {fault:?} injected"))
    }

    /// `crashTransport <transportId>` (test builds only): the next datagram the transport
    /// handles panics inside it. Its worker is found in the workers' last stats (at most a
    /// second old).
    #[cfg(feature = "fault-injection")]
    fn crash_transport(&self, arg: Option<&str>) -> Option<String> {
        let faults = self.faults.as_ref()?;
        let Some(id) = arg.and_then(|a| a.parse::<kolabmeet_engine::TransportId>().ok()) else {
            return Some("usage: crashTransport <transportId>".to_owned());
        };
        let worker = self
            .control
            .worker_stats()
            .into_iter()
            .find(|w| w.transports.iter().any(|t| t.transport_id == id))
            .map(|w| w.worker);
        let Some(worker) = worker.filter(|w| faults.crash_transport(*w, id)) else {
            return Some(format!("no transport {id} on any media worker"));
        };
        tracing::warn!(
            worker,
            transport = %id,
            "console: the transport's next datagram will panic"
        );
        Some(format!(
            "transport {id} on media worker {worker}: its next datagram panics"
        ))
    }
}

fn handshake_query(query: &str) -> HandshakeQuery {
    let mut q = HandshakeQuery::default();
    for (k, v) in routes::form_urlencoded_pairs(query) {
        match k.as_str() {
            "peerId" => q.peer_id = Some(v),
            "roomId" => q.room_id = Some(v),
            "authToken" => q.auth_token = Some(v),
            "EIO" => q.eio = Some(v),
            _ => {}
        }
    }
    q
}

/// An Engine.IO-style handshake error body (`{"code","message"}`).
fn eio_error(status: u16, code: u8, message: &str) -> HttpResponse {
    HttpResponse::new(status).with_body(
        "application/json",
        json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    )
}

/// Runs one API request handler, turning a panic in it into the internal failure of
/// contract section 3: 500 `{"error":"internal error","trackingId":"<uuid v4>"}` with
/// `Strict-Transport-Security`, and the same tracking id logged at error level with the
/// request's method and target. A handler that returns is answered as it is.
fn guarded(method: &str, target: &str, handler: impl FnOnce() -> HttpResponse) -> HttpResponse {
    match catch_unwind(AssertUnwindSafe(handler)) {
        Ok(resp) => resp,
        Err(_) => {
            let tracking = uuid::Uuid::new_v4();
            tracing::error!(tracking_id = %tracking, method = %method, target = %target, "internal error while handling an API request");
            HttpResponse::new(500)
                .with_header("Strict-Transport-Security", routes::HSTS)
                .with_body(
                    "application/json",
                    json!({ "error": "internal error", "trackingId": tracking })
                        .to_string()
                        .into_bytes(),
                )
        }
    }
}

impl ServerService {
    /// `GET /metrics` (issue 10): the Prometheus text format, with the API token.
    fn metrics(&self, req: &HttpRequest) -> HttpResponse {
        if req.method != "GET" && req.method != "HEAD" {
            return HttpResponse::new(405).with_header("Allow", "GET, HEAD");
        }
        if !routes::metrics_authorized(req, &self.token) {
            return HttpResponse::new(403);
        }
        let snapshot = crate::metrics::Snapshot::of(&self.control, self.loop_stats);
        HttpResponse::new(200).with_body(
            crate::metrics::CONTENT_TYPE,
            crate::metrics::render(&snapshot).into_bytes(),
        )
    }
}

impl Service for ServerService {
    fn http(&mut self, req: HttpRequest, now: Instant) -> HttpResponse {
        let now = now_at(now);
        let (path, _) = routes::split_target(&req.target);
        if SIGNALING_PATHS.contains(&path) {
            // Long-polling is not offered (contract section 4: WebSocket only).
            return eio_error(400, 0, "Transport unknown: only websocket is supported");
        }
        if path == "/metrics" {
            return self.metrics(&req);
        }
        guarded(&req.method, &req.target, || {
            if let Some(demo) = self.demo.as_mut()
                && let Some(resp) = demo.handle(&mut self.control, &req, path, now)
            {
                return resp;
            }
            routes::handle(&mut self.control, &self.token, &req, now)
        })
    }

    fn loop_round(&mut self, busy: std::time::Duration, connections: usize) {
        self.loop_stats.busy += busy;
        self.loop_stats.connections = connections;
    }

    fn ws_open(&mut self, conn: ConnId, req: &HttpRequest, now: Instant) -> WsDecision {
        let (path, query) = routes::split_target(&req.target);
        if !SIGNALING_PATHS.contains(&path) {
            return WsDecision::Reject(HttpResponse::new(404));
        }
        let q = handshake_query(query);
        if let Some(v) = q.eio.as_deref()
            && v != "3"
            && v != "4"
        {
            return WsDecision::Reject(eio_error(400, 5, "Unsupported protocol version"));
        }
        let transport = routes::form_urlencoded_pairs(query)
            .into_iter()
            .find(|(k, _)| k == "transport")
            .map(|(_, v)| v);
        if transport.as_deref().is_some_and(|t| t != "websocket") {
            return WsDecision::Reject(eio_error(400, 0, "Transport unknown"));
        }
        tracing::debug!(conn = conn.0, remote = %req.remote, "signaling socket opened");
        self.control.socket_open(SigConn(conn.0), q, now_at(now));
        WsDecision::Accept
    }

    fn ws_text(&mut self, conn: ConnId, text: &str, now: Instant) {
        self.control
            .socket_frame(SigConn(conn.0), text, now_at(now));
    }

    fn ws_closed(&mut self, conn: ConnId, clean: bool, now: Instant) {
        tracing::debug!(conn = conn.0, clean, "signaling socket closed");
        self.control.socket_closed(SigConn(conn.0), now_at(now));
        self.trimmer.note_close();
    }

    fn console_line(&mut self, line: &str, _now: Instant) -> Option<String> {
        #[cfg(feature = "fault-injection")]
        if let Some(answer) = self.fault_command(line) {
            return Some(answer);
        }
        let uptime = self.started.elapsed();
        let (control, log) = (&self.control, &mut self.log);
        // A bug in a console command costs that answer, not the process.
        catch_unwind(AssertUnwindSafe(|| {
            console::execute(control, log, uptime, line)
        }))
        .unwrap_or_else(|_| {
            tracing::error!(line, "internal error while running a console command");
            Some("internal error (see the server log)".to_owned())
        })
    }

    fn poll_output(&mut self) -> Option<Output> {
        loop {
            match self.control.poll_output()? {
                CtlOutput::Frame(c, f) => return Some(Output::Text(ConnId(c.0), f)),
                CtlOutput::Close(c) => return Some(Output::Close(ConnId(c.0))),
                CtlOutput::Webhook(w) => self.webhooks.send(w),
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.control.poll_timeout(), self.trimmer.due_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.control.handle_timeout(now_at(now));
        self.trimmer.maybe_trim(now);
    }

    fn wake(&mut self, now: Instant) {
        self.control.pump_engine(now_at(now));
    }

    fn signal(&mut self, signal: i32, now: Instant) {
        let name = signal_name(signal);
        match self.shutdown.on_signal(signal) {
            SignalAction::BeginDrain => {
                tracing::info!(
                    signal = name,
                    drain_timeout_s = self.drain_timeout.as_secs(),
                    "stop signal: draining (a second signal stops at once)"
                );
                self.control.begin_drain(now_at(now), self.drain_timeout);
            }
            SignalAction::StopAtOnce => {
                let (rooms, peers) = self.control.counts();
                tracing::warn!(
                    signal = name,
                    rooms,
                    peers,
                    "second stop signal: stopping at once (the rooms still open get no roomClosed webhook)"
                );
            }
            SignalAction::Ignore => {}
        }
    }

    fn stop(&self) -> Option<Stop> {
        if self.shutdown.forced_exit_status().is_some() {
            Some(Stop::AtOnce)
        } else if self.shutdown.draining() && self.control.drained() {
            Some(Stop::Graceful)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// An in-memory log sink: every writer the subscriber makes appends to one buffer.
    #[derive(Clone, Default)]
    struct LogBuffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for LogBuffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` with a thread-scoped fmt subscriber (no global state) and returns its
    /// result and what it logged. Every test that reaches the `error!` callsite goes
    /// through here, so that callsite is never first registered while no subscriber
    /// exists (which could cache it as disabled while another test's subscriber is
    /// being set up on another thread).
    fn captured<R>(f: impl FnOnce() -> R) -> (R, String) {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let result = tracing::subscriber::with_default(subscriber, f);
        let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (result, log)
    }

    fn header<'a>(resp: &'a HttpResponse, name: &str) -> Option<&'a str> {
        resp.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The tracking id of a 500 body, checked to be a UUID.
    fn tracking_id(resp: &HttpResponse) -> uuid::Uuid {
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["error"], "internal error");
        uuid::Uuid::parse_str(body["trackingId"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn panic_becomes_500_with_tracking_id() {
        let (resp, _) =
            captured(|| guarded("GET", "/meetmedia/api/health", || panic!("handler failed")));
        assert_eq!(resp.status, 500);
        assert_eq!(header(&resp, "Content-Type"), Some("application/json"));
        assert_eq!(
            header(&resp, "Strict-Transport-Security"),
            Some(routes::HSTS)
        );
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body.as_object().unwrap().len(), 2, "body: {body}");
        tracking_id(&resp);
    }

    #[test]
    fn tracking_id_is_logged_with_method_and_target() {
        let (resp, log) = captured(|| {
            guarded("POST", "/meetmedia/api/sessions?x=1", || {
                panic!("handler failed")
            })
        });
        let id = tracking_id(&resp);
        let line = log
            .lines()
            .find(|l| l.contains("internal error while handling an API request"))
            .unwrap_or_else(|| panic!("no error line in log: {log:?}"));
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains(&format!("tracking_id={id}")), "{line}");
        assert!(line.contains("method=POST"), "{line}");
        assert!(
            line.contains("target=/meetmedia/api/sessions?x=1"),
            "{line}"
        );
    }

    #[test]
    fn returning_handler_passes_through() {
        let expected = HttpResponse::new(201)
            .with_header("X-Test", "yes")
            .with_body("text/plain", b"hello".to_vec());
        let (resp, log) = captured(|| guarded("GET", "/meetmedia/api/ping", || expected.clone()));
        assert_eq!(resp, expected);
        assert!(log.is_empty(), "unexpected log: {log:?}");
    }

    #[test]
    fn each_panic_gets_its_own_tracking_id() {
        let ((first, second), log) = captured(|| {
            (
                guarded("GET", "/a", || panic!("first")),
                guarded("GET", "/b", || panic!("second")),
            )
        });
        let (a, b) = (tracking_id(&first), tracking_id(&second));
        assert_ne!(a, b);
        assert!(log.contains(&format!("tracking_id={a}")), "{log}");
        assert!(log.contains(&format!("tracking_id={b}")), "{log}");
    }
}
