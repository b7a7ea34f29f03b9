//! The `density-load` tool's figures and sweeps (`src/bin/density_load.rs` runs the
//! meetings; this is what it reports and how it searches): the summary line of one run,
//! which a sweep reads back from a child process, the limits a run must meet (p99 added
//! latency, no loss), and the search itself: doubling from a start until a step misses,
//! then bisecting between the last step that met the limits and the first that did not.
//! A sweep goes over M (meetings of three on one worker, issue 15) or over N (one meeting
//! of N participants on W workers, issue 16).

/// A worker this busy (fraction of a core it runs on) counts as saturated (under
/// `--fifo` the kernel's real-time throttling caps it at 95 %).
pub const SATURATED: f64 = 0.9;

/// The figures of one run, as the summary line gives them (the sweep reads them back).
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Meetings.
    pub meetings: usize,
    /// Participants per meeting.
    pub participants: usize,
    /// Media worker threads.
    pub workers: usize,
    /// Peers per router before a room spreads (`ROUTER_SCALE_SIZE`).
    pub scale: usize,
    /// CPUs the worker threads ran on (1 when pinned together).
    pub worker_cpus: usize,
    /// Media packets all receive transports got per second.
    pub forwarded_pps: f64,
    /// The worker threads' CPU, summed, in % of one core.
    pub worker_cpu_pct: f64,
    /// Each worker thread's CPU in % of one core, by worker index.
    pub worker_pcts: Vec<f64>,
    /// Worker CPU per meeting, ms per second.
    pub cpu_ms_per_meeting: f64,
    /// Worker CPU (all workers) per forwarded packet, µs.
    pub us_per_packet: f64,
    /// The worker threads' voluntary context switches per second, summed.
    pub wakeups_per_s: f64,
    /// Added latency p50, ms.
    pub p50_ms: f64,
    /// Added latency p99, ms.
    pub p99_ms: f64,
    /// Largest added latency, ms.
    pub max_ms: f64,
    /// Packets lost.
    pub lost: u64,
    /// Share of received video from the top layer, %.
    pub top_layer_pct: f64,
    /// The client threads' CPU, % of one core.
    pub clients_cpu_pct: f64,
    /// Sender lateness p99, ms.
    pub late_p99_ms: f64,
    /// Time the worker threads waited for their CPU while runnable, ms per second.
    pub worker_wait_ms: f64,
    /// The 1-minute load average after the run.
    pub load1: f64,
    /// The largest steal of any CPU in the window, %.
    pub steal_pct: f64,
}

impl Summary {
    /// The summary line (`summary: key=value ...`).
    pub fn line(&self) -> String {
        let pcts: Vec<String> = self.worker_pcts.iter().map(|p| format!("{p:.2}")).collect();
        format!(
            "summary: meetings={} forwarded_pps={:.0} worker_cpu_pct={:.2} cpu_ms_per_meeting={:.3} us_per_packet={:.2} wakeups_per_s={:.0} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} lost={} top_layer_pct={:.1} clients_cpu_pct={:.1} late_p99_ms={:.3} worker_wait_ms={:.2} load1={:.2} steal_pct={:.1} participants={} workers={} scale={} worker_cpus={} worker_pcts={}",
            self.meetings,
            self.forwarded_pps,
            self.worker_cpu_pct,
            self.cpu_ms_per_meeting,
            self.us_per_packet,
            self.wakeups_per_s,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.lost,
            self.top_layer_pct,
            self.clients_cpu_pct,
            self.late_p99_ms,
            self.worker_wait_ms,
            self.load1,
            self.steal_pct,
            self.participants,
            self.workers,
            self.scale,
            self.worker_cpus,
            if pcts.is_empty() {
                "-".to_owned()
            } else {
                pcts.join(",")
            }
        )
    }

