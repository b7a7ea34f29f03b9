//! `signaling-load`: a load tool for the control plane (issue #3). It starts the real
//! server (or uses a running one), opens N Socket.IO clients over M rooms on 127.0.0.1,
//! joins them, drives chat, nickname and raised-hand traffic, and prints request latency,
//! messages per second, the server's CPU and its RSS per connected peer, then churns all
//! peers out and in for several rounds and prints how RSS moves.
//!
//! ```text
//! cargo run --release -p kolabmeet-benches --bin signaling-load -- --peers 2000 --rooms 100
//! ```

use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kolabmeet_benches::sys;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Command-line options.
struct Opts {
    peers: usize,
    rooms: usize,
    seconds: f64,
    rate: f64,
    rounds: usize,
    settle: u64,
    server: String,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        peers: 2000,
        rooms: 100,
        seconds: 20.0,
        rate: 1.0,
        rounds: 10,
        settle: 15,
        server: "target/release/kolabmeet-server".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--peers" => o.peers = val()?.parse().map_err(|_| "bad --peers")?,
            "--rooms" => o.rooms = val()?.parse().map_err(|_| "bad --rooms")?,
            "--seconds" => o.seconds = val()?.parse().map_err(|_| "bad --seconds")?,
            "--rate" => o.rate = val()?.parse().map_err(|_| "bad --rate")?,
            "--rounds" => o.rounds = val()?.parse().map_err(|_| "bad --rounds")?,
            "--settle" => o.settle = val()?.parse().map_err(|_| "bad --settle")?,
            "--server" => o.server = val()?,
            "--help" | "-h" => {
                println!(
                    "signaling-load [--peers 2000] [--rooms 100] [--seconds 20] [--rate 1.0] [--rounds 10] [--settle 15] [--server target/release/kolabmeet-server]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.peers == 0 || o.rooms == 0 || o.rooms > o.peers {
        return Err("need 0 < rooms <= peers".into());
    }
    Ok(o)
}

/// The spawned server.
struct Server {
    child: Child,
    port: u16,
    token: String,
    console: std::path::PathBuf,
}

/// Asks the server's console one command.
fn console(server: &Server, cmd: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(&server.console) else {
        return "console unavailable".into();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(format!("{cmd}\nquit\n").as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.replace("cmd> ", "").trim().to_owned()
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first (lets a profiler wrapping the server write its output), then
        // SIGKILL if it is still there after a few seconds.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_server(bin: &str) -> Result<Server, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let token = format!(
        "load{:016x}",
        std::process::id() as u64 * 7919 + port as u64
    );
    let console_path = std::env::temp_dir().join(format!("signaling-load-{port}.sock"));
    let child = Command::new(bin)
        .env("LISTENING_HOST", "127.0.0.1")
        .env("LISTENING_PORT", port.to_string())
        .env("AUTH_TOKEN", &token)
        .env("PUBLIC_DOMAIN", format!("127.0.0.1:{port}"))
        .env("CONSOLE_SOCKET", &console_path)
        .env("LOG_LEVEL", "warn")
        .env("MAX_CONNECTIONS", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e}"))?;
    let server = Server {
        child,
        port,
        token,
        console: console_path,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(r) = http(&server, "GET", "/ping", None)
            && r == "PONG"
        {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("the server did not answer /ping".into())
}

fn http(server: &Server, method: &str, path: &str, body: Option<Value>) -> Result<String, String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let url = format!("http://127.0.0.1:{}{path}", server.port);
    let resp = match method {
        "POST" => agent
            .post(&url)
            .header("X-Auth-Token", &server.token)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(Value::Null).to_string().as_str()),
        _ => agent.get(&url).header("X-Auth-Token", &server.token).call(),
    };
    let mut resp = resp.map_err(|e| format!("{method} {path}: {e}"))?;
    resp.body_mut()
        .read_to_string()
        .map_err(|e| format!("{method} {path}: {e}"))
}

/// The server's resident memory in KiB and CPU ticks (1/100 s), from /proc.
fn proc_usage(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (rss, ticks(11) + ticks(12))
}

/// Scheduler figures of a process, summed over its threads (`/proc/PID/task/*/schedstat`):
/// time on a CPU, time runnable but waiting for one, and the number of timeslices.
#[derive(Clone, Copy, Default)]
struct Sched {
    on_cpu_ns: u64,
    waiting_ns: u64,
    slices: u64,
}

fn schedstat(pid: u32) -> Sched {
    let mut sum = Sched::default();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
            let v: Vec<u64> = s
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [cpu, wait, slices, ..] = v[..] {
                sum.on_cpu_ns += cpu;
                sum.waiting_ns += wait;
                sum.slices += slices;
            }
        }
    }
    sum
}

