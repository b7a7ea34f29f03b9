//! What the media load tools (`media-load`, `density-load`) share: the clocks and
//! `/proc` figures they read (thread CPU from `schedstat`, context switches, RSS, the
//! kernel's UDP drop counters), the latency histogram, pinning the worker thread alone
//! on the last CPU, and reading key frame requests out of RTCP.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kolabmeet_engine::crypto::SrtpProfile;
use kolabmeet_testkit::UdpWorker;

use crate::sys::{enable_rx_timestamps, page_size, pin_thread, set_buffers, set_fifo};

/// The name of the engine's worker thread (`WorkerThread::spawn` names it).
pub const WORKER_THREAD: &str = "media-worker-0";
/// The prefix of the load tools' own thread names (their CPU is the clients').
pub const CLIENT_THREAD_PREFIX: &str = "load-";
/// Latency histogram: 1 µs buckets up to 100 ms, then one overflow bucket.
pub const HIST_US: usize = 100_000;

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`, the clock of `SO_TIMESTAMPNS`).
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Resident memory of the process in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_size() as u64)
}

/// Bytes in KiB.
pub fn kib(bytes: f64) -> f64 {
    bytes / 1024.0
}

/// A thread's scheduler statistics (`/proc/self/task/<tid>/schedstat`).
#[derive(Debug, Clone, Copy)]
pub struct ThreadCpu {
    /// Its id.
    pub tid: u32,
    /// Nanoseconds it ran.
    pub run_ns: u64,
    /// Nanoseconds it was runnable but waited for a CPU (other tasks ran there).
    pub wait_ns: u64,
}

/// The scheduler statistics of every thread of the process, by `name#tid`.
pub fn thread_cpu() -> HashMap<String, ThreadCpu> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let path = e.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        let mut f = stat.split_whitespace().map(|v| v.parse::<u64>().ok());
        if let (Some(Some(run_ns)), Some(Some(wait_ns))) = (f.next(), f.next()) {
            out.insert(
                format!("{}#{tid}", comm.trim()),
                ThreadCpu {
                    tid,
                    run_ns,
                    wait_ns,
                },
            );
        }
    }
    out
}

/// The process's CPU time in nanoseconds (`/proc/self/stat` utime + stime).
pub fn process_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 (1-based); `rest` starts at field 3.
    (ticks(11) + ticks(12)) * 10_000_000 // USER_HZ is 100 on Linux
}

/// Voluntary and involuntary context switches of thread `tid` of this process
/// (`/proc/self/task/<tid>/status`): a thread that sleeps in `epoll_wait` and wakes up
/// for work counts one voluntary switch per wake-up.
pub fn context_switches(tid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((
        field("voluntary_ctxt_switches:")?,
        field("nonvoluntary_ctxt_switches:")?,
    ))
}

/// The worker thread's statistics in `threads` (from [`thread_cpu`]).
pub fn worker_thread(threads: &HashMap<String, ThreadCpu>) -> Option<ThreadCpu> {
    let prefix = format!("{WORKER_THREAD}#");
    threads
        .iter()
        .find(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| *v)
}

/// The machine's load averages (`/proc/loadavg`: 1, 5 and 15 minutes), as text.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each CPU's times from `/proc/stat` (`cpuN` lines, in USER_HZ ticks): user, nice,
/// system, idle, iowait, irq, softirq, steal.
pub fn machine_cpu() -> Vec<[u64; 8]> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let mut v = [0u64; 8];
            for (x, f) in v.iter_mut().zip(l.split_whitespace().skip(1)) {
                *x = f.parse().unwrap_or(0);
            }
            v
        })
        .collect()
}

/// CPU times of the threads and the process at one instant, and the worker thread's
/// context switches.
pub struct CpuSnapshot {
    /// When.
    pub at: Instant,
    /// [`thread_cpu`].
    pub threads: HashMap<String, ThreadCpu>,
    /// [`process_cpu_ns`].
    pub process_ns: u64,
    /// [`context_switches`] of the worker thread.
    pub worker_switches: Option<(u64, u64)>,
    /// [`machine_cpu`].
    pub machine: Vec<[u64; 8]>,
}

impl CpuSnapshot {
    /// Reads them now.
    pub fn take() -> Self {
        let threads = thread_cpu();
        let worker_switches = worker_thread(&threads).and_then(|w| context_switches(w.tid));
        CpuSnapshot {
            at: Instant::now(),
            threads,
            process_ns: process_cpu_ns(),
            worker_switches,
            machine: machine_cpu(),
        }
    }

    /// Run and wait nanoseconds of the client threads, together.
    fn clients_ns(&self) -> (u64, u64) {
        self.threads
            .iter()
            .filter(|(k, _)| k.starts_with(CLIENT_THREAD_PREFIX))
            .fold((0, 0), |(r, w), (_, t)| (r + t.run_ns, w + t.wait_ns))
    }
}