    /// Reads a [`Summary::line`] back.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.strip_prefix("summary: ")?;
        let mut s = Summary::default();
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=')?;
            let f = || v.parse::<f64>().ok();
            match k {
                "meetings" => s.meetings = v.parse().ok()?,
                "forwarded_pps" => s.forwarded_pps = f()?,
                "worker_cpu_pct" => s.worker_cpu_pct = f()?,
                "cpu_ms_per_meeting" => s.cpu_ms_per_meeting = f()?,
                "us_per_packet" => s.us_per_packet = f()?,
                "wakeups_per_s" => s.wakeups_per_s = f()?,
                "p50_ms" => s.p50_ms = f()?,
                "p99_ms" => s.p99_ms = f()?,
                "max_ms" => s.max_ms = f()?,
                "lost" => s.lost = v.parse().ok()?,
                "top_layer_pct" => s.top_layer_pct = f()?,
                "clients_cpu_pct" => s.clients_cpu_pct = f()?,
                "late_p99_ms" => s.late_p99_ms = f()?,
                "worker_wait_ms" => s.worker_wait_ms = f()?,
                "load1" => s.load1 = f()?,
                "steal_pct" => s.steal_pct = f()?,
                "participants" => s.participants = v.parse().ok()?,
                "workers" => s.workers = v.parse().ok()?,
                "scale" => s.scale = v.parse().ok()?,
                "worker_cpus" => s.worker_cpus = v.parse().ok()?,
                "worker_pcts" if v != "-" => {
                    s.worker_pcts = v
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .ok()?
                }
                _ => {}
            }
        }
        Some(s)
    }

    /// Each worker's share of the workers' CPU, as `52/48 %` (empty with one worker).
    pub fn worker_shares(&self) -> String {
        let total: f64 = self.worker_pcts.iter().sum();
        if self.worker_pcts.len() < 2 || total <= 0.0 {
            return String::new();
        }
        let shares: Vec<String> = self
            .worker_pcts
            .iter()
            .map(|p| format!("{:.0}", p * 100.0 / total))
            .collect();
        format!("{} %", shares.join("/"))
    }

    /// Whether the workers were saturated: busier than [`SATURATED`] of the CPUs they had.
    pub fn saturated(&self) -> bool {
        self.worker_cpu_pct >= SATURATED * 100.0 * self.worker_cpus.max(1) as f64
    }
}

/// What a sweep searches and what a step must meet.
#[derive(Debug, Clone)]
pub struct SweepLimits {
    /// The first value tried.
    pub from: usize,
    /// The largest value tried.
    pub max: usize,
    /// Bisect until the gap is within this fraction of the value that met (at least 1).
    pub resolution: f64,
    /// p99 added latency at most this, ms.
    pub p99_ms: f64,
    /// A step that misses while the hypervisor stole more than this % of a CPU ...
    pub max_steal: f64,
    /// ... or while the workers waited more than this many ms/s for their CPU ...
    pub max_wait: f64,
    /// ... is run again, up to this many times.
    pub retries: usize,
}

/// What a sweep goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepOver {
    /// M meetings (of the tool's participants each).
    Meetings,
    /// N participants of one meeting.
    Participants,
}

/// Why a step did not meet the limits, if it did not.
pub fn miss(p99_limit_ms: f64, s: &Summary) -> Option<String> {
    if s.p99_ms.is_nan() {
        return Some("no latency samples".into());
    }
    if s.p99_ms > p99_limit_ms {
        return Some(format!("p99 {:.3} ms > {} ms", s.p99_ms, p99_limit_ms));
    }
    if s.lost > 0 {
        return Some(format!("{} packets lost", s.lost));
    }
    None
}

/// The table's header for a sweep over `over`.
pub fn header(over: SweepOver) -> String {
    let tail = format!(
        "{:>10} {:>8} {:>12} {:>9} {:>9} {:>8} {:>8} {:>8} {:>6} {:>7} {:>8} {:>8} {:>6} {:>6}",
        "fwd pps",
        "wrk cpu%",
        "ms/s per M",
        "us/pkt",
        "wakeup/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "r1 %",
        "cli cpu%",
        "late p99",
        "steal%",
        "wait"
    );
    match over {
        SweepOver::Meetings => format!("{:>6} {tail}  verdict", "M"),
        SweepOver::Participants => {
            format!(
                "{:>4} {:>2} {:>4} {tail} {:>9}  verdict",
                "N", "W", "S", "shares"
            )
        }
    }
}

/// One row of the table.
pub fn row(over: SweepOver, s: &Summary, verdict: &str) -> String {
    let tail = format!(
        "{:>10.0} {:>8.2} {:>12.3} {:>9.2} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>6} {:>7.1} {:>8.1} {:>8.3} {:>6.1} {:>6.0}",
        s.forwarded_pps,
        s.worker_cpu_pct,
        s.cpu_ms_per_meeting,
        s.us_per_packet,
        s.wakeups_per_s,
        s.p50_ms,
        s.p99_ms,
        s.max_ms,
        s.lost,
        s.top_layer_pct,
        s.clients_cpu_pct,
        s.late_p99_ms,
        s.steal_pct,
        s.worker_wait_ms
    );
    match over {
        SweepOver::Meetings => format!("{:>6} {tail}  {verdict}", s.meetings),
        SweepOver::Participants => format!(
            "{:>4} {:>2} {:>4} {tail} {:>9}  {verdict}",
            s.participants,
            s.workers,
            s.scale,
            s.worker_shares()
        ),
    }
}

/// The steps of a sweep and where it ended.
#[derive(Debug, Default)]
pub struct SweepResult {
    /// Every step run (after retries), with why it missed.
    pub steps: Vec<(Summary, Option<String>)>,
    /// The largest value that met the limits.
    pub pass: Option<usize>,
    /// The smallest value that missed them.
    pub fail: Option<usize>,
}