impl Sched {
    fn since(self, before: Sched) -> Sched {
        Sched {
            on_cpu_ns: self.on_cpu_ns.saturating_sub(before.on_cpu_ns),
            waiting_ns: self.waiting_ns.saturating_sub(before.waiting_ns),
            slices: self.slices.saturating_sub(before.slices),
        }
    }

    /// "N% of one core, waited M ms for a CPU (K us per timeslice)" over `wall`.
    fn describe(&self, wall: Duration) -> String {
        format!(
            "{:.1}% of one core, waited {:.0} ms for a CPU ({:.0} us per timeslice)",
            self.on_cpu_ns as f64 / 1e9 / wall.as_secs_f64() * 100.0,
            self.waiting_ns as f64 / 1e6,
            self.waiting_ns as f64 / 1e3 / self.slices.max(1) as f64
        )
    }
}

/// Busy and total jiffies of the whole machine, from the first line of `/proc/stat`.
fn machine_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Read buffer of each client's WebSocket (see `connect_and_join`).
const CLIENT_READ_BUFFER: usize = 4096;

/// A client's socket. Once non-blocking, a read that returns less than it asked for
/// has emptied the kernel's receive queue, so the next read reports `WouldBlock` without
/// a system call; [`drain`] clears that on every readiness (mio is edge-triggered, and
/// Linux reports an edge for every segment that arrives afterwards). This halves the
/// tool's reads: most readiness events carry a single frame. Reads also keep the kernel's
/// receive timestamp of the last segment read (`SO_TIMESTAMPNS`).
struct ClientStream {
    tcp: TcpStream,
    nonblocking: bool,
    drained: bool,
    /// When the last segment read arrived at the socket (ns since the Unix epoch).
    last_rx: Option<u64>,
}

impl io::Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let (n, stamp) = sys::recv_stamped(&self.tcp, buf)?;
        if stamp.is_some() {
            self.last_rx = stamp;
        }
        if self.nonblocking && n > 0 && n < buf.len() {
            self.drained = true;
        }
        Ok(n)
    }
}

impl io::Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

impl ClientStream {
    fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        self.tcp.set_nonblocking(on)?;
        self.nonblocking = on;
        self.drained = false;
        Ok(())
    }
}

