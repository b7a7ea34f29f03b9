//! The forwarding paths of `benches/forwarding.rs` measured in thread CPU time, in short
//! interleaved rounds, so that a loaded machine slows all of them alike and their ratios
//! stay meaningful (criterion measures wall time: on a shared machine it also measures
//! the other processes).
//!
//! CPU time per packet out (and the throughputs' ratios), for 1, 10 and 50 consumers and
//! both SRTP profiles:
//! - `worker`: a packet through `WorkerCore::handle_datagram` and out with `sendmmsg`;
//! - `bare`: one SRTP protection and one datagram per consumer;
//! - `floor`: one SRTP decryption per packet, then `bare`: the least a forwarder does.
//!
//! ```text
//! cargo run --release -p kolabmeet-benches --example forwarding_cpu [rounds] [profile/n]
//! ```

use std::time::Duration;

use kolabmeet_benches::forwarding_rig::{Bare, COUNTS, Floor, OFFERS, Sink, setup, short};
use kolabmeet_benches::sys::thread_cpu_time;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let only = args.next();
    let sink = Sink::new();
    for (offer, n) in OFFERS.iter().flat_map(|o| COUNTS.map(|n| (o, n))) {
        let (mut core, mut source, template, profile) = setup(n, offer, sink.addr);
        let name = format!("{}/{n}", short(profile));
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut bare = Bare::new(n, profile, template.clone(), sink.addr);
        let mut floor = Floor::new(n, profile, template, sink.addr);
        let batch = (2000 / n).max(20);
        for _ in 0..10 {
            core.forward(source.next_packet());
        }
        let (mut worker, mut bare_time, mut floor_time) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let packets: Vec<Vec<u8>> = (0..batch).map(|_| source.next_packet()).collect();
            let mut floor_packets = floor.packets(batch);
            let t0 = thread_cpu_time();
            for p in packets {
                core.forward(p);
            }
            let t1 = thread_cpu_time();
            for _ in 0..batch {
                bare.send_one();
            }
            let t2 = thread_cpu_time();
            for p in floor_packets.iter_mut() {
                floor.forward(p);
            }
            let t3 = thread_cpu_time();
            worker += t1 - t0;
            bare_time += t2 - t1;
            floor_time += t3 - t2;
        }
        let out = (rounds * batch * n) as f64;
        let per = |d: Duration| d.as_nanos() as f64 / out;
        let (w, b, f) = (per(worker), per(bare_time), per(floor_time));
        println!(
            "{name:>10}: ns per packet out: worker {w:5.0}, bare {b:5.0}, floor {f:5.0}; \
             throughput: worker {:5.1}% of bare, floor {:5.1}% of bare, worker {:5.1}% of \
             floor  ({:.3} out/in)",
            100.0 * b / w,
            100.0 * b / f,
            100.0 * f / w,
            core.datagrams_out as f64 / core.packets_in as f64,
        );
    }
}
