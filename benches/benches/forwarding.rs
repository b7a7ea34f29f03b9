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
//! ```text
//! cargo bench -p kolabmeet-benches --bench forwarding
//! ```

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kolabmeet_benches::sys::{MmsgSender, set_buffers};
use kolabmeet_engine::crypto::{SrtpKeyMaterial, SrtpProfile, SrtpSession};
use kolabmeet_engine::transport::Tuple;
use kolabmeet_testkit::{
    CHROMIUM_SRTP_PROFILES, Media, PacketMaker, Sim, create_room, setup_consumers, setup_producer,
    tuple,
};
use rand::RngCore;

/// What the producer's and consumers' browsers offer: Chromium's list (AES-CM first; the
/// server's preference picks `SRTP_AEAD_AES_256_GCM`, as in real calls), and AES-CM alone
/// (what a server that follows the client's order, or an old client, ends up with).
const OFFERS: [&[SrtpProfile]; 2] = [&CHROMIUM_SRTP_PROFILES, &[SrtpProfile::Aes128CmHmacSha1_80]];

/// A short name of a profile for benchmark ids.
fn short(profile: SrtpProfile) -> &'static str {
    match profile {
        SrtpProfile::AeadAes256Gcm => "aead256",
        SrtpProfile::AeadAes128Gcm => "aead128",
        SrtpProfile::Aes128CmHmacSha1_80 => "aescm",
    }
}

/// Consumers per producer.
const COUNTS: [usize; 3] = [1, 10, 50];
/// VP8 payload bytes per packet.
const PAYLOAD: usize = 1100;
/// The producer's SSRC.
const SSRC: u32 = 1111;

/// Where every datagram goes: a bound socket nobody reads.
struct Sink {
    _socket: UdpSocket,
    addr: SocketAddr,
}

impl Sink {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("sink socket");
        let addr = socket.local_addr().expect("sink address");
        Sink {
            _socket: socket,
            addr,
        }
    }
}

/// A worker core with one VP8 producer and `n` consumers, in memory.
struct Core {
    worker: Sim,
    from: Tuple,
    packets_in: u64,
    datagrams_out: u64,
    socket: UdpSocket,
    sink: SocketAddr,
    sender: MmsgSender,
    out: Vec<Vec<u8>>,
}

/// The producer's client side: makes and protects its packets.
struct Source {
    maker: PacketMaker,
    srtp: SrtpSession,
    plain: Vec<u8>,
}

impl Source {
    /// The next protected packet.
    fn next(&mut self) -> Vec<u8> {
        self.maker.next(0, &mut self.plain);
        let mut p = self.plain.clone();
        self.srtp.protect_rtp(&mut p).expect("protect");
        p
    }
}

impl Core {
    /// One packet through the worker and out of the socket; how many datagrams left.
    fn forward(&mut self, mut packet: Vec<u8>) -> usize {
        let now = Instant::now();
        let core = &mut self.worker.core;
        core.handle_datagram(now, self.from, &mut packet);
        if core.poll_timeout().is_some_and(|t| t <= now) {
            core.handle_timeout(now);
        }
        while let Some(t) = core.poll_transmit() {
            self.out.push(t.data);
        }
        while core.poll_event().is_some() {}
        let n = self
            .sender
            .send_to(&self.socket, self.sink, &self.out)
            .expect("sendmmsg");
        for buf in self.out.drain(..) {
            core.recycle(buf);
        }
        self.packets_in += 1;
        self.datagrams_out += n as u64;
        n
    }
}

/// Sets up the core; returns it, the producer's side, a packet as consumers get it
/// (decrypted) and the SRTP profile the transports negotiated.
fn setup(
    n: usize,
    offer: &[SrtpProfile],
    sink: SocketAddr,
) -> (Core, Source, Vec<u8>, SrtpProfile) {
    let mut worker = Sim::new();
    worker.srtp_profiles = offer.to_vec();
    let room = create_room(&mut worker);
    let publisher = setup_producer(&mut worker, room, Media::Vp8, SSRC).expect("producer");
    let subscribers = setup_consumers(&mut worker, room, publisher.producer, n).expect("consumers");
    // The first packet (a key frame) through the in-memory browsers: every consumer
    // must get it.
    let mut maker = PacketMaker::new(Media::Vp8, SSRC, PAYLOAD);
    let mut first = Vec::new();
    maker.next(0, &mut first);
    worker.send(publisher.peer.client, first);
    for s in &subscribers {
        let got = worker.endpoint(s.peer.client).rtp.len();
        assert_eq!(got, 1, "every consumer gets the key frame");
    }
    let template = worker.endpoint(subscribers[0].peer.client).rtp[0].clone();
    let srtp = worker
        .endpoint(publisher.peer.client)
        .browser
        .take_srtp()
        .expect("producer SRTP");
    let profile = srtp.profile();
    let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
    set_buffers(&socket, 4 << 20);
    let from = tuple(publisher.peer.client);
    let core = Core {
        worker,
        from,
        packets_in: 0,
        datagrams_out: 0,
        socket,
        sink,
        sender: MmsgSender::new(),
        out: Vec::with_capacity(n + 8),
    };
    let source = Source {
        maker,
        srtp,
        plain: Vec::with_capacity(PAYLOAD + 64),
    };
    (core, source, template, profile)
}

/// `n` outbound SRTP contexts with random keys, and their buffers.
struct Bare {
    sessions: Vec<SrtpSession>,
    bufs: Vec<Vec<u8>>,
    template: Vec<u8>,
    seq: u16,
    socket: UdpSocket,
    sink: SocketAddr,
    sender: MmsgSender,
}

impl Bare {
    fn new(n: usize, profile: SrtpProfile, template: Vec<u8>, sink: SocketAddr) -> Self {
        let mut rng = rand::rng();
        let mut keys = || {
            let mut key = vec![0; profile.key_len()];
            let mut salt = vec![0; profile.salt_len()];
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut salt);
            SrtpKeyMaterial { key, salt }
        };
        let sessions = (0..n)
            .map(|_| {
                let (local, remote) = (keys(), keys());
                SrtpSession::new(profile, &local, &remote).expect("SRTP session")
            })
            .collect();
        let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
        set_buffers(&socket, 4 << 20);
        Bare {
            sessions,
            bufs: vec![Vec::with_capacity(template.len() + 64); n],
            template,
            seq: 1,
            socket,
            sink,
            sender: MmsgSender::new(),
        }
    }

    fn send_one(&mut self) -> usize {
        self.seq = self.seq.wrapping_add(1);
        for (i, (s, buf)) in self.sessions.iter_mut().zip(&mut self.bufs).enumerate() {
            buf.clear();
            buf.extend_from_slice(&self.template);
            buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
            buf[8..12].copy_from_slice(&(1000 + i as u32).to_be_bytes());
            s.protect_rtp(buf).expect("protect");
        }
        self.sender
            .send_to(&self.socket, self.sink, &self.bufs)
            .expect("sendmmsg")
    }
}

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
            let p = source.next();
            assert!(core.forward(p) >= n, "one datagram per consumer");
        }
        group.throughput(Throughput::Elements(n as u64));
        let (packets0, out0) = (core.packets_in, core.datagrams_out);
        group.bench_function(BenchmarkId::new(name("worker_core"), n), |b| {
            b.iter_batched(
                || source.next(),
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
