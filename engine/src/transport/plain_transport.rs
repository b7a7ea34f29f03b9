//! The connectivity half of a plain RTP transport (mediasoup `PlainTransport` without
//! rtcp-mux, contract sections 1 and 5: `createPlainTransport`, `connectPlainTransport`):
//! RTP and RTCP in the clear on two UDP ports of their own, no ICE, DTLS or SRTP.
//!
//! Where it sends and whom it hears:
//!
//! - after `connectPlainTransport {ip, port, rtcpPort}`: RTP goes to `ip:port`, RTCP to
//!   `ip:rtcpPort`, and only datagrams from those two addresses are taken;
//! - before that (comedia, for a sender such as ffmpeg that is never told where the
//!   server listens from): the first RTP packet on the RTP port fixes the remote RTP
//!   address, the first RTCP packet on the RTCP port the remote RTCP address. From then
//!   on datagrams from any other address are dropped and counted
//!   ([`DropReason::WrongSource`]): a second sender cannot take the transport over.
//!
//! Sans-IO: the worker's driver owns the two sockets and hands each datagram in with the
//! [`Tuple`] it came on (`local` says which of the two ports).

use std::net::{IpAddr, SocketAddr};

use kolabmeet_net::rtcp::header::is_rtcp;

use super::tuple::{Tuple, TupleProtocol};
use super::webrtc_connection::{DropCounters, DropReason, Received};

/// The contract's port range of plain RTP transports (section 1: 40000-49999); the
/// contract names no variable to change it, so neither does this server.
pub const PLAIN_PORT_RANGE: std::ops::RangeInclusive<u16> = 40000..=49999;

/// Plain transports one worker hosts at most (each holds two UDP sockets, so two file
/// descriptors); beyond, `createPlainTransport` fails.
pub const MAX_PLAIN_TRANSPORTS: usize = 256;

/// Why `connectPlainTransport` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainTransportError {
    /// `connectPlainTransport` came twice (mediasoup refuses it too).
    #[error("plain transport already connected")]
    AlreadyConnected,
    /// Port 0, or an unspecified, multicast or broadcast address.
    #[error("invalid remote address {0}")]
    InvalidAddress(SocketAddr),
    /// The remote address is of the other IP family than the listening address.
    #[error("remote address {remote} is not reachable from {local}")]
    WrongFamily {
        /// The address given.
        remote: IpAddr,
        /// The listening address.
        local: IpAddr,
    },
}

/// One plain transport's addresses; see the module documentation.
#[derive(Debug, Clone)]
pub struct PlainTransport {
    /// The local RTP socket's address.
    local_rtp: SocketAddr,
    /// The local RTCP socket's address.
    local_rtcp: SocketAddr,
    /// Where RTP goes and comes from, once known.
    remote_rtp: Option<SocketAddr>,
    /// Where RTCP goes and comes from, once known.
    remote_rtcp: Option<SocketAddr>,
    /// `connectPlainTransport` fixed both addresses (no more learning).
    connected: bool,
    closed: bool,
    drops: DropCounters,
}

impl PlainTransport {
    /// A plain transport listening on `local_rtp` and `local_rtcp` (the driver's sockets).
    pub fn new(local_rtp: SocketAddr, local_rtcp: SocketAddr) -> Self {
        PlainTransport {
            local_rtp,
            local_rtcp,
            remote_rtp: None,
            remote_rtcp: None,
            connected: false,
            closed: false,
            drops: DropCounters::default(),
        }
    }

    /// The local RTP socket's address.
    pub fn local_rtp(&self) -> SocketAddr {
        self.local_rtp
    }

    /// The local RTCP socket's address.
    pub fn local_rtcp(&self) -> SocketAddr {
        self.local_rtcp
    }

    /// The remote RTP address (given or learnt), if known.
    pub fn remote_rtp(&self) -> Option<SocketAddr> {
        self.remote_rtp
    }

    /// The remote RTCP address (given or learnt), if known.
    pub fn remote_rtcp(&self) -> Option<SocketAddr> {
        self.remote_rtcp
    }

