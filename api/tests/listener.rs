//! The listener against real sockets on 127.0.0.1: HTTP/1.1 framing and limits,
//! WebSocket upgrade and push, TLS, the console, and connection churn. The service behind
//! it is a small test service so that only the listener is under test here (the real
//! server is tested end to end by tests/compat).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kolabmeet_server::listener::{
    ConnId, Front, FrontConfig, HttpRequest, HttpResponse, Output, Service, ShutdownHandle,
    WsDecision,
};
use tungstenite::Message;

#[derive(Default)]
struct Shared {
    closed: Vec<(ConnId, bool)>,
    open: Vec<ConnId>,
}

struct TestService {
    shared: Arc<Mutex<Shared>>,
    out: VecDeque<Output>,
}

impl Service for TestService {
    fn http(&mut self, req: HttpRequest, _now: Instant) -> HttpResponse {
        let body = format!("{} {} {}", req.method, req.target, req.body.len());
        HttpResponse::new(200).with_body("text/plain", body.into_bytes())
    }

    fn ws_open(&mut self, conn: ConnId, req: &HttpRequest, _now: Instant) -> WsDecision {
        if req.target.starts_with("/ws") {
            self.shared.lock().unwrap().open.push(conn);
            self.out.push_back(Output::Text(conn, "hello".into()));
            WsDecision::Accept
        } else {
            WsDecision::Reject(HttpResponse::new(404))
        }
    }

    fn ws_text(&mut self, conn: ConnId, text: &str, _now: Instant) {
        if text == "bye" {
            self.out.push_back(Output::Close(conn));
        } else {
            self.out.push_back(Output::Text(conn, text.to_uppercase()));
        }
    }

    fn ws_closed(&mut self, conn: ConnId, clean: bool, _now: Instant) {
        let mut s = self.shared.lock().unwrap();
        s.open.retain(|c| *c != conn);
        s.closed.push((conn, clean));
    }

