//! The UDP sockets of a worker's plain RTP transports (contract section 1: one port for
//! RTP and one for RTCP per transport, from 40000-49999), owned by the mio driver: bound
//! at `createPlainTransport`, read into the [`WorkerCore`] with the local port in the
//! tuple (the core finds the transport by it), written from its transmits, closed when
//! the core releases the transport's ports.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::core::WorkerCore;
use crate::transport::{PLAIN_PORT_RANGE, Tuple, TupleProtocol};

/// Tokens of plain sockets: this plus the local port (the driver's TCP connections count
/// up from a few and never get this far).
const PLAIN_BASE: usize = 1 << 30;
/// Datagrams read from one plain socket per round before the others get their turn.
const MAX_PLAIN_READS: usize = 64;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 4096;
/// Port pairs tried per `createPlainTransport`, so that a full range cannot stall the
/// worker.
const MAX_BIND_TRIES: u16 = 64;

/// The plain transports' sockets by local port; see the module documentation.
#[derive(Default)]
pub(super) struct PlainSockets {
    sockets: HashMap<u16, UdpSocket>,
    /// Sockets that may hold more datagrams (their read budget was used up).
    more: Vec<u16>,
}

impl PlainSockets {
    /// The local port a poll token stands for, if it is a plain socket's.
    pub fn port_of(token: Token) -> Option<u16> {
        token
            .0
            .checked_sub(PLAIN_BASE)
            .and_then(|p| u16::try_from(p).ok())
    }

    /// Whether some socket may hold more datagrams (poll without waiting).
    pub fn has_more(&self) -> bool {
        !self.more.is_empty()
    }

    /// Binds and registers an RTP and an RTCP socket in [`PLAIN_PORT_RANGE`]: an even
    /// port and the next one (what ffmpeg and most RTP tools assume when only the RTP
    /// port is given), starting at a random pair.
    pub fn bind(&mut self, registry: &Registry, ip: IpAddr) -> Option<(u16, u16)> {
        use rand::Rng;
        let (lo, hi) = (*PLAIN_PORT_RANGE.start(), *PLAIN_PORT_RANGE.end());
        // Pairs (even, odd) that fit in the range.
        let pairs = (hi - lo) / 2 + 1;
        let first = rand::rng().random_range(0..pairs);
        for i in 0..pairs.min(MAX_BIND_TRIES) {
            let rtp = lo + 2 * ((first + i) % pairs);
            let rtcp = rtp + 1;
            if self.sockets.contains_key(&rtp) || self.sockets.contains_key(&rtcp) {
                continue;
            }
            let Ok(mut a) = UdpSocket::bind(SocketAddr::new(ip, rtp)) else {
                continue;
            };
            let Ok(mut b) = UdpSocket::bind(SocketAddr::new(ip, rtcp)) else {
                continue;
            };
            let token = |port: u16| Token(PLAIN_BASE + usize::from(port));
            if registry
                .register(&mut a, token(rtp), Interest::READABLE)
                .is_err()
                || registry
                    .register(&mut b, token(rtcp), Interest::READABLE)
                    .is_err()
            {
                let _ = registry.deregister(&mut a);
                continue;
            }
            self.sockets.insert(rtp, a);
            self.sockets.insert(rtcp, b);
            return Some((rtp, rtcp));
        }
        tracing::warn!(target: "kolabmeet::worker", "no free port pair for a plain transport");
        None
    }

    /// Reads what the socket of `port` holds (at most [`MAX_PLAIN_READS`]) into `core`.
    pub fn read(&mut self, core: &mut WorkerCore, now: Instant, port: u16) {
        let Some(socket) = self.sockets.get(&port) else {
            return;
        };
        let local = SocketAddr::new(core.listen_ip(), port);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for _ in 0..MAX_PLAIN_READS {
            buf.resize(MAX_DATAGRAM, 0);
            match socket.recv_from(&mut buf) {
                Ok((n, remote)) => {
                    buf.truncate(n);
                    let tuple = Tuple {
                        protocol: TupleProtocol::Udp,
                        local,
                        remote,
                    };
                    core.handle_datagram(now, tuple, &mut buf);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP port unreachable (the receiver is not up yet) lands here.
                    tracing::trace!(target: "kolabmeet::worker", port, error = %e, "plain socket receive error");
                    continue;
                }
            }
        }
        self.more.push(port);
    }

    /// Reads again the sockets whose budget was used up last round.
    pub fn read_more(&mut self, core: &mut WorkerCore, now: Instant) {
        for port in std::mem::take(&mut self.more) {
            self.read(core, now, port);
        }
    }

    /// Sends a datagram from the socket of `port` (dropped if it is gone or full).
    pub fn send(&self, port: u16, data: &[u8], to: SocketAddr) {
        if let Some(socket) = self.sockets.get(&port) {
            let _ = socket.send_to(data, to);
        }
    }

    /// Closes the sockets of the plain transports the core closed.
    pub fn release(&mut self, registry: &Registry, core: &mut WorkerCore) {
        while let Some(port) = core.poll_released_port() {
            if let Some(mut socket) = self.sockets.remove(&port) {
                let _ = registry.deregister(&mut socket);
            }
            self.more.retain(|p| *p != port);
        }
    }
}
