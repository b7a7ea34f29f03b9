//! The 5-tuple a WebRTC transport talks over: which socket kind, the worker's local
//! address and the remote address (mediasoup's `TransportTuple`).

use std::net::SocketAddr;

/// UDP datagrams, or an ICE-TCP connection (RFC 6544, passive side) carrying RFC 4571
/// frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TupleProtocol {
    /// UDP.
    Udp,
    /// TCP; each accepted connection is its own tuple.
    Tcp,
}

impl TupleProtocol {
    /// The name used in mediasoup's stats and candidates (`udp`, `tcp`).
    pub fn as_str(self) -> &'static str {
        match self {
            TupleProtocol::Udp => "udp",
            TupleProtocol::Tcp => "tcp",
        }
    }
}

/// A local/remote address pair over one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// UDP or TCP.
    pub protocol: TupleProtocol,
    /// The worker's address (its media port).
    pub local: SocketAddr,
    /// The peer's address as seen by the worker.
    pub remote: SocketAddr,
}