    fn console_line(&mut self, line: &str, _now: Instant) -> Option<String> {
        (line != "quit").then(|| format!("echo {line}"))
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn wake(&mut self, _now: Instant) {
        let open = self.shared.lock().unwrap().open.clone();
        for c in open {
            self.out.push_back(Output::Text(c, "woken".into()));
        }
    }
}

struct Running {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: ShutdownHandle,
    waker: Arc<mio::Waker>,
    console: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Running {
    let console = std::env::temp_dir().join(format!(
        "kolabmeet-test-{}-{}.sock",
        std::process::id(),
        rand_suffix()
    ));
    let front = Front::bind(FrontConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls,
        console_path: Some(console.clone()),
        max_body: 5 * 1024 * 1024,
        max_connections: 2000,
        idle_http_timeout: Duration::from_secs(60),
        header_timeout: Duration::from_millis(500),
        max_ws_message: 64 * 1024,
        max_ws_pending_out: 1024 * 1024,
        front_error_headers: vec![("X-Front".into(), "1".into())],
    })
    .unwrap();
    let addr = front.local_addr();
    let stop = front.shutdown_handle();
    let waker = front.waker();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let mut svc = TestService {
        shared: shared.clone(),
        out: VecDeque::new(),
    };
    let thread = std::thread::spawn(move || front.run(&mut svc).unwrap());
    Running {
        addr,
        shared,
        stop,
        waker,
        console,
        thread: Some(thread),
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0u8)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads one response: status, headers, body (by Content-Length).
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(": ").unwrap();
        headers.push((k.to_owned(), v.to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status, headers, body)
}

#[test]
fn keep_alive_and_pipelining() {
    let srv = start(None);
    let s = connect(srv.addr);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (st, _, body) = read_response(&mut r);
    assert_eq!((st, body.as_slice()), (200, &b"GET /a 0"[..]));
    // Two pipelined requests, the second with a body.
    w.write_all(b"GET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    assert_eq!(read_response(&mut r).2, b"GET /b 0");
    assert_eq!(read_response(&mut r).2, b"POST /c 3");
    // HEAD: no body on the wire.
    w.write_all(b"HEAD /d HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200 OK"), "{rest}");
    assert!(rest.ends_with("\r\n\r\n"), "{rest}");
}

#[test]
fn body_limits_and_encodings() {
    let srv = start(None);
    // Declared too large: 413 without reading the body.
    let s = connect(srv.addr);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(b"POST /big HTTP/1.1\r\nContent-Length: 6000000\r\n\r\n")
        .unwrap();
    let (st, headers, _) = read_response(&mut r);
    assert_eq!(st, 413);
    assert!(headers.contains(&("X-Front".into(), "1".into())));
    // Chunked.
    let s = connect(srv.addr);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(
        b"POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut r).2, b"POST /chunked 6");
    // 100-continue.
    w.write_all(b"POST /cont HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    r.read_line(&mut line).unwrap();
    w.write_all(b"ok").unwrap();
    assert_eq!(read_response(&mut r).2, b"POST /cont 2");
}

#[test]
fn malformed_requests() {
    let srv = start(None);
    for (req, status) in [
        (&b"\x16\x03\x01garbage\r\n\r\n"[..], 400u16),
        (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ] {
        let s = connect(srv.addr);
        let mut w = s.try_clone().unwrap();
        w.write_all(req).unwrap();
        let (st, _, _) = read_response(&mut BufReader::new(s));
        assert_eq!(st, status, "{}", String::from_utf8_lossy(req));
    }
    let s = connect(srv.addr);
    let mut w = s.try_clone().unwrap();
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    let _ = w.write_all(big.as_bytes());
    assert_eq!(read_response(&mut BufReader::new(s)).0, 431);
    // A client that sends half a head and stalls gets 408.
    let s = connect(srv.addr);
    let mut w = s.try_clone().unwrap();
    w.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    assert_eq!(read_response(&mut BufReader::new(s)).0, 408);
    // And the server still serves.
    let s = connect(srv.addr);
    let mut w = s.try_clone().unwrap();
    w.write_all(b"GET /alive HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut BufReader::new(s)).0, 200);
}

fn ws(addr: SocketAddr, path: &str) -> tungstenite::WebSocket<TcpStream> {
    let s = connect(addr);
    let (ws, _) = tungstenite::client::client(format!("ws://{addr}{path}"), s).unwrap();
    ws
}

fn text(ws: &mut tungstenite::WebSocket<TcpStream>) -> String {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn close_code(ws: &mut tungstenite::WebSocket<TcpStream>) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => return u16::from(f.code),
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn websocket_echo_push_and_close() {
    let srv = start(None);
    let mut a = ws(srv.addr, "/ws?x=1");
    assert_eq!(text(&mut a), "hello");
    a.send(Message::text("abc")).unwrap();
    assert_eq!(text(&mut a), "ABC");
    // Pushed by the server while the client is idle.
    srv.waker.wake().unwrap();
    assert_eq!(text(&mut a), "woken");
    // Server-initiated close.
    a.send(Message::text("bye")).unwrap();
    assert_eq!(close_code(&mut a), 1000);
    // A client that vanishes.
    let mut b = ws(srv.addr, "/ws");
    assert_eq!(text(&mut b), "hello");
    drop(b);
    // A binary frame is refused with 1003.
    let mut c = ws(srv.addr, "/ws");
    assert_eq!(text(&mut c), "hello");
    c.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(close_code(&mut c), 1003);
    // An oversized message is refused with 1009.
    let mut d = ws(srv.addr, "/ws");
    assert_eq!(text(&mut d), "hello");
    d.send(Message::text("x".repeat(100_000))).unwrap();
    assert_eq!(close_code(&mut d), 1009);
    // Rejected upgrade.
    let s = connect(srv.addr);
    assert!(tungstenite::client::client(format!("ws://{}/nope", srv.addr), s).is_err());
    // Every accepted socket is reported closed exactly once.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let closed = srv.shared.lock().unwrap().closed.clone();
        if closed.len() >= 4 || Instant::now() > deadline {
            let mut ids: Vec<_> = closed.iter().map(|(c, _)| *c).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), closed.len(), "{closed:?}");
            assert_eq!(closed.len(), 4, "{closed:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn console_round_trip() {
    let srv = start(None);
    let mut s = UnixStream::connect(&srv.console).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"cmd> ");
    s.write_all(b"stats\n").unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"cmd> ") {
        let mut b = [0u8; 64];
        let n = s.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, b"echo stats\ncmd> ");
    s.write_all(b"quit\n").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn connection_churn() {
    let srv = start(None);
    for i in 0..500 {
        let mut s = connect(srv.addr);
        if i % 2 == 0 {
            let _ = s.write_all(b"GET /x HTTP/1.1\r\n");
        }
    }
    let s = connect(srv.addr);
    let mut w = s.try_clone().unwrap();
    w.write_all(b"GET /after HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut BufReader::new(s)).2, b"GET /after 0");
}

#[test]
fn tls_round_trip() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .unwrap();
    let srv = start(Some(Arc::new(server)));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // HTTPS request.
    let conn = rustls::ClientConnection::new(client.clone(), name.clone()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, connect(srv.addr));
    tls.write_all(b"GET /secure HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = Vec::new();
    let _ = tls.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.ends_with("GET /secure 0"), "{resp}");
    // WSS.
    let conn = rustls::ClientConnection::new(client, name).unwrap();
    let tls = rustls::StreamOwned::new(conn, connect(srv.addr));
    let (mut w, _) =
        tungstenite::client::client(format!("wss://localhost:{}/ws", srv.addr.port()), tls)
            .unwrap();
    let first = loop {
        if let Message::Text(t) = w.read().unwrap() {
            break t.to_string();
        }
    };
    assert_eq!(first, "hello");
    w.send(Message::text("secure")).unwrap();
    let echo = loop {
        if let Message::Text(t) = w.read().unwrap() {
            break t.to_string();
        }
    };
    assert_eq!(echo, "SECURE");
}
