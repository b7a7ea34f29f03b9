//! How a hosted transport's bytes leave and arrive: over a WebRTC connection (ICE-lite,
//! DTLS, SRTP on the worker's shared port) or a plain RTP one (two UDP ports of its own,
//! in the clear; contract sections 1 and 5). Everything above it (producers, consumers,
//! RTCP, bandwidth) is the same for both; this enum is the one place that tells them
//! apart.

use std::time::Instant;

use super::plain_transport::PlainTransport;
use super::tuple::Tuple;
use super::webrtc_connection::{
    DropCounters, Received, Transmit, TransportEvent, WebRtcConnection,
};

/// A transport's connectivity; see the module documentation.
pub enum Connection {
    /// ICE-lite, DTLS and SRTP.
    WebRtc(Box<WebRtcConnection>),
    /// Plain RTP and RTCP.
    Plain(PlainTransport),
}

impl Connection {
    /// The WebRTC connection, if it is one.
    pub fn webrtc(&self) -> Option<&WebRtcConnection> {
        match self {
            Connection::WebRtc(w) => Some(w),
            Connection::Plain(_) => None,
        }
    }

    /// The WebRTC connection, if it is one.
    pub fn webrtc_mut(&mut self) -> Option<&mut WebRtcConnection> {
        match self {
            Connection::WebRtc(w) => Some(w),
            Connection::Plain(_) => None,
        }
    }

    /// The plain connection, if it is one.
    pub fn plain(&self) -> Option<&PlainTransport> {
        match self {
            Connection::Plain(p) => Some(p),
            Connection::WebRtc(_) => None,
        }
    }

    /// The plain connection, if it is one.
    pub fn plain_mut(&mut self) -> Option<&mut PlainTransport> {
        match self {
            Connection::Plain(p) => Some(p),
            Connection::WebRtc(_) => None,
        }
    }

    /// Takes a datagram: RTP comes back as [`Received::RtpToRoute`] from both kinds, so
    /// that the worker routes them the same way: still protected from WebRTC, in the
    /// clear from a plain transport ([`Connection::unprotect_rtp`] is then a no-op).
    pub fn receive(&mut self, now: Instant, tuple: Tuple, buf: &mut Vec<u8>) -> Received {
        match self {
            Connection::WebRtc(w) => w.receive(now, tuple, buf),
            Connection::Plain(p) => match p.receive(&tuple, buf) {
                Received::Rtp => Received::RtpToRoute,
                other => other,
            },
        }
    }

    /// Decrypts RTP left protected by [`Connection::receive`] (plain: nothing to do).
    pub fn unprotect_rtp(&mut self, buf: &mut Vec<u8>) -> Received {
        match self {
            Connection::WebRtc(w) => w.unprotect_rtp(buf),
            Connection::Plain(_) => Received::Rtp,
        }
    }

    /// Protects RTP to send (plain: nothing to do).
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> bool {
        match self {
            Connection::WebRtc(w) => w.protect_rtp(packet),
            Connection::Plain(_) => true,
        }
    }

    /// Protects RTCP to send (plain: nothing to do).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> bool {
        match self {
            Connection::WebRtc(w) => w.protect_rtcp(packet),
            Connection::Plain(_) => true,
        }
    }

    /// Where RTP goes.
    pub fn rtp_tuple(&self) -> Option<Tuple> {
        match self {
            Connection::WebRtc(w) => w.selected_tuple(),
            Connection::Plain(p) => p.rtp_tuple(),
        }
    }

    /// Where RTCP goes (the same tuple with rtcp-mux; plain: the RTCP port's).
    pub fn rtcp_tuple(&self) -> Option<Tuple> {
        match self {
            Connection::WebRtc(w) => w.selected_tuple(),
            Connection::Plain(p) => p.rtcp_tuple(),
        }
    }

    /// Whether media can be sent.
    pub fn is_connected(&self) -> bool {
        match self {
            Connection::WebRtc(w) => w.is_connected(),
            Connection::Plain(p) => p.is_connected(),
        }
    }

    /// Whether the worker routes `tuple` here by its remote address (WebRTC tuples that
    /// passed ICE; plain transports are found by their local port instead).
    pub fn is_valid_tuple(&self, tuple: &Tuple) -> bool {
        match self {
            Connection::WebRtc(w) => w.is_valid_tuple(tuple),
            Connection::Plain(_) => false,
        }
    }

    /// Counters of dropped input.
    pub fn drops(&self) -> DropCounters {
        match self {
            Connection::WebRtc(w) => w.drops(),
            Connection::Plain(p) => p.drops(),
        }
    }

    /// Counts RTP whose header did not parse.
    pub fn drop_malformed(&mut self) {
        match self {
            Connection::WebRtc(w) => w.drop_malformed(),
            Connection::Plain(p) => p.drop_malformed(),
        }
    }

    /// Frees SRTP state of SSRCs no longer used (plain: none).
    pub fn forget_srtp_streams(&mut self, outbound: &[u32], inbound: &[u32]) {
        if let Connection::WebRtc(w) = self {
            w.forget_srtp_streams(outbound, inbound);
        }
    }

    /// Whether SRTP holds state for `ssrc` (plain: never).
    pub fn has_srtp_stream(&mut self, ssrc: u32, outbound: bool) -> bool {
        match self {
            Connection::WebRtc(w) => w.has_srtp_stream(ssrc, outbound),
            Connection::Plain(_) => false,
        }
    }

    /// Forgets a tuple whose TCP connection closed.
    pub fn remove_tuple(&mut self, now: Instant, tuple: &Tuple) {
        if let Connection::WebRtc(w) = self {
            w.remove_tuple(now, tuple);
        }
    }

    /// Closes.
    pub fn close(&mut self, now: Instant) {
        match self {
            Connection::WebRtc(w) => w.close(now),
            Connection::Plain(p) => p.close(),
        }
    }

    /// The next ICE or DTLS datagram to send (plain: none).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.webrtc_mut()?.poll_transmit()
    }

    /// The next connectivity event (plain: none).
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.webrtc_mut()?.poll_event()
    }

    /// The next ICE or DTLS deadline (plain: none).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.webrtc()?.poll_timeout()
    }

    /// Runs ICE and DTLS timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Connection::WebRtc(w) = self {
            w.handle_timeout(now);
        }
    }
}