/// CPU use between two [`CpuSnapshot`]s, as fractions of one core.
pub struct CpuWindow {
    /// Seconds between the snapshots.
    pub window: f64,
    /// The worker thread's.
    pub worker: f64,
    /// How the worker's was measured.
    pub method: String,
    /// The time the worker thread waited for its CPU while runnable (other tasks ran
    /// there), per second.
    pub worker_wait: f64,
    /// The client threads' (named `load-...`), together.
    pub clients: f64,
    /// The time they waited for a CPU while runnable, per second, together.
    pub clients_wait: f64,
    /// Each client thread's, as `name x.y %`, sorted.
    pub breakdown: Vec<String>,
    /// The whole process's.
    pub process: f64,
    /// The worker thread's voluntary and involuntary context switches per second.
    pub worker_switches: Option<(f64, f64)>,
    /// Each CPU of the machine: busy (all processes), softirq and steal (time the
    /// hypervisor gave to other guests), as text.
    pub machine: Vec<String>,
    /// Each CPU's steal, as a fraction of its time.
    pub steal: Vec<f64>,
}

impl CpuWindow {
    /// The use from `a` to `b`.
    pub fn between(a: &CpuSnapshot, b: &CpuSnapshot) -> Self {
        let window = (b.at - a.at).as_secs_f64();
        let ((run0, wait0), (run1, wait1)) = (a.clients_ns(), b.clients_ns());
        let clients = run1.saturating_sub(run0) as f64 / 1e9 / window;
        let clients_wait = wait1.saturating_sub(wait0) as f64 / 1e9 / window;
        let mut breakdown: Vec<String> = b
            .threads
            .iter()
            .filter(|(k, _)| k.starts_with(CLIENT_THREAD_PREFIX))
            .map(|(k, t)| {
                let before = a.threads.get(k).map_or(0, |x| x.run_ns);
                let name = k.split('#').next().unwrap_or(k);
                format!("{name} {:.1} %", (t.run_ns - before) as f64 / 1e7 / window)
            })
            .collect();
        breakdown.sort();
        let process = (b.process_ns - a.process_ns) as f64 / 1e9 / window;
        let (worker, worker_wait, method) = match (
            worker_thread(&a.threads),
            worker_thread(&b.threads),
        ) {
            (Some(x), Some(y)) => (
                y.run_ns.saturating_sub(x.run_ns) as f64 / 1e9 / window,
                y.wait_ns.saturating_sub(x.wait_ns) as f64 / 1e9 / window,
                format!(
                    "thread {WORKER_THREAD} (tid {}), /proc/self/task/{}/schedstat",
                    y.tid, y.tid
                ),
            ),
            _ => (
                (process - clients).max(0.0),
                f64::NAN,
                "process CPU (/proc/self/stat) minus the client threads' (worker thread not found)"
                    .to_owned(),
            ),
        };
        let worker_switches = match (a.worker_switches, b.worker_switches) {
            (Some((v0, n0)), Some((v1, n1))) => Some((
                v1.saturating_sub(v0) as f64 / window,
                n1.saturating_sub(n0) as f64 / window,
            )),
            _ => None,
        };
        let (mut machine, mut steal) = (Vec::new(), Vec::new());
        for (i, (x, y)) in a.machine.iter().zip(&b.machine).enumerate() {
            let d: Vec<f64> = x
                .iter()
                .zip(y)
                .map(|(p, q)| q.saturating_sub(*p) as f64)
                .collect();
            let total: f64 = d.iter().sum::<f64>().max(1.0);
            let pct = |v: f64| v * 100.0 / total;
            machine.push(format!(
                "cpu{i} busy {:.0} % (softirq {:.1} %, steal {:.1} %)",
                pct(total - d[3] - d[4]),
                pct(d[6]),
                pct(d[7])
            ));
            steal.push(d[7] / total);
        }
        CpuWindow {
            machine,
            steal,
            window,
            worker,
            worker_wait,
            method,
            clients,
            clients_wait,
            breakdown,
            process,
            worker_switches,
        }
    }
}

/// Flags and counters the main thread shares with the client threads.
#[derive(Default)]
pub struct LoadShared {
    /// The senders are to stop.
    pub stop_send: AtomicBool,
    /// The receivers are to stop.
    pub stop_recv: AtomicBool,
    /// The measurement window is open (latency samples count).
    pub measuring: AtomicBool,
    /// Media packets sent by the publishers so far.
    pub sent: AtomicU64,
    /// Media packets received by the subscribers so far.
    pub received: AtomicU64,
}