    /// `connectPlainTransport {ip, port, rtcpPort}`: where to send, and whom to hear.
    pub fn connect(
        &mut self,
        ip: IpAddr,
        port: u16,
        rtcp_port: u16,
    ) -> Result<(), PlainTransportError> {
        if self.connected {
            return Err(PlainTransportError::AlreadyConnected);
        }
        for p in [port, rtcp_port] {
            let addr = SocketAddr::new(ip, p);
            let bad_ip = ip.is_unspecified()
                || ip.is_multicast()
                || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
            if p == 0 || bad_ip {
                return Err(PlainTransportError::InvalidAddress(addr));
            }
        }
        let local = self.local_rtp.ip();
        if ip.is_ipv4() != local.is_ipv4() {
            return Err(PlainTransportError::WrongFamily { remote: ip, local });
        }
        self.remote_rtp = Some(SocketAddr::new(ip, port));
        self.remote_rtcp = Some(SocketAddr::new(ip, rtcp_port));
        self.connected = true;
        Ok(())
    }

    /// Classifies a datagram that arrived on one of the two ports: RTP on the RTP port
    /// ([`Received::Rtp`], in the clear), RTCP on the RTCP port ([`Received::Rtcp`]), the
    /// rest dropped and counted. Learns the remote address of a port from its first
    /// valid packet unless connected.
    pub fn receive(&mut self, tuple: &Tuple, buf: &[u8]) -> Received {
        if self.closed {
            return self.drop(DropReason::Closed);
        }
        if tuple.protocol != TupleProtocol::Udp {
            return self.drop(DropReason::InvalidTuple);
        }
        // RFC 3550 §5.1 / §6.4.1: version 2, and at least a header.
        let version_ok = buf.first().is_some_and(|b| b >> 6 == 2);
        let rtcp = is_rtcp(buf);
        if tuple.local == self.local_rtp {
            if !version_ok || rtcp || buf.len() < 12 {
                return self.drop(if rtcp {
                    DropReason::Unknown
                } else {
                    DropReason::Malformed
                });
            }
            if accept_from(&mut self.remote_rtp, tuple.remote, "RTP") {
                Received::Rtp
            } else {
                self.drop(DropReason::WrongSource)
            }
        } else if tuple.local == self.local_rtcp {
            if !version_ok || !rtcp {
                return self.drop(DropReason::Malformed);
            }
            if accept_from(&mut self.remote_rtcp, tuple.remote, "RTCP") {
                Received::Rtcp
            } else {
                self.drop(DropReason::WrongSource)
            }
        } else {
            self.drop(DropReason::InvalidTuple)
        }
    }

    /// Where RTP is sent, once known.
    pub fn rtp_tuple(&self) -> Option<Tuple> {
        (!self.closed).then_some(())?;
        Some(Tuple {
            protocol: TupleProtocol::Udp,
            local: self.local_rtp,
            remote: self.remote_rtp?,
        })
    }

    /// Where RTCP is sent, once known.
    pub fn rtcp_tuple(&self) -> Option<Tuple> {
        (!self.closed).then_some(())?;
        Some(Tuple {
            protocol: TupleProtocol::Udp,
            local: self.local_rtcp,
            remote: self.remote_rtcp?,
        })
    }

    /// Whether media can be sent (the remote RTP address is known).
    pub fn is_connected(&self) -> bool {
        !self.closed && self.remote_rtp.is_some()
    }

    /// Counters of dropped input.
    pub fn drops(&self) -> DropCounters {
        self.drops
    }

    /// Counts an RTP packet whose header did not parse.
    pub fn drop_malformed(&mut self) {
        self.drop(DropReason::Malformed);
    }

    /// Closes: nothing more is taken or sent.
    pub fn close(&mut self) {
        self.closed = true;
    }

    fn drop(&mut self, reason: DropReason) -> Received {
        let total = self.drops.count(reason);
        // Logged at 1, 2, 4, 8, ... drops: a flood does not flood the log.
        if reason == DropReason::WrongSource && total.is_power_of_two() {
            tracing::debug!(target: "kolabmeet::transport", total, "plain transport: datagram from another address dropped");
        }
        Received::Dropped(reason)
    }
}

/// Whether a datagram from `from` is taken on a port whose remote address is `remote`:
/// it is that address, or none is known yet and `from` becomes it (comedia: the first
/// valid packet of `what`, RTP or RTCP, fixes its sender).
fn accept_from(remote: &mut Option<SocketAddr>, from: SocketAddr, what: &str) -> bool {
    match *remote {
        Some(r) => r == from,
        None => {
            tracing::debug!(target: "kolabmeet::transport", remote = %from, "plain transport: {what} sender learnt (comedia)");
            *remote = Some(from);
            true
        }
    }
}
