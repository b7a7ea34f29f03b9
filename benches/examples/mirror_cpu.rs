//! Issue 16's piping cost in thread CPU time: one VP8 producer and `n` consumers on its
//! own worker core (`local`) or on another core that mirrors it (`far`), in short
//! interleaved rounds (see `forwarding_cpu`), for 1, 10 and 50 consumers; CPU time per
//! packet out and the ratio far / local (target: at most 1.15).
//!
//! ```text
//! cargo run --release -p kolabmeet-benches --example mirror_cpu [rounds] [n]
//! ```

use std::time::Duration;

use kolabmeet_benches::forwarding_rig::{COUNTS, Sink};
use kolabmeet_benches::mirror_rig::MirrorRig;
use kolabmeet_benches::sys::thread_cpu_time;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let only: Option<usize> = args.next().and_then(|a| a.parse().ok());
    let sink = Sink::new();
    for n in COUNTS {
        if only.is_some_and(|o| o != n) {
            continue;
        }
        let (mut local, mut local_src) = MirrorRig::local(n, sink.addr);
        let (mut far, mut far_src) = MirrorRig::far(n, sink.addr);
        let batch = (2000 / n).max(20);
        for _ in 0..10 {
            local.forward(local_src.next_packet());
            far.forward(far_src.next_packet());
        }
        let (mut local_time, mut far_time) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let a: Vec<Vec<u8>> = (0..batch).map(|_| local_src.next_packet()).collect();
            let b: Vec<Vec<u8>> = (0..batch).map(|_| far_src.next_packet()).collect();
            let t0 = thread_cpu_time();
            for p in a {
                local.forward(p);
            }
            let t1 = thread_cpu_time();
            for p in b {
                far.forward(p);
            }
            let t2 = thread_cpu_time();
            local_time += t1 - t0;
            far_time += t2 - t1;
        }
        let out = (rounds * batch * n) as f64;
        let per = |d: Duration| d.as_nanos() as f64 / out;
        let (l, f) = (per(local_time), per(far_time));
        println!(
            "{n:>3} consumers: ns per packet out: local {l:5.0}, far {f:5.0}; far/local {:.3} \
             (out/in local {:.3}, far {:.3})",
            f / l,
            local.datagrams_out as f64 / local.packets_in as f64,
            far.datagrams_out as f64 / far.packets_in as f64,
        );
    }
}