impl SweepResult {
    /// The step that met the limits at the largest value.
    pub fn best(&self, over: SweepOver) -> Option<&Summary> {
        let best = self.pass?;
        self.steps
            .iter()
            .rev()
            .find(|(s, why)| why.is_none() && key(over, s) == best)
            .map(|(s, _)| s)
    }
}

/// The value a step was run at.
fn key(over: SweepOver, s: &Summary) -> usize {
    match over {
        SweepOver::Meetings => s.meetings,
        SweepOver::Participants => s.participants,
    }
}

/// Runs the sweep: `step(v)` runs one fresh child at value `v` (from `limits.from`,
/// doubling until a step misses, then bisecting), printing a table row per step. A step
/// that misses while the machine disturbed it (steal, or the workers waiting for their
/// CPU while not saturated) is run again.
pub fn sweep(
    limits: &SweepLimits,
    over: SweepOver,
    mut step: impl FnMut(usize) -> Result<Summary, String>,
) -> Result<SweepResult, String> {
    println!("{}", header(over));
    let mut result = SweepResult::default();
    let mut run_step = |v: usize, result: &mut SweepResult| -> Result<bool, String> {
        let mut s = step(v)?;
        let mut why = miss(limits.p99_ms, &s);
        let mut tries = 0;
        // Saturated workers wait for their CPU too (under --fifo, the kernel's real-time
        // throttling holds them back for 5 % of each second): that is no disturbance.
        let disturbed = |s: &Summary| {
            !s.saturated() && (s.steal_pct > limits.max_steal || s.worker_wait_ms > limits.max_wait)
        };
        while why.is_some() && disturbed(&s) && tries < limits.retries {
            println!(
                "{:>6} missed ({}) while the hypervisor stole {:.1} % of a CPU and the worker waited {:.0} ms/s for its CPU: again",
                v,
                why.as_deref().unwrap_or_default(),
                s.steal_pct,
                s.worker_wait_ms
            );
            tries += 1;
            s = step(v)?;
            why = miss(limits.p99_ms, &s);
        }
        println!("{}", row(over, &s, why.as_deref().unwrap_or("met")));
        let ok = why.is_none();
        result.steps.push((s, why));
        Ok(ok)
    };
    let mut v = limits.from;
    loop {
        if run_step(v, &mut result)? {
            result.pass = Some(v);
            if v >= limits.max {
                break;
            }
            v = (v * 2).min(limits.max);
        } else {
            result.fail = Some(v);
            break;
        }
    }
    while let (Some(lo), Some(hi)) = (result.pass, result.fail) {
        let resolution = ((lo as f64 * limits.resolution).ceil() as usize).max(1);
        if hi - lo <= resolution {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        if run_step(mid, &mut result)? {
            result.pass = Some(mid);
        } else {
            result.fail = Some(mid);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_reads_back() {
        let s = Summary {
            meetings: 1,
            participants: 12,
            workers: 2,
            scale: 6,
            worker_cpus: 1,
            forwarded_pps: 15_000.0,
            worker_cpu_pct: 40.5,
            worker_pcts: vec![20.25, 20.25],
            p99_ms: 0.5,
            lost: 0,
            ..Summary::default()
        };
        let back = Summary::parse(&s.line()).expect("parses");
        assert_eq!(
            (
                back.participants,
                back.workers,
                back.scale,
                back.worker_cpus
            ),
            (12, 2, 6, 1)
        );
        assert_eq!(back.worker_pcts, vec![20.25, 20.25]);
        assert_eq!(back.worker_shares(), "50/50 %");
        assert!(!back.saturated());
        // A line from before the big-room fields still reads.
        let old = "summary: meetings=10 forwarded_pps=6500 worker_cpu_pct=20.00 p99_ms=0.3 lost=0";
        let s = Summary::parse(old).expect("parses");
        assert_eq!((s.meetings, s.participants), (10, 0));
        assert!(s.worker_pcts.is_empty());
    }

    #[test]
    fn sweep_doubles_then_bisects_to_the_largest_value_that_meets() {
        let limits = SweepLimits {
            from: 4,
            max: 1000,
            resolution: 0.0,
            p99_ms: 5.0,
            max_steal: 3.0,
            max_wait: 50.0,
            retries: 0,
        };
        let mut tried = Vec::new();
        let r = sweep(&limits, SweepOver::Participants, |n| {
            tried.push(n);
            Ok(Summary {
                participants: n,
                p99_ms: if n <= 21 { 1.0 } else { 9.0 },
                ..Summary::default()
            })
        })
        .unwrap();
        assert_eq!((r.pass, r.fail), (Some(21), Some(22)));
        assert_eq!(&tried[..4], &[4, 8, 16, 32]);
        assert_eq!(r.best(SweepOver::Participants).unwrap().participants, 21);
    }
}
