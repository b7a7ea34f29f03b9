//! What the media load tools (`media-load`, `density-load`) share: the clocks and
//! `/proc` figures they read (RSS, the kernel's UDP drop counters; thread CPU, context
//! switches and pinning are in [`crate::threads`], re-exported here), starting the
//! worker(s), the latency histogram, and reading key frame requests out of RTCP.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kolabmeet_engine::crypto::SrtpProfile;
use kolabmeet_testkit::UdpWorker;

use crate::sys::{enable_rx_timestamps, page_size, set_buffers};
pub use crate::threads::{
    CLIENT_FIFO, CLIENT_THREAD_PREFIX, CpuSnapshot, CpuWindow, Pinning, SENDER_FIFO, ThreadCpu,
    WORKER_THREAD, WORKER_THREAD_PREFIX, context_switches, load_average, machine_cpu,
    process_cpu_ns, thread_cpu, worker_thread, worker_threads,
};

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
    /// Datagrams the workers sent in UDP GSO runs, and the runs (`udp_gso::counts`).
    pub gso: (u64, u64),
}

impl LoadShared {
    /// The counters and CPU times now.
    pub fn snapshot(&self) -> LoadSnapshot {
        LoadSnapshot {
            received: self.received.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            cpu: CpuSnapshot::take(),
            gso: kolabmeet_engine::worker::udp_gso::counts(),
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

/// Starts `workers` media worker threads whose rooms spread past `scale` peers per
/// router (`ROUTER_SCALE_SIZE`), browsers as [`start_worker`]'s, and says where they
/// listen. One worker at the default scale is [`start_worker`].
pub fn start_workers(workers: usize, scale: usize, aes_cm: bool) -> Result<UdpWorker, String> {
    if workers == 1 && scale == kolabmeet_engine::worker::DEFAULT_ROUTER_SCALE_SIZE {
        return start_worker(aes_cm);
    }
    let mut worker =
        UdpWorker::start_workers(workers, scale).map_err(|e| format!("workers: {e}"))?;
    if aes_cm {
        worker.srtp_profiles = vec![SrtpProfile::Aes128CmHmacSha1_80];
    }
    println!(
        "workers: {workers} media worker thread(s) on 127.0.0.1 ports {:?}, ROUTER_SCALE_SIZE {scale} (this process, pid {})",
        worker.engine().ports(),
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
    measure_with(worker, shared, warmup, seconds, |_| {})
}

/// [`measure`], calling `tick` with the worker every [`TICK`] on the way (the overload
/// run samples the workers' shed level and CPU with it).
pub fn measure_with(
    worker: &mut UdpWorker,
    shared: &LoadShared,
    warmup: f64,
    seconds: f64,
    mut tick: impl FnMut(&mut UdpWorker),
) -> (LoadSnapshot, LoadSnapshot) {
    let start = Instant::now();
    let mut wait = |worker: &mut UdpWorker, until: Instant| {
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            pause(worker, left.min(TICK).as_secs_f64());
            tick(worker);
        }
    };
    wait(worker, start + Duration::from_secs_f64(warmup));
    let a = shared.snapshot();
    shared.measuring.store(true, Ordering::Relaxed);
    wait(worker, start + Duration::from_secs_f64(warmup + seconds));
    shared.measuring.store(false, Ordering::Relaxed);
    let b = shared.snapshot();
    shared.stop_send.store(true, Ordering::Relaxed);
    (a, b)
}

/// How often [`measure_with`] calls its `tick`.
pub const TICK: Duration = Duration::from_millis(250);

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
