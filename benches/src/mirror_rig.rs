//! The rig of the piping measurement (issue 16: "CPU per forwarded packet to a consumer
//! on another worker vs a local one: at most 1.15x"): one VP8 producer and `n` consumers
//! either on the producer's worker core ([`MirrorRig::local`]) or on a second core that
//! mirrors the producer ([`MirrorRig::far`]: the packet is decrypted on the first,
//! handed over as a pipe message, and fanned out on the second), both cores in memory
//! in this thread, their transmits leaving through one `sendmmsg` each to a loopback
//! sink, as in [`crate::forwarding_rig`]. What the queue between two threads adds (two
//! atomic operations and a wake-up per loop round, not per packet) is left out.

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use kolabmeet_engine::transport::Tuple;
use kolabmeet_testkit::{Media, PacketMaker, Sim, SimPair, setup_consumers, setup_producer, tuple};

use crate::forwarding_rig::{PAYLOAD, SSRC, Source};
use crate::sys::{MmsgSender, set_buffers};

/// One or two worker cores with a producer and its consumers.
pub struct MirrorRig {
    /// The producer's core.
    pub origin: Sim,
    /// The consumers' core, when they are on another worker.
    pub far: Option<Sim>,
    from: Tuple,
    socket: UdpSocket,
    sink: SocketAddr,
    sender: MmsgSender,
    out: Vec<Vec<u8>>,
    /// Packets handed to the producer's core.
    pub packets_in: u64,
    /// Datagrams that left the socket.
    pub datagrams_out: u64,
}

impl MirrorRig {
    /// Producer and `n` consumers on one core.
    pub fn local(n: usize, sink: SocketAddr) -> (Self, Source) {
        let mut sim = Sim::with_shared_certificates();
        let room = sim.room();
        let publisher = setup_producer(&mut sim, room, Media::Vp8, SSRC).expect("producer");
        setup_consumers(&mut sim, room, publisher.producer, n).expect("consumers");
        let from = tuple(publisher.peer.client);
        Self::finish(sim, None, from, n, sink, publisher.peer.client)
    }

    /// The producer on one core, its `n` consumers on another that mirrors it.
    pub fn far(n: usize, sink: SocketAddr) -> (Self, Source) {
        let mut pair = SimPair::new();
        let room = pair.room();
        let publisher = setup_producer(&mut pair.a, room, Media::Vp8, SSRC).expect("producer");
        pair.exchange();
        setup_consumers(&mut pair.b, room, publisher.producer, n).expect("consumers");
        pair.exchange();
        let from = tuple(publisher.peer.client);
        let SimPair { a, b, .. } = pair;
        Self::finish(a, Some(b), from, n, sink, publisher.peer.client)
    }

    fn finish(
        mut origin: Sim,
        far: Option<Sim>,
        from: Tuple,
        n: usize,
        sink: SocketAddr,
        port: u16,
    ) -> (Self, Source) {
        let srtp = origin
            .endpoint(port)
            .browser
            .take_srtp()
            .expect("producer SRTP");
        let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
        set_buffers(&socket, 4 << 20);
        let rig = MirrorRig {
            origin,
            far,
            from,
            socket,
            sink,
            sender: MmsgSender::new(),
            out: Vec::with_capacity(n + 8),
            packets_in: 0,
            datagrams_out: 0,
        };
        (
            rig,
            Source::new(PacketMaker::new(Media::Vp8, SSRC, PAYLOAD), srtp),
        )
    }

    /// One packet through the producer's core, across to the consumers' (when apart),
    /// and out of the socket; how many datagrams left.
    pub fn forward(&mut self, mut packet: Vec<u8>) -> usize {
        let now = Instant::now();
        let origin = &mut self.origin.core;
        origin.handle_datagram(now, self.from, &mut packet);
        if origin.poll_timeout().is_some_and(|t| t <= now) {
            origin.handle_timeout(now);
        }
        let mut n = Self::send(
            origin,
            &mut self.out,
            &mut self.sender,
            &self.socket,
            self.sink,
        );
        if let Some(far) = self.far.as_mut() {
            let far = &mut far.core;
            while let Some((_, m)) = self.origin.core.poll_pipe() {
                far.handle_pipe(now, m);
            }
            if far.poll_timeout().is_some_and(|t| t <= now) {
                far.handle_timeout(now);
            }
            n += Self::send(
                far,
                &mut self.out,
                &mut self.sender,
                &self.socket,
                self.sink,
            );
            // Key frame requests and reports going back.
            while let Some((_, m)) = far.poll_pipe() {
                self.origin.core.handle_pipe(now, m);
            }
        }
        self.packets_in += 1;
        self.datagrams_out += n as u64;
        n
    }

    fn send(
        core: &mut kolabmeet_engine::worker::WorkerCore,
        out: &mut Vec<Vec<u8>>,
        sender: &mut MmsgSender,
        socket: &UdpSocket,
        sink: SocketAddr,
    ) -> usize {
        while let Some(t) = core.poll_transmit() {
            out.push(t.data);
        }
        while core.poll_event().is_some() {}
        let n = if out.is_empty() {
            0
        } else {
            sender.send_to(socket, sink, out).expect("sendmmsg")
        };
        for buf in out.drain(..) {
            core.recycle(buf);
        }
        n
    }
}
