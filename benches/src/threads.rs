//! The threads of a load tool's process, as the tools measure and place them: the media
//! worker threads (`media-worker-N`, one per worker of the engine) found by name, their
//! CPU time summed and per worker, the client threads' (`load-...`), the machine's CPUs,
//! and where the threads run (pinning, `SCHED_FIFO`).

use std::collections::HashMap;
use std::time::Instant;

use crate::sys::{pin_thread, set_fifo};

/// The name of the engine's first worker thread (`WorkerThread::spawn` names worker `i`
/// `media-worker-i`).
pub const WORKER_THREAD: &str = "media-worker-0";
/// The prefix of the worker threads' names, before their index.
pub const WORKER_THREAD_PREFIX: &str = "media-worker-";
/// The prefix of the load tools' own thread names (their CPU is the clients').
pub const CLIENT_THREAD_PREFIX: &str = "load-";

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

/// The worker thread's statistics in `threads` (from [`thread_cpu`]): the first worker's.
pub fn worker_thread(threads: &HashMap<String, ThreadCpu>) -> Option<ThreadCpu> {
    worker_threads(threads).first().map(|(_, t)| *t)
}

/// Every worker thread's statistics in `threads` (from [`thread_cpu`]), by worker index,
/// in order: threads named `media-worker-<index>` exactly (not a replacement's
/// `-respawn` starter).
pub fn worker_threads(threads: &HashMap<String, ThreadCpu>) -> Vec<(usize, ThreadCpu)> {
    let mut out: Vec<(usize, ThreadCpu)> = threads
        .iter()
        .filter_map(|(k, t)| {
            let name = k.split('#').next()?;
            let index = name.strip_prefix(WORKER_THREAD_PREFIX)?.parse().ok()?;
            Some((index, *t))
        })
        .collect();
    out.sort_by_key(|(i, t)| (*i, t.tid));
    out
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

/// CPU times of the threads and the process at one instant, and the worker threads'
/// context switches.
pub struct CpuSnapshot {
    /// When.
    pub at: Instant,
    /// [`thread_cpu`].
    pub threads: HashMap<String, ThreadCpu>,
    /// [`process_cpu_ns`].
    pub process_ns: u64,
    /// [`context_switches`] of the worker threads, summed.
    pub worker_switches: Option<(u64, u64)>,
    /// [`machine_cpu`].
    pub machine: Vec<[u64; 8]>,
}

impl CpuSnapshot {
    /// Reads them now.
    pub fn take() -> Self {
        let threads = thread_cpu();
        let worker_switches = worker_threads(&threads)
            .iter()
            .map(|(_, w)| context_switches(w.tid))
            .reduce(|a, b| Some((a?.0 + b?.0, a?.1 + b?.1)))
            .flatten();
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
    /// The worker threads', summed.
    pub worker: f64,
    /// Each worker thread's, by worker index (empty when none was found).
    pub workers: Vec<(usize, f64)>,
    /// How the worker's was measured.
    pub method: String,
    /// The time the worker threads waited for their CPU while runnable (other tasks ran
    /// there), per second, summed.
    pub worker_wait: f64,
    /// The client threads' (named `load-...`), together.
    pub clients: f64,
    /// The time they waited for a CPU while runnable, per second, together.
    pub clients_wait: f64,
    /// Each client thread's, as `name x.y %`, sorted.
    pub breakdown: Vec<String>,
    /// The whole process's.
    pub process: f64,
    /// The worker threads' voluntary and involuntary context switches per second, summed.
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
        let (w0, w1) = (worker_threads(&a.threads), worker_threads(&b.threads));
        let workers: Vec<(usize, f64, f64)> = w1
            .iter()
            .filter_map(|(i, y)| {
                let (_, x) = w0.iter().find(|(_, x)| x.tid == y.tid)?;
                Some((
                    *i,
                    y.run_ns.saturating_sub(x.run_ns) as f64 / 1e9 / window,
                    y.wait_ns.saturating_sub(x.wait_ns) as f64 / 1e9 / window,
                ))
            })
            .collect();
        let (worker, worker_wait, method) = match workers.as_slice() {
            [] => (
                (process - clients).max(0.0),
                f64::NAN,
                "process CPU (/proc/self/stat) minus the client threads' (worker thread not found)"
                    .to_owned(),
            ),
            [(_, run, wait)] => {
                let tid = w1[0].1.tid;
                (
                    *run,
                    *wait,
                    format!("thread {WORKER_THREAD} (tid {tid}), /proc/self/task/{tid}/schedstat"),
                )
            }
            all => (
                all.iter().map(|w| w.1).sum(),
                all.iter().map(|w| w.2).sum(),
                format!(
                    "the {} threads {WORKER_THREAD_PREFIX}* summed (tids {}), /proc/self/task/<tid>/schedstat",
                    all.len(),
                    w1.iter()
                        .map(|(_, t)| t.tid.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        let workers = workers.iter().map(|(i, run, _)| (*i, *run)).collect();
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
            workers,
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

/// Where and how the threads run: the worker threads alone on the last CPU(s), the main
/// thread (and the client threads that call [`Pinning::pin_client`]) on the others;
/// optionally all of them under `SCHED_FIFO`, so that other processes of a shared machine
/// do not delay them (the workers above the clients).
pub struct Pinning {
    /// What was done, for the report.
    pub description: String,
    /// CPUs the process could use before pinning.
    pub cpus: usize,
    /// CPUs the worker threads run on (all of them when not pinned).
    pub worker_cpus: usize,
    client_cpus: Option<Vec<usize>>,
    fifo: bool,
}

/// `SCHED_FIFO` priority of the workers; client threads run below it, at the priority
/// they ask [`Pinning::pin_client`] for ([`SENDER_FIFO`] or [`CLIENT_FIFO`]).
const WORKER_FIFO: i32 = 3;
/// `SCHED_FIFO` priority of a client thread that paces packets (above the other clients,
/// so that it sends on time).
pub const SENDER_FIFO: i32 = 2;
/// `SCHED_FIFO` priority of the other client threads.
pub const CLIENT_FIFO: i32 = 1;

impl Pinning {
    /// Pins the worker threads to the last CPUs and the calling thread to the others,
    /// when `pin` and the machine has two CPUs or more: with W workers and more than W
    /// CPUs, each worker alone on one of the last W CPUs; with fewer, all of them
    /// together on the last CPU (so the clients keep the others). Runs the workers under
    /// `SCHED_FIFO` when `fifo`.
    pub fn worker_alone(pin: bool, fifo: bool) -> Result<Self, String> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = worker_threads(&thread_cpu());
        let own_cpus = cpus > workers.len();
        let worker_cpus = if own_cpus { workers.len() } else { 1 };
        let client_cpus: Vec<usize> = (0..cpus.saturating_sub(worker_cpus)).collect();
        let (mut description, client_cpus, worker_cpus) = match workers.as_slice() {
            _ if !pin || cpus < 2 => ("not pinned".to_owned(), None, cpus),
            [] => ("not pinned: worker thread not found".to_owned(), None, cpus),
            [(_, w)] => {
                pin_thread(w.tid as i32, &[cpus - 1]).map_err(|e| format!("pin worker: {e}"))?;
                pin_thread(0, &client_cpus).map_err(|e| format!("pin main: {e}"))?;
                (
                    format!(
                        "worker thread pinned to CPU {}, client and main threads to CPU(s) {client_cpus:?}",
                        cpus - 1
                    ),
                    Some(client_cpus),
                    1,
                )
            }
            all => {
                let mut placed = Vec::new();
                for (k, (i, w)) in all.iter().enumerate() {
                    let cpu = if own_cpus { cpus - 1 - k } else { cpus - 1 };
                    pin_thread(w.tid as i32, &[cpu]).map_err(|e| format!("pin worker {i}: {e}"))?;
                    placed.push(format!("{i} on CPU {cpu}"));
                }
                pin_thread(0, &client_cpus).map_err(|e| format!("pin main: {e}"))?;
                (
                    format!(
                        "{} worker threads pinned ({}{}), client and main threads to CPU(s) {client_cpus:?}",
                        all.len(),
                        placed.join(", "),
                        if own_cpus {
                            ""
                        } else {
                            ": together, the machine has too few CPUs for one each"
                        }
                    ),
                    Some(client_cpus),
                    worker_cpus,
                )
            }
        };
        if fifo {
            if workers.is_empty() {
                return Err("SCHED_FIFO: worker thread not found".into());
            }
            for (_, w) in &workers {
                set_fifo(w.tid as i32, WORKER_FIFO).map_err(|e| format!("SCHED_FIFO: {e}"))?;
            }
            description.push_str(&format!(
                "; {} under SCHED_FIFO priority {WORKER_FIFO}, senders {SENDER_FIFO}, other client threads {CLIENT_FIFO}",
                if workers.len() == 1 { "worker" } else { "workers" }
            ));
        }
        Ok(Pinning {
            description,
            cpus,
            worker_cpus,
            client_cpus,
            fifo,
        })
    }

    /// Pins the calling (client) thread off the workers' CPUs, if the workers were
    /// pinned, and runs it under `SCHED_FIFO` at `fifo_priority` (below the workers'), if
    /// the workers are.
    pub fn pin_client(&self, fifo_priority: i32) {
        if let Some(cpus) = &self.client_cpus {
            let _ = pin_thread(0, cpus);
        }
        if self.fifo {
            let _ = set_fifo(0, fifo_priority.clamp(1, WORKER_FIFO - 1));
        }
    }
}