/// [`LoadShared`]'s counters and the CPU times at one instant.
pub struct LoadSnapshot {
    /// Media packets received so far.
    pub received: u64,
    /// Media packets sent so far.
    pub sent: u64,
    /// CPU times.
    pub cpu: CpuSnapshot,
}

impl LoadShared {
    /// The counters and CPU times now.
    pub fn snapshot(&self) -> LoadSnapshot {
        LoadSnapshot {
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            cpu: CpuSnapshot::take(),
        }
    }
}

/// Starts the media worker (its browsers offer AES-CM only when `aes_cm`, else
/// Chromium's SRTP profiles) and says where it listens.
pub fn start_worker(aes_cm: bool) -> Result<UdpWorker, String> {
    let mut worker = UdpWorker::start().map_err(|e| format!("worker: {e}"))?;
    if aes_cm {
        worker.srtp_profiles = vec![SrtpProfile::Aes128CmHmacSha1_80];
    }
    println!(
        "worker: one media worker thread on {} (this process, pid {})",
        worker.addr(),
        std::process::id()
    );
    Ok(worker)
}

/// Warms up for `warmup` seconds, then measures for `seconds` (latency samples count in
/// between); returns the snapshots at both ends of the window, and tells the senders to
/// stop.
pub fn measure(
    worker: &mut UdpWorker,
    shared: &LoadShared,
    warmup: f64,
    seconds: f64,
) -> (LoadSnapshot, LoadSnapshot) {
    pause(worker, warmup);
    let a = shared.snapshot();
    shared.measuring.store(true, Ordering::Relaxed);
    pause(worker, seconds);
    shared.measuring.store(false, Ordering::Relaxed);
    let b = shared.snapshot();
    shared.stop_send.store(true, Ordering::Relaxed);
    (a, b)
}

/// Waits `secs` seconds, taking the worker's events every 50 ms.
pub fn pause(worker: &mut UdpWorker, secs: f64) {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        worker.drain_events();
    }
}

/// Makes a client's socket ready for a client thread: non-blocking, `buffer` bytes of
/// socket buffers, kernel receive timestamps when `timestamps`. Returns its local port
/// (for the kernel's drop counters).
pub fn client_socket(socket: &UdpSocket, buffer: usize, timestamps: bool) -> Result<u16, String> {
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    set_buffers(socket, buffer);
    if timestamps {
        enable_rx_timestamps(socket).map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    }
    Ok(socket.local_addr().map_err(|e| e.to_string())?.port())
}

/// Where and how the threads run: the worker thread alone on the last CPU, the main
/// thread (and the client threads that call [`Pinning::pin_client`]) on the others;
/// optionally all of them under `SCHED_FIFO`, so that other processes of a shared machine
/// do not delay them (the worker above the clients).
pub struct Pinning {
    /// What was done, for the report.
    pub description: String,
    /// CPUs the process could use before pinning.
    pub cpus: usize,
    client_cpus: Option<Vec<usize>>,
    fifo: bool,
}

/// `SCHED_FIFO` priority of the worker; client threads run below it, at the priority
/// they ask [`Pinning::pin_client`] for ([`SENDER_FIFO`] or [`CLIENT_FIFO`]).
const WORKER_FIFO: i32 = 3;
/// `SCHED_FIFO` priority of a client thread that paces packets (above the other clients,
/// so that it sends on time).
pub const SENDER_FIFO: i32 = 2;
/// `SCHED_FIFO` priority of the other client threads.
pub const CLIENT_FIFO: i32 = 1;

impl Pinning {
    /// Pins the worker thread to the last CPU and the calling thread to the others, when
    /// `pin` and the machine has two CPUs or more; runs the worker under `SCHED_FIFO` when
    /// `fifo`.
    pub fn worker_alone(pin: bool, fifo: bool) -> Result<Self, String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let worker = worker_thread(&thread_cpu());
        let client_cpus: Vec<usize> = (0..cpus.saturating_sub(1)).collect();
        let (mut description, client_cpus) = match worker {
            _ if !pin || cpus < 2 => ("not pinned".to_owned(), None),
            None => ("not pinned: worker thread not found".to_owned(), None),
            Some(w) => {
                pin_thread(w.tid as i32, &[cpus - 1]).map_err(|e| format!("pin worker: {e}"))?;
                pin_thread(0, &client_cpus).map_err(|e| format!("pin main: {e}"))?;
                (
                    format!(
                        "worker thread pinned to CPU {}, client and main threads to CPU(s) {client_cpus:?}",
                        cpus - 1
                    ),
                    Some(client_cpus),
                )
            }
        };
        if fifo {
            let w = worker.ok_or("SCHED_FIFO: worker thread not found")?;
            set_fifo(w.tid as i32, WORKER_FIFO).map_err(|e| format!("SCHED_FIFO: {e}"))?;
            description.push_str(&format!(
                "; worker under SCHED_FIFO priority {WORKER_FIFO}, senders {SENDER_FIFO}, other client threads {CLIENT_FIFO}"
            ));
        }
        Ok(Pinning {
            description,
            cpus,
            client_cpus,
            fifo,
        })
    }

    /// Pins the calling (client) thread off the worker's CPU, if the worker was pinned,
    /// and runs it under `SCHED_FIFO` at `fifo_priority` (below the worker's), if the
    /// worker is.
    pub fn pin_client(&self, fifo_priority: i32) {
        if let Some(cpus) = &self.client_cpus {
            let _ = pin_thread(0, cpus);
        }
        if self.fifo {
            let _ = set_fifo(0, fifo_priority.clamp(1, WORKER_FIFO - 1));
        }
    }
}