/// One simulated peer.
struct Client {
    ws: WebSocket<ClientStream>,
    room: String,
    next_ack: u64,
    /// Requests awaiting their ack: id, when sent, and when sent in ns since the Unix
    /// epoch (the clock of the kernel's receive timestamps).
    waiting: VecDeque<(u64, Instant, u64)>,
}

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`, the clock of `SO_TIMESTAMPNS`).
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Request latencies, two ways: until the tool read the ack, and until the ack's last
/// segment arrived at the client's socket (the kernel's receive timestamp). Their
/// difference is time the ack waited for this tool, which is single-threaded and shares
/// the machine: on a busy machine it waits for a CPU, and that is not the server's.
#[derive(Default)]
struct Latencies {
    read: Vec<Duration>,
    at_socket: Vec<Duration>,
}

fn create_peer(server: &Server, room: &str) -> Result<(String, String, String), String> {
    let body = http(
        server,
        "POST",
        &format!("/meetmedia/api/sessions/{room}/connection"),
        Some(json!({"role": 3})),
    )?;
    let v: Value =
        serde_json::from_str(&body).map_err(|e| format!("connection answer: {e}: {body}"))?;
    let token = v["token"].as_str().ok_or("no token")?;
    let query = token.split_once('?').ok_or("no query")?.1.to_owned();
    Ok((
        v["id"].as_str().unwrap_or("").to_owned(),
        room.to_owned(),
        query,
    ))
}

fn read_text(ws: &mut WebSocket<ClientStream>) -> Result<String, String> {
    loop {
        match ws.read().map_err(|e| format!("read: {e}"))? {
            Message::Text(t) => return Ok(t.to_string()),
            Message::Close(_) => return Err("closed by the server".into()),
            _ => {}
        }
    }
}

/// Connects and joins one peer (blocking); returns the client and the join latency.
fn connect_and_join(
    server: &Server,
    room: &str,
    query: &str,
    nick: &str,
) -> Result<(Client, Duration), String> {
    let stream = TcpStream::connect(("127.0.0.1", server.port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    sys::enable_rx_timestamps(&stream).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    let stream = ClientStream {
        tcp: stream,
        nonblocking: false,
        drained: false,
        last_rx: None,
    };
    let url = format!(
        "ws://127.0.0.1:{}/meetmedia/signaling/?{query}&EIO=4&transport=websocket",
        server.port
    );
    // A small read buffer: tungstenite zero-fills the whole free capacity of its read
    // buffer before every read() (128 KiB by default), and this tool reads 40,000 times
    // a second across 2,000 sockets whose buffers do not fit in any cache.
    let config =
        tungstenite::protocol::WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (mut ws, _) = tungstenite::client::client_with_config(url, stream, Some(config))
        .map_err(|e| format!("handshake: {e}"))?;
    let open = read_text(&mut ws)?;
    if !open.starts_with('0') {
        return Err(format!("unexpected open packet {open}"));
    }
    ws.send(Message::text("40")).map_err(|e| e.to_string())?;
    loop {
        let f = read_text(&mut ws)?;
        if f.contains("roomReady") {
            break;
        }
        if f.starts_with("44") {
            return Err(format!("refused: {f}"));
        }
    }
    let t0 = Instant::now();
    let req = json!(["request", {"method": "join", "data": {"nickname": nick}}]);
    ws.send(Message::text(format!("420{req}")))
        .map_err(|e| e.to_string())?;
    loop {
        let f = read_text(&mut ws)?;
        if f.starts_with("430") {
            if !f.starts_with("430[null") {
                return Err(format!("join failed: {f}"));
            }
            break;
        }
        if f == "2" {
            ws.send(Message::text("3")).map_err(|e| e.to_string())?;
        }
    }
    let took = t0.elapsed();
    ws.get_mut()
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    Ok((
        Client {
            ws,
            room: room.to_owned(),
            next_ack: 1,
            waiting: VecDeque::new(),
        },
        took,
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Connects every peer of every room; returns the clients and the join latencies.
fn connect_all(
    server: &Server,
    rooms: &[String],
    peers: usize,
) -> Result<(Vec<Client>, Vec<Duration>), String> {
    let mut clients = Vec::with_capacity(peers);
    let mut joins = Vec::with_capacity(peers);
    for i in 0..peers {
        let room = &rooms[i % rooms.len()];
        let (_, _, query) = create_peer(server, room)?;
        let (c, took) = connect_and_join(server, room, &query, &format!("peer{i}"))?;
        clients.push(c);
        joins.push(took);
    }
    Ok((clients, joins))
}

/// Reads everything available on a client: answers pings, matches acks, counts frames.
fn drain(
    c: &mut Client,
    lat: &mut Latencies,
    frames: &mut u64,
    failed: &mut u64,
) -> Result<(), String> {
    c.ws.get_mut().drained = false;
    loop {
        match c.ws.read() {
            Ok(Message::Text(t)) => {
                *frames += 1;
                if t.as_str() == "2" {
                    let _ = c.ws.write(Message::text("3"));
                } else if let Some(rest) = t.strip_prefix("43") {
                    let id: u64 = rest
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .unwrap_or(0);
                    while let Some((w, at, at_unix)) = c.waiting.front().copied() {
                        c.waiting.pop_front();
                        if w == id {
                            lat.read.push(at.elapsed());
                            if let Some(rx) = c.ws.get_ref().last_rx {
                                lat.at_socket
                                    .push(Duration::from_nanos(rx.saturating_sub(at_unix)));
                            }
                            if !rest[id.to_string().len()..].starts_with("[]")
                                && !rest[id.to_string().len()..].starts_with("[null")
                            {
                                *failed += 1;
                            }
                            break;
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(format!("socket of room {}: {e}", c.room)),
        }
    }
    match c.ws.flush() {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

struct TrafficResult {
    sent: u64,
    latencies: Latencies,
    frames: u64,
    failed: u64,
    wall: Duration,
}

/// Drives requests at `rate` per peer per second for `seconds`, then waits for the
/// outstanding acks (at most 5 s).
fn traffic(clients: &mut [Client], rate: f64, seconds: f64) -> Result<TrafficResult, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    for (i, c) in clients.iter().enumerate() {
        let fd = c.ws.get_ref().tcp.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    let mut events = Events::with_capacity(4096);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let total_rate = rate * clients.len() as f64;
    let mut sent: u64 = 0;
    let mut next_client = 0;
    let mut lat = Latencies::default();
    let mut frames = 0;
    let mut failed = 0;
    let hard_end = end + Duration::from_secs(5);
    loop {
        let now = Instant::now();
        if now >= hard_end {
            break;
        }
        if now < end {
            let due = (now.duration_since(start).as_secs_f64() * total_rate) as u64;
            while sent < due {
                let n = clients.len();
                let c = &mut clients[next_client];
                next_client = (next_client + 1) % n;
                let id = c.next_ack;
                c.next_ack += 1;
                let req = match sent % 3 {
                    0 => {
                        json!(["request", {"method": "chatMessage", "data": {"message": format!("hello {sent}")}}])
                    }
                    1 => {
                        json!(["request", {"method": "changeNickname", "data": {"nickname": format!("nick{sent}")}}])
                    }
                    _ => {
                        json!(["request", {"method": "raisedHand", "data": {"raisedHand": sent.is_multiple_of(2)}}])
                    }
                };
                c.waiting.push_back((id, Instant::now(), unix_ns()));
                match c.ws.send(Message::text(format!("42{id}{req}"))) {
                    Ok(()) => {}
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("send: {e}")),
                }
                sent += 1;
            }
        } else if clients.iter().all(|c| c.waiting.is_empty()) {
            break;
        }
        match poll.poll(&mut events, Some(Duration::from_millis(1))) {
            Ok(()) => {}
            // A signal (a profiler or strace attaching, say) is not a failure.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            Err(e) => return Err(e.to_string()),
        }
        for ev in events.iter() {
            drain(
                &mut clients[ev.token().0],
                &mut lat,
                &mut frames,
                &mut failed,
            )?;
        }
    }
    let wall = start.elapsed();
    for c in clients.iter() {
        let fd = c.ws.get_ref().tcp.as_raw_fd();
        let _ = poll.registry().deregister(&mut SourceFd(&fd));
    }
    Ok(TrafficResult {
        sent,
        latencies: lat,
        frames,
        failed,
        wall,
    })
}

fn leave_all(clients: Vec<Client>) {
    for mut c in clients {
        let _ = c.ws.get_mut().set_nonblocking(false);
        let _ = c.ws.send(Message::text("41"));
        let _ = c.ws.close(None);
        let _ = c.ws.flush();
    }
}

fn run(o: &Opts) -> Result<(), String> {
    let nofile = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|x| x.starts_with("Max open files"))
                .and_then(|x| {
                    x.split_whitespace()
                        .nth(3)
                        .and_then(|v| v.parse::<usize>().ok())
                })
        })
        .unwrap_or(0);
    if nofile < o.peers + 100 {
        return Err(format!(
            "open file limit {nofile} is below peers + 100; raise it with ulimit -n"
        ));
    }
    let server = start_server(&o.server)?;
    let pid = server.child.id();
    std::thread::sleep(Duration::from_millis(300));
    let (rss0, _) = proc_usage(pid);
    println!("baseline: server rss {rss0} KiB");

    let mut rooms = Vec::new();
    for _ in 0..o.rooms {
        let body = http(&server, "POST", "/meetmedia/api/sessions", None)?;
        let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        rooms.push(v["id"].as_str().ok_or("no room id")?.to_owned());
    }
    let t0 = Instant::now();
    let (mut clients, mut joins) = connect_all(&server, &rooms, o.peers)?;
    joins.sort();
    println!(
        "connect: {} peers in {} rooms joined in {:.1} s; join latency p50 {:.2} ms p99 {:.2} ms",
        o.peers,
        o.rooms,
        t0.elapsed().as_secs_f64(),
        percentile(&joins, 0.5),
        percentile(&joins, 0.99)
    );
    // Let the join notifications drain, then read the idle footprint.
    let mut sink = Latencies::default();
    let (mut f, mut x) = (0, 0);
    for c in clients.iter_mut() {
        drain(c, &mut sink, &mut f, &mut x)?;
    }
    std::thread::sleep(Duration::from_secs(3));
    for c in clients.iter_mut() {
        drain(c, &mut sink, &mut f, &mut x)?;
    }
    let (rss_idle, _) = proc_usage(pid);
    let per_peer = (rss_idle.saturating_sub(rss0)) as f64 / o.peers as f64;
    println!("idle: server rss {rss_idle} KiB, {per_peer:.1} KiB per connected peer");

    let (_, cpu0) = proc_usage(pid);
    let me = std::process::id();
    let (sched0, tool0, machine0) = (schedstat(pid), schedstat(me), machine_jiffies());
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let r = traffic(&mut clients, o.rate, o.seconds)?;
    let (rss_traffic, cpu1) = proc_usage(pid);
    let (sched1, tool1, machine1) = (schedstat(pid), schedstat(me), machine_jiffies());
    // This machine is shared: how busy it was, and how long the server and this tool
    // were runnable but not running, say how much of the latency is queueing for a CPU.
    let (busy, total) = (machine1.0 - machine0.0, machine1.1 - machine0.1);
    let machine_busy = busy as f64 / total.max(1) as f64 * 100.0;
    println!(
        "machine during traffic: {machine_busy:.0}% busy over all cores; load average before {}",
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("  server: {}", sched1.since(sched0).describe(r.wall));
    println!("  tool:   {}", tool1.since(tool0).describe(r.wall));
    let mut lat = r.latencies.read;
    lat.sort();
    let mut at_socket = r.latencies.at_socket;
    at_socket.sort();
    let cpu_pct = (cpu1 - cpu0) as f64 / 100.0 / r.wall.as_secs_f64() * 100.0;
    let msgs = r.frames as f64 / r.wall.as_secs_f64();
    println!(
        "traffic: {} requests in {:.1} s, {} acked ({} failed); latency p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms; {:.0} frames/s received; server cpu {:.1}% of one core; rss {} KiB",
        r.sent,
        r.wall.as_secs_f64(),
        lat.len(),
        r.failed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        msgs,
        cpu_pct,
        rss_traffic
    );
    println!(
        "  the same at the client socket (kernel receive timestamp, {} acks): p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms",
        at_socket.len(),
        percentile(&at_socket, 0.5),
        percentile(&at_socket, 0.9),
        percentile(&at_socket, 0.99),
        percentile(&at_socket, 1.0),
    );

    let mut round_rss = Vec::new();
    for round in 1..=o.rounds {
        leave_all(std::mem::take(&mut clients));
        std::thread::sleep(Duration::from_millis(500));
        let (c, _) = connect_all(&server, &rooms, o.peers)?;
        clients = c;
        for c in clients.iter_mut() {
            drain(c, &mut sink, &mut f, &mut x)?;
        }
        // Let the server settle (it returns freed heap pages every 2 s after closes).
        std::thread::sleep(Duration::from_secs(3));
        for c in clients.iter_mut() {
            drain(c, &mut sink, &mut f, &mut x)?;
        }
        let (rss, _) = proc_usage(pid);
        println!(
            "churn round {round}: all {} peers left and rejoined; server rss {rss} KiB",
            o.peers
        );
        round_rss.push(rss);
    }
    // The same live load as right after connecting: give the allocator time to hand
    // back what churn freed, then compare with the idle footprint measured before any
    // traffic or churn.
    let mut settled = rss_idle;
    if o.rounds > 0 {
        for i in 1..=o.settle {
            std::thread::sleep(Duration::from_secs(1));
            for c in clients.iter_mut() {
                drain(c, &mut sink, &mut f, &mut x)?;
            }
            if i % 5 == 0 {
                println!(
                    "  {i} s after the last round: server rss {} KiB",
                    proc_usage(pid).0
                );
            }
        }
        settled = proc_usage(pid).0;
        println!(
            "settled: {} s after the last round, server rss {settled} KiB (idle before churn: {rss_idle} KiB)",
            o.settle
        );
        println!("server tables: {}", console(&server, "dumpInternals"));
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        println!("server open file descriptors: {fds}");
    }
    let growth = settled as i64 - rss_idle as i64;
    let last_rounds = match (round_rss.first(), round_rss.last()) {
        (Some(a), Some(b)) => *b as i64 - *a as i64,
        _ => 0,
    };
    println!(
        "rss change from churn round 1 to {}: {last_rounds} KiB",
        o.rounds
    );
    let p99 = percentile(&lat, 0.99);
    println!();
    println!(
        "summary: peers={} rooms={} p50_ms={:.2} p99_ms={:.2} p99_at_socket_ms={:.2} msgs_per_s={:.0} cpu_pct={:.1} machine_busy_pct={:.0} rss_per_idle_peer_kb={:.1} rss_growth_kb={} (settled after {} churn rounds vs idle before)",
        o.peers,
        o.rooms,
        percentile(&lat, 0.5),
        p99,
        percentile(&at_socket, 0.99),
        msgs,
        cpu_pct,
        machine_busy,
        per_peer,
        growth,
        o.rounds
    );
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!("target p99 < 5 ms: {} ({p99:.2} ms)", verdict(p99 < 5.0));
    println!(
        "target < 100 KB RSS per idle peer: {} ({per_peer:.1} KiB)",
        verdict(per_peer < 100.0)
    );
    let tolerance = (rss_idle as f64 * 0.05).max(2048.0);
    println!(
        "target no RSS growth over {} rounds (tolerance {:.0} KiB): {} ({growth} KiB)",
        o.rounds,
        tolerance,
        verdict((growth as f64) < tolerance)
    );
    leave_all(clients);
    Ok(())
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("signaling-load: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("signaling-load: {e}");
        std::process::exit(1);
    }
}
