//! The way in of a worker core: a datagram (or TCP frame) that arrived on the worker's
//! port goes to its transport (by tuple, or by the ICE username of a STUN request from an
//! unknown tuple), and what the transport yields goes to the transport's router. Everything
//! one datagram makes its transport and its router do runs contained
//! (`WorkerCore::contained`, `containment.rs`): a panic there closes that transport only.

use std::time::Instant;

use super::core::WorkerCore;
use crate::arena::TransportKey;
use crate::transport::ice_lite::peek_local_ufrag;
use crate::transport::{DropReason, MediaTransport, Received, RtpIn, Tuple};

impl WorkerCore {
    /// Handles a datagram (or a TCP frame) that arrived on the worker's port: to its
    /// transport by tuple, or, from an unknown tuple, a STUN request by the ICE username
    /// it names; what the transport decrypts goes to its router.
    pub fn handle_datagram(&mut self, now: Instant, tuple: Tuple, buf: &mut Vec<u8>) {
        self.traffic.packets_in += 1;
        self.traffic.bytes_in += buf.len() as u64;
        if self.stale_input
            && buf.first().is_some_and(|b| (128..=191).contains(b))
            && !kolabmeet_net::rtcp::is_rtcp(buf)
        {
            self.counters.stale_after_stall += 1;
        }
        let plain = if tuple.local.port() == self.settings.port {
            None
        } else {
            // A plain transport's own socket (contract section 1: its own ports).
            match self.by_plain_port.get(&tuple.local.port()) {
                Some(tk) => Some(*tk),
                None => {
                    self.counters.unknown_source += 1;
                    return;
                }
            }
        };
        let tk = match plain.or_else(|| self.by_tuple.get(&tuple).copied()) {
            Some(tk) => tk,
            None => {
                // Unknown source: only a STUN request naming a transport may come in.
                let found = (buf.first().is_some_and(|b| *b < 4))
                    .then(|| peek_local_ufrag(buf))
                    .flatten()
                    .and_then(|ufrag| self.by_ufrag.get(&ufrag).copied());
                match found {
                    Some(tk) => tk,
                    None => {
                        self.counters.unknown_source += 1;
                        return;
                    }
                }
            }
        };
        let Some(id) = self.transports.get(tk).map(|t| t.id) else {
            return;
        };
        self.contained(now, tk, id, |core| {
            core.transport_datagram(now, tk, tuple, buf);
        });
    }

    /// A datagram of transport `tk`: the transport's ICE, DTLS and SRTP, then its router.
    fn transport_datagram(
        &mut self,
        now: Instant,
        tk: TransportKey,
        tuple: Tuple,
        buf: &mut Vec<u8>,
    ) {
        let Some(transport) = self.transports.get_mut(tk) else {
            return;
        };
        let received = transport.handle_datagram(now, tuple, buf);
        self.service_transport(now, tk);
        match received {
            Received::RtpToRoute => self.route_rtp(now, tk, buf),
            Received::Rtcp => self.route_rtcp(now, tk, buf),
            Received::Dropped(DropReason::WrongSource) => self.counters.wrong_source += 1,
            Received::Dropped(_) => self.counters.transport_dropped += 1,
            // A hosted transport leaves RTP protected: `Rtp` comes only from
            // `WebRtcConnection::handle_datagram`, which it does not call.
            Received::Handled | Received::Rtp => {}
        }
        match received {
            // Media changes no ICE or DTLS deadline; transport-cc feedback may start.
            Received::RtpToRoute | Received::Rtcp => {
                if let Some(t) = self.transports.get(tk).and_then(|t| t.twcc_timeout()) {
                    self.transport_timers.schedule_earlier(tk, t);
                }
            }
            _ => self.schedule_transport(tk),
        }
    }

    /// RTP from transport `tk`, still protected. The transport finds its producer and
    /// encoding from the header in one lookup and gives it back decrypted
    /// ([`MediaTransport::receive_rtp`], `transport/rtp_ingress.rs`); only the first
    /// packet of an encoding named by RID alone asks the producer which encoding it is,
    /// and its SSRC is learnt once the packet authenticated. The header is read once and
    /// follows the packet to every consumer.
    fn route_rtp(&mut self, now: Instant, tk: TransportKey, buf: &mut Vec<u8>) {
        let Some(transport) = self.transports.get_mut(tk) else {
            return;
        };
        let rk = transport.router;
        // Every packet of a stream that carries a transport-wide number counts for the
        // sender's bandwidth estimation, retransmissions and probes included (mediasoup's
        // `Transport::ReceiveRtpPacket` feeds its TCC server the same way), or the sender
        // would read the missing numbers as losses; the transport records it once it
        // authenticated.
        let (pk, m, mut header) = match transport.receive_rtp(now, buf) {
            RtpIn::Media {
                producer,
                stream,
                header,
            } => (producer, stream, header),
            RtpIn::NewSsrc { producer, header } => {
                let Some(m) = self
                    .routers
                    .get(rk)
                    .and_then(|r| r.producer(producer))
                    .and_then(|p| p.identify(&header, buf))
                else {
                    self.counters.unknown_ssrc += 1;
                    return;
                };
                if !transport.accept_new_ssrc(now, buf, &header, producer, m) {
                    self.counters.transport_dropped += 1;
                    return;
                }
                if let Some(p) = self
                    .routers
                    .get_mut(rk)
                    .and_then(|r| r.producer_mut(producer))
                {
                    p.learn(m, header.ssrc);
                }
                (producer, m, header)
            }
            RtpIn::Unknown => {
                self.counters.unknown_ssrc += 1;
                return;
            }
            RtpIn::Dropped => {
                self.counters.transport_dropped += 1;
                return;
            }
        };
        let Some((router, mut egress)) = self.router_and_egress(rk) else {
            return;
        };
        if !router.on_rtp(now, pk, m, &mut header, buf, &mut egress) {
            self.counters.unknown_ssrc += 1;
        }
        self.schedule_router_earlier(rk);
    }

    /// Decrypted RTCP from transport `tk`: to its router.
    fn route_rtcp(&mut self, now: Instant, tk: TransportKey, buf: &[u8]) {
        let Some(rk) = self.transports.get(tk).map(|t| t.router) else {
            return;
        };
        let Some((router, mut egress)) = self.router_and_egress(rk) else {
            return;
        };
        self.counters.malformed_rtcp += router.on_rtcp(now, tk, buf, &mut egress);
        self.schedule_router_earlier(rk);
        // Feedback may have started a probe cluster.
        if let Some(t) = self
            .transports
            .get(tk)
            .and_then(MediaTransport::poll_timeout)
        {
            self.transport_timers.schedule_earlier(tk, t);
        }
    }
}