/// A histogram of latencies in 1 µs buckets up to [`HIST_US`].
#[derive(Clone)]
pub struct LatencyHistogram {
    buckets: Vec<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyHistogram {
            buckets: vec![0; HIST_US + 1],
        }
    }

    /// Records `ns` nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        self.buckets[((ns / 1000) as usize).min(HIST_US)] += 1;
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (h, x) in self.buckets.iter_mut().zip(&other.buckets) {
            *h += x;
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q` quantile in µs (bucket floor; [`HIST_US`] means beyond it).
    pub fn percentile_us(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (us, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(us as f64);
            }
        }
        None
    }

    /// The `q` quantile in ms, NaN without samples.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.percentile_us(q).map_or(f64::NAN, |us| us / 1000.0)
    }

    /// The `q` quantile as text: `0.123 ms`, `>100.000 ms` or `n/a`.
    pub fn fmt(&self, q: f64) -> String {
        self.percentile_us(q).map_or("n/a".to_owned(), |v| {
            if v as usize >= HIST_US {
                format!(">{:.3} ms", HIST_US as f64 / 1000.0)
            } else {
                format!("{:.3} ms", v / 1000.0)
            }
        })
    }
}

/// `/proc/net/udp` drops per local port.
pub fn udp_drops() -> HashMap<u16, u64> {
    let mut out = HashMap::new();
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(port) = f
            .get(1)
            .and_then(|a| a.split(':').nth(1))
            .and_then(|p| u16::from_str_radix(p, 16).ok())
        else {
            continue;
        };
        let drops = f.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
        *out.entry(port).or_default() += drops;
    }
    out
}

/// `/proc/net/snmp` Udp counters by name.
pub fn udp_snmp() -> HashMap<String, u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
    let mut out = HashMap::new();
    if lines.len() >= 2 {
        for (k, v) in lines[0]
            .split_whitespace()
            .zip(lines[1].split_whitespace())
            .skip(1)
        {
            out.insert(k.to_owned(), v.parse().unwrap_or(0));
        }
    }
    out
}

/// The kernel's UDP drop counters at one instant: per local port and machine-wide.
pub struct UdpDrops {
    ports: HashMap<u16, u64>,
    snmp: HashMap<String, u64>,
}

impl UdpDrops {
    /// Reads them now.
    pub fn take() -> Self {
        UdpDrops {
            ports: udp_drops(),
            snmp: udp_snmp(),
        }
    }

    /// Drops at `ports` since `earlier`.
    pub fn at_ports(&self, earlier: &UdpDrops, ports: &[u16]) -> u64 {
        ports
            .iter()
            .map(|p| {
                let d1 = self.ports.get(p).copied().unwrap_or(0);
                d1.saturating_sub(earlier.ports.get(p).copied().unwrap_or(0))
            })
            .sum()
    }

    /// The machine-wide UDP counter `name` (`RcvbufErrors`, ...) since `earlier`.
    pub fn snmp(&self, earlier: &UdpDrops, name: &str) -> u64 {
        let v1 = self.snmp.get(name).copied().unwrap_or(0);
        v1.saturating_sub(earlier.snmp.get(name).copied().unwrap_or(0))
    }
}

/// The media SSRCs a (decrypted) compound RTCP packet asks key frames of: PLI (PSFB FMT
/// 1) and FIR (PSFB FMT 4) entries.
pub fn key_frame_requests(compound: &[u8]) -> impl Iterator<Item = u32> + '_ {
    use kolabmeet_net::rtcp::{RtcpPacket, packets};
    packets(compound)
        .map_while(Result::ok)
        .flat_map(|p| -> Box<dyn Iterator<Item = u32> + '_> {
            match p {
                RtcpPacket::Pli(pli) => Box::new(std::iter::once(pli.media_ssrc())),
                RtcpPacket::Fir(fir) => Box::new(fir.entries().map(|(ssrc, _)| ssrc)),
                _ => Box::new(std::iter::empty()),
            }
        })
}
