//! The per-packet forwarding path of a worker, against a bare baseline.
//!
//! `worker_core/N`: one SRTP-protected VP8 packet (1100 bytes of payload) from a producer
//! goes through `WorkerCore::handle_datagram` (SRTP unprotect, route, rewrite and SRTP
//! protect for each of N consumers on their own transports), the timers run when due (as
//! the driver does every round), every `poll_transmit()` is drained and the transmits go
//! out with one `sendmmsg` on a real UDP socket to a loopback sink (every transmit is sent
//! to the sink, whatever its in-memory destination; the sink is never read, so the kernel
//! drops what overflows its queue after the loopback path ran).
//!
//! `bare_srtp/N`: the same number of copies of a consumer-shaped packet, each protected
//! with its own `SrtpSession` (same profile as the worker negotiated) and sent with one
//! `sendmmsg` to the same sink: the floor of what forwarding costs.
//!
//! Each runs twice: with Chromium's SRTP offer (the server picks `SRTP_AEAD_AES_256_GCM`,
//! what real calls get) and with AES-CM + HMAC-SHA1 alone; the benchmark ids name the
//! profile (`worker_core/aead256/10`, `bare_srtp/aescm/10`).
//!
//! Throughput is packets out per second (`Throughput::Elements(N)`). Protecting the
//! producer's packet (client side) happens in criterion's untimed setup; sequence
//! numbers increase on every packet (libsrtp replay protection).
//!
//! The transmits' buffers go back to the core after the send (`WorkerCore::recycle`), as
//! the driver does, so the steady state allocates no packet buffer. After each benchmark
//! the datagrams out per packet in are printed, to show that every packet was forwarded.
//!
//! The rig (worker, source, bare loop) is `kolabmeet_benches::forwarding_rig`;
//! `examples/forwarding_cpu.rs` measures the same paths in thread CPU time.
//!
//! ```text
//! cargo bench -p kolabmeet-benches --bench forwarding
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kolabmeet_benches::forwarding_rig::{Bare, COUNTS, OFFERS, Sink, setup, short};

fn forwarding(c: &mut Criterion) {
    let sink = Sink::new();
    let mut group = c.benchmark_group("forwarding");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (offer, n) in OFFERS.iter().flat_map(|o| COUNTS.map(|n| (o, n))) {
        let (mut core, mut source, template, profile) = setup(n, offer, sink.addr);
        let name = |what: &str| format!("{what}/{}", short(profile));
        // Every packet leaves once per consumer (timers may add RTCP now and then).
        for _ in 0..10 {
            let p = source.next_packet();
            assert!(core.forward(p) >= n, "one datagram per consumer");
        }
        group.throughput(Throughput::Elements(n as u64));
        let (packets0, out0) = (core.packets_in, core.datagrams_out);
        group.bench_function(BenchmarkId::new(name("worker_core"), n), |b| {
            b.iter_batched(
                || source.next_packet(),
                |p| black_box(core.forward(p)),
                BatchSize::SmallInput,
            )
        });
        let (packets, out) = (core.packets_in - packets0, core.datagrams_out - out0);
        println!(
            "worker_core/{}/{n}: {packets} packets in, {out} datagrams out ({:.3} per packet, {n} consumers; SRTP profile {})",
            short(profile),
            out as f64 / packets.max(1) as f64,
            profile.name()
        );
        let mut bare = Bare::new(n, profile, template, sink.addr);
        group.bench_function(BenchmarkId::new(name("bare_srtp"), n), |b| {
            b.iter(|| black_box(bare.send_one()))
        });
    }
    group.finish();
}

criterion_group!(benches, forwarding);
criterion_main!(benches);
