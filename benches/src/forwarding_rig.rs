//! The rig of the forwarding measurements (`benches/forwarding.rs`, criterion, and
//! `examples/forwarding_cpu.rs`, thread CPU time): a worker core in memory with one VP8
//! producer and `n` consumers whose transmits leave through one `sendmmsg` to a loopback
//! sink ([`Core`]), the producer's client side ([`Source`]), the bare loop of what
//! forwarding cannot avoid, one SRTP protection and one datagram per consumer ([`Bare`]),
//! and the floor of a forwarder, one SRTP decryption more ([`Floor`]).

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use kolabmeet_engine::crypto::{SrtpKeyMaterial, SrtpProfile, SrtpSession};
use kolabmeet_engine::transport::Tuple;
use kolabmeet_testkit::{
    CHROMIUM_SRTP_PROFILES, Media, PacketMaker, Sim, create_room, setup_consumers, setup_producer,
    tuple,
};
use rand::RngCore;

use crate::sys::{MmsgSender, set_buffers};

/// What the producer's and consumers' browsers offer: Chromium's list (AES-CM first; the
/// server's preference picks `SRTP_AEAD_AES_256_GCM`, as in real calls), and AES-CM alone
/// (what a server that follows the client's order, or an old client, ends up with).
pub const OFFERS: [&[SrtpProfile]; 2] =
    [&CHROMIUM_SRTP_PROFILES, &[SrtpProfile::Aes128CmHmacSha1_80]];

/// A short name of a profile for benchmark ids.
pub fn short(profile: SrtpProfile) -> &'static str {
    match profile {
        SrtpProfile::AeadAes256Gcm => "aead256",
        SrtpProfile::AeadAes128Gcm => "aead128",
        SrtpProfile::Aes128CmHmacSha1_80 => "aescm",
    }
}

/// Consumers per producer.
pub const COUNTS: [usize; 3] = [1, 10, 50];
/// VP8 payload bytes per packet.
pub const PAYLOAD: usize = 1100;
/// The producer's SSRC.
pub const SSRC: u32 = 1111;

/// Where every datagram goes: a bound socket nobody reads.
pub struct Sink {
    _socket: UdpSocket,
    /// Its address.
    pub addr: SocketAddr,
}

impl Default for Sink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink {
    /// A bound socket on 127.0.0.1.
    pub fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("sink socket");
        let addr = socket.local_addr().expect("sink address");
        Sink {
            _socket: socket,
            addr,
        }
    }
}

/// A worker core with one VP8 producer and `n` consumers, in memory.
pub struct Core {
    /// The worker core and its in-memory browsers.
    pub worker: Sim,
    from: Tuple,
    /// Packets handed to the core.
    pub packets_in: u64,
    /// Datagrams that left the socket.
    pub datagrams_out: u64,
    socket: UdpSocket,
    sink: SocketAddr,
    sender: MmsgSender,
    out: Vec<Vec<u8>>,
}

/// The producer's client side: makes and protects its packets.
pub struct Source {
    maker: PacketMaker,
    srtp: SrtpSession,
    plain: Vec<u8>,
}

impl Source {
    /// A producer's client side: `maker`'s packets protected with `srtp`.
    pub fn new(maker: PacketMaker, srtp: SrtpSession) -> Self {
        Source {
            maker,
            srtp,
            plain: Vec::with_capacity(PAYLOAD + 64),
        }
    }

    /// The next protected packet.
    pub fn next_packet(&mut self) -> Vec<u8> {
        self.maker.next(0, &mut self.plain);
        let mut p = self.plain.clone();
        self.srtp.protect_rtp(&mut p).expect("protect");
        p
    }
}

impl Core {
    /// One packet through the worker and out of the socket; how many datagrams left.
    pub fn forward(&mut self, mut packet: Vec<u8>) -> usize {
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
pub fn setup(
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
pub struct Bare {
    sessions: Vec<SrtpSession>,
    bufs: Vec<Vec<u8>>,
    template: Vec<u8>,
    seq: u16,
    socket: UdpSocket,
    sink: SocketAddr,
    sender: MmsgSender,
}

impl Bare {
    /// `n` sessions with random keys of `profile`, sending copies of `template` to `sink`.
    pub fn new(n: usize, profile: SrtpProfile, template: Vec<u8>, sink: SocketAddr) -> Self {
        let sessions = (0..n)
            .map(|_| {
                let (local, remote) = (random_keys(profile), random_keys(profile));
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

    /// One copy per session, protected, sent with one `sendmmsg`; how many went out.
    pub fn send_one(&mut self) -> usize {
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

/// Random keys of `profile`.
fn random_keys(profile: SrtpProfile) -> SrtpKeyMaterial {
    let mut rng = rand::rng();
    let mut key = vec![0; profile.key_len()];
    let mut salt = vec![0; profile.salt_len()];
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut salt);
    SrtpKeyMaterial { key, salt }
}

/// The floor of a forwarder: each packet decrypted once (as a worker must), then the bare
/// loop. Packets are protected for it outside the timed part ([`Floor::packets`]).
pub struct Floor {
    sender: SrtpSession,
    receiver: SrtpSession,
    maker: PacketMaker,
    /// The bare loop after the decryption.
    pub bare: Bare,
}

impl Floor {
    /// A floor of `n` consumers; see [`Bare::new`].
    pub fn new(n: usize, profile: SrtpProfile, template: Vec<u8>, sink: SocketAddr) -> Self {
        let (a, b) = (random_keys(profile), random_keys(profile));
        Floor {
            sender: SrtpSession::new(profile, &a, &b).expect("SRTP session"),
            receiver: SrtpSession::new(profile, &b, &a).expect("SRTP session"),
            maker: PacketMaker::new(Media::Vp8, SSRC, PAYLOAD),
            bare: Bare::new(n, profile, template, sink),
        }
    }

    /// `count` protected packets for [`Floor::forward`].
    pub fn packets(&mut self, count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|_| {
                let mut p = Vec::with_capacity(PAYLOAD + 64);
                self.maker.next(0, &mut p);
                self.sender.protect_rtp(&mut p).expect("protect");
                p
            })
            .collect()
    }

    /// Decrypts `packet`, then the bare loop; how many datagrams went out.
    pub fn forward(&mut self, packet: &mut Vec<u8>) -> usize {
        self.receiver.unprotect_rtp(packet).expect("unprotect");
        self.bare.send_one()
    }
}
