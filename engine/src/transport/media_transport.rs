//! A WebRTC transport as a media worker hosts it (mediasoup's `Transport` and
//! `WebRtcConnection`): everything that exists once per transport, owned here and gone
//! with it, so closing a transport is dropping it:
//!
//! - its connection ([`WebRtcConnection`]: ICE-lite, DTLS, SRTP);
//! - the tuples the worker's demultiplexer maps to it;
//! - its [`RtpListener`] (which producer a received packet is for) and its consumers by
//!   SSRC (RTCP feedback from the receiver names them, RFC 4585 §6.1);
//! - transport-wide congestion control: feedback to the sender of what arrived
//!   (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1) and the sequence numbers
//!   of what it sends;
//! - its outgoing bandwidth ([`SendBandwidth`]: the estimate from the receiver's feedback,
//!   its allocation over the consumers, probe clusters);
//! - the MID counter of its consumers (each consumer is an m-line of the receiving
//!   peer's BUNDLE group, RFC 8843) and the CNAME of its producers (RFC 3550 §6.5.1,
//!   mediasoup's `cnameForProducers`);
//! - its lifetime timers: [`CONNECT_TIMEOUT`] and [`ABANDONED_AFTER`].
//!
//! Sans-IO: the worker hands it datagrams, commands and timeouts with the time, sends
//! what [`MediaTransport::poll_transmit`] returns, and applies what
//! [`MediaTransport::poll_host_event`] asks of it (map or unmap a tuple, close).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::Rng;

use super::connection::Connection;
use super::ice_lite::IceState;
use super::plain_transport::PlainTransport;
use super::rtp_listener::RtpListener;
use super::send_bandwidth::SendBandwidth;
use super::tuple::Tuple;
use super::twcc_feedback::TwccFeedback;
use super::webrtc_connection::{Received, Transmit, TransportEvent, WebRtcConnection};
use crate::arena::{ConsumerKey, ProducerKey, RouterKey};
use crate::crypto::DtlsState;
use crate::ids::{PeerId, TransportId};

/// A transport whose client sent `connectWebRtcTransport` but that has not completed ICE
/// and DTLS this long after is abandoned (closes by itself, `TransportClosed`): a client
/// that gave up, or a peer that cannot reach the server, must not keep state forever. A
/// transport never asked to connect is kept: `mediasoup-client` connects its receiving
/// transport only at the first `consume`, and the peer's own objects are bounded.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A transport that lost ICE consent (RFC 7675: no valid check for 30 s) and hears no
/// check for this much longer is abandoned (a browser that went away without a word, its
/// signaling kept alive elsewhere): it closes by itself and frees what it owned, as does a
/// transport whose DTLS failed or was closed by the remote side. A `restartIce` within that
/// time keeps it. (The contract is silent; a never-connected transport is kept, since
/// `mediasoup-client` connects its receiving transport only at the first `consume`.)
pub const ABANDONED_AFTER: Duration = Duration::from_secs(30);

/// The SSRC the worker signs the RTCP it originates with (feedback and receiver reports).
pub const FEEDBACK_SENDER_SSRC: u32 = 1;

/// Why a transport closes by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// DTLS failed, or the remote side closed it (`close_notify`).
    DtlsOver,
    /// ICE consent lost for longer than [`ABANDONED_AFTER`].
    Abandoned,
    /// Asked to connect, not connected [`CONNECT_TIMEOUT`] later.
    NeverConnected,
}

/// What a transport asks of the worker that hosts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEvent {
    /// A tuple passed ICE: route its datagrams here.
    MapTuple(Tuple),
    /// A tuple lost consent (or its TCP connection): stop routing it here.
    UnmapTuple(Tuple),
    /// Close this transport (it tells the control plane: `TransportClosed`).
    Close(CloseReason),
}

/// Test builds only: what an armed transport panics in
/// (`WorkerCore::arm_transport_panic`), as a bug in its DTLS stack or SRTP binding would.
#[cfg(any(test, feature = "fault-injection"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmedPanic {
    /// The next datagram it handles, after its connection took the datagram in.
    Datagram,
    /// Its next timer.
    Timeout,
}

/// One hosted WebRTC transport; see the module documentation.
pub struct MediaTransport {
    /// Its id (the engine's edge).
    pub id: TransportId,
    /// The peer that owns it.
    pub peer: PeerId,
    /// Its room's router.
    pub router: RouterKey,
    /// ICE, DTLS and SRTP, or plain RTP.
    pub connection: Connection,
    /// Which producer RTP received here is for.
    pub listener: RtpListener<ProducerKey>,
    /// Consumers sending on it, by their media SSRC.
    consumers: HashMap<u32, ConsumerKey>,
    /// Tuples the worker routes here.
    tuples: Vec<Tuple>,
    /// ICE usernames the worker routes here (the current one, and the previous one until
    /// the browser follows a `restartIce`).
    ufrags: Vec<String>,
    /// Transport-wide congestion control feedback to the sender.
    twcc: TwccFeedback,
    /// The transport-cc header extension id its producers negotiated (BUNDLE gives one id
    /// per URI on a transport), once one has.
    twcc_ext: Option<u8>,
    /// The transport-wide sequence number of the next RTP packet sent.
    transport_seq: u16,
    /// The outgoing bandwidth: estimate, allocation, probes.
    pub bandwidth: SendBandwidth,
    /// The MID of the next consumer.
    next_mid: u32,
    /// The CNAME every producer of the transport carries.
    cname: Option<String>,
    /// Since when ICE has been disconnected after having been connected.
    disconnected_since: Option<Instant>,
    /// Until when a transport asked to connect may take to complete ICE and DTLS.
    connect_deadline: Option<Instant>,
    host_events: VecDeque<HostEvent>,
    /// Test builds only: it panics at its next datagram or timer
    /// (`WorkerCore::arm_transport_panic`).
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) panic_armed: Option<ArmedPanic>,
}

impl MediaTransport {
    /// A transport of `peer` in the room of `router` over `connection`.
    pub fn new(
        id: TransportId,
        peer: PeerId,
        router: RouterKey,
        connection: WebRtcConnection,
    ) -> Self {
        let ufrags = vec![connection.ice_credentials().ufrag.clone()];
        Self::with_connection(
            id,
            peer,
            router,
            Connection::WebRtc(Box::new(connection)),
            ufrags,
        )
    }

    /// A plain RTP transport of `peer` in the room of `router` (contract section 5,
    /// `createPlainTransport`).
    pub fn new_plain(
        id: TransportId,
        peer: PeerId,
        router: RouterKey,
        connection: PlainTransport,
    ) -> Self {
        Self::with_connection(id, peer, router, Connection::Plain(connection), Vec::new())
    }

    fn with_connection(
        id: TransportId,
        peer: PeerId,
        router: RouterKey,
        connection: Connection,
        ufrags: Vec<String>,
    ) -> Self {
        MediaTransport {
            id,
            peer,
            router,
            connection,
            listener: RtpListener::default(),
            consumers: HashMap::new(),
            tuples: Vec::new(),
            ufrags,
            twcc: TwccFeedback::new(),
            twcc_ext: None,
            transport_seq: 0,
            bandwidth: SendBandwidth::default(),
            next_mid: 0,
            cname: None,
            disconnected_since: None,
            connect_deadline: None,
            host_events: VecDeque::new(),
            #[cfg(any(test, feature = "fault-injection"))]
            panic_armed: None,
        }
    }

    /// `connectWebRtcTransport`: starts DTLS with the client's parameters and arms
    /// [`CONNECT_TIMEOUT`].
    pub fn connect(
        &mut self,
        now: Instant,
        dtls: crate::ortc::DtlsParameters,
    ) -> Result<(), super::webrtc_connection::TransportError> {
        self.connection
            .webrtc_mut()
            .ok_or(super::webrtc_connection::TransportError::NotWebRtc)?
            .connect(now, dtls)?;
        self.connect_deadline = Some(now + CONNECT_TIMEOUT);
        self.drain_connection(now);
        Ok(())
    }

    /// Handles a datagram (or TCP frame) from `tuple`: STUN and DTLS here, RTCP
    /// decrypted in place, RTP left protected ([`Received::RtpToRoute`]: the worker
    /// finds its stream first and decrypts it with [`MediaTransport::unprotect_rtp`] only
    /// if one wants it). A tuple that passed ICE with it is to be mapped here.
    pub fn handle_datagram(&mut self, now: Instant, tuple: Tuple, buf: &mut Vec<u8>) -> Received {
        let received = self.connection.receive(now, tuple, buf);
        #[cfg(any(test, feature = "fault-injection"))]
        self.strike(ArmedPanic::Datagram);
        if !self.tuples.contains(&tuple) && self.connection.is_valid_tuple(&tuple) {
            self.tuples.push(tuple);
            self.host_events.push_back(HostEvent::MapTuple(tuple));
        }
        self.drain_connection(now);
        received
    }

    /// Test builds only: panics if armed for `at`.
    #[cfg(any(test, feature = "fault-injection"))]
    fn strike(&mut self, at: ArmedPanic) {
        if self.panic_armed == Some(at) {
            self.panic_armed = None;
            match at {
                ArmedPanic::Datagram => {
                    panic!("injected fault: transport {} panics on a datagram", self.id)
                }
                ArmedPanic::Timeout => {
                    panic!("injected fault: transport {} panics in its timer", self.id)
                }
            }
        }
    }

    /// Decrypts RTP left protected by [`MediaTransport::handle_datagram`]; `false` (and
    /// counted) when it does not authenticate or is a replay.
    pub fn unprotect_rtp(&mut self, buf: &mut Vec<u8>) -> bool {
        self.connection.unprotect_rtp(buf) == Received::Rtp
    }

    /// The TCP connection of `tuple` closed.
    pub fn tcp_closed(&mut self, now: Instant, tuple: &Tuple) {
        self.tuples.retain(|t| t != tuple);
        self.connection.remove_tuple(now, tuple);
        self.drain_connection(now);
    }

    /// The CNAME of the transport's producers: the first non-empty one a client gives,
    /// else a random one (mediasoup); every producer of the transport carries it
    /// (receivers use it as the media stream id).
    pub fn producer_cname(&mut self, given: Option<&str>, rng: &mut impl Rng) -> String {
        self.cname
            .get_or_insert_with(|| match given {
                Some(c) if !c.is_empty() => c.to_owned(),
                _ => format!("{:08x}", rng.random::<u32>()),
            })
            .clone()
    }

    /// The transport-cc extension id its producers send with (the first one set stays).
    pub fn set_twcc_ext(&mut self, id: u8) {
        self.twcc_ext.get_or_insert(id);
    }

    /// The MID of a new consumer: 0, 1, 2, ... per transport.
    pub fn take_mid(&mut self) -> String {
        let mid = self.next_mid;
        self.next_mid += 1;
        mid.to_string()
    }

    /// A consumer sends on this transport with media SSRC `ssrc`.
    pub fn add_consumer(&mut self, ssrc: u32, consumer: ConsumerKey) {
        self.consumers.insert(ssrc, consumer);
    }

    /// A consumer stopped sending (closed): frees its SSRCs here and in SRTP.
    pub fn remove_consumer(&mut self, ssrc: u32, rtx_ssrc: Option<u32>) {
        self.consumers.remove(&ssrc);
        let ssrcs: Vec<u32> = [Some(ssrc), rtx_ssrc].into_iter().flatten().collect();
        self.connection.forget_srtp_streams(&ssrcs, &[]);
    }

    /// The consumer sending `ssrc` here.
    pub fn consumer(&self, ssrc: u32) -> Option<ConsumerKey> {
        self.consumers.get(&ssrc).copied()
    }

    /// Consumers sending on it.
    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    /// A producer closed: stops listening for it and frees its SRTP state.
    pub fn remove_producer(&mut self, producer: ProducerKey) {
        let ssrcs = self.listener.remove(producer);
        self.connection.forget_srtp_streams(&[], &ssrcs);
    }

    /// Records the transport-wide sequence number of a decrypted RTP packet for the
    /// sender's bandwidth estimation (read with the id its producers negotiated).
    pub fn record_twcc(
        &mut self,
        now: Instant,
        packet: &kolabmeet_net::rtp::RtpHeader,
        buf: &[u8],
    ) {
        if let Some(id) = self.twcc_ext
            && let Some(&[a, b]) = packet.extension(buf, id)
        {
            self.twcc
                .on_packet(now, u16::from_be_bytes([a, b]), packet.ssrc);
        }
    }

    /// Whether SRTP keys are in place (media may be sent).
    pub fn is_connected(&self) -> bool {
        self.connection.is_connected()
    }

    /// The transport-wide sequence number the next RTP packet sent carries.
    pub fn transport_seq(&self) -> u16 {
        self.transport_seq
    }

    /// Protects an RTP packet and queues it to the selected tuple. When it carries the
    /// transport-wide number [`MediaTransport::transport_seq`] (`carries_seq`: its
    /// consumer negotiated transport-cc), the number is used up either way and the packet
    /// is recorded for the bandwidth estimate; packets without it leave no gap in the
    /// numbering, which the receiver would report as lost. The buffer comes back when it
    /// could not be sent (not connected, no tuple, SRTP error).
    pub fn send_rtp(
        &mut self,
        now: Instant,
        mut packet: Vec<u8>,
        carries_seq: bool,
        out: &mut VecDeque<Transmit>,
    ) -> Result<(), Vec<u8>> {
        if carries_seq {
            self.bandwidth
                .on_packet_sent(now, self.transport_seq, packet.len());
            self.transport_seq = self.transport_seq.wrapping_add(1);
        }
        match self.connection.rtp_tuple() {
            Some(tuple) if self.connection.protect_rtp(&mut packet) => {
                out.push_back(Transmit {
                    tuple,
                    data: packet,
                });
                Ok(())
            }
            _ => Err(packet),
        }
    }

    /// Protects an RTCP compound packet and queues it to the selected tuple (dropped when
    /// not connected).
    pub fn send_rtcp(&mut self, mut packet: Vec<u8>, out: &mut VecDeque<Transmit>) {
        if !self.connection.is_connected() {
            return;
        }
        if let Some(tuple) = self.connection.rtcp_tuple()
            && self.connection.protect_rtcp(&mut packet)
        {
            out.push_back(Transmit {
                tuple,
                data: packet,
            });
        }
    }

    /// `restartIce`: new local credentials. Returns the usernames the worker must stop
    /// routing here: the previous one stays routable until the browser switches, older
    /// ones go.
    pub fn restart_ice(
        &mut self,
        creds: super::ice_lite::IceCredentials,
    ) -> Result<Vec<String>, super::webrtc_connection::TransportError> {
        self.connection
            .webrtc_mut()
            .ok_or(super::webrtc_connection::TransportError::NotWebRtc)?
            .restart_ice(creds.clone())?;
        let keep = self.ufrags.len().saturating_sub(1);
        let gone = self.ufrags.drain(..keep).collect();
        self.ufrags.push(creds.ufrag);
        Ok(gone)
    }

    /// The ICE usernames the worker routes here.
    pub fn ufrags(&self) -> &[String] {
        &self.ufrags
    }

    /// When [`MediaTransport::handle_timeout`] must run next: ICE consent, DTLS
    /// retransmission, transport-cc feedback, abandonment, connect deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.connection.poll_timeout(),
            self.twcc.poll_timeout(),
            // Probes only go over WebRTC (see `send_probes`).
            self.bandwidth
                .poll_timeout()
                .filter(|_| self.connection.is_connected() && self.connection.plain().is_none()),
            self.disconnected_since.map(|t| t + ABANDONED_AFTER),
            self.connect_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When transport-cc feedback is due (media may bring it earlier).
    pub fn twcc_timeout(&self) -> Option<Instant> {
        self.twcc.poll_timeout()
    }

    /// Runs what is due: ICE consent and DTLS timers, the lifetime checks, transport-cc
    /// feedback (queued to `out`).
    pub fn handle_timeout(&mut self, now: Instant, out: &mut VecDeque<Transmit>) {
        #[cfg(any(test, feature = "fault-injection"))]
        self.strike(ArmedPanic::Timeout);
        if self.connection.poll_timeout().is_some_and(|t| t <= now) {
            self.connection.handle_timeout(now);
        }
        self.drain_connection(now);
        if self
            .disconnected_since
            .is_some_and(|t| now >= t + ABANDONED_AFTER)
        {
            self.disconnected_since = None;
            self.host_events
                .push_back(HostEvent::Close(CloseReason::Abandoned));
            return;
        }
        if self.connect_deadline.is_some() && self.connection.is_connected() {
            self.connect_deadline = None;
        } else if self.connect_deadline.is_some_and(|t| now >= t) {
            self.connect_deadline = None;
            self.host_events
                .push_back(HostEvent::Close(CloseReason::NeverConnected));
            return;
        }
        if self.twcc.poll_timeout().is_some_and(|t| t <= now) {
            let mut feedback = Vec::new();
            self.twcc
                .poll_feedback(now, FEEDBACK_SENDER_SSRC, &mut feedback);
            tracing::trace!(target: "kolabmeet::bwe", packets = feedback.len(), "transport-cc feedback");
            for p in feedback {
                self.send_rtcp(p, out);
            }
        }
        self.send_probes(now, out);
    }

    /// Sends the probe packets due (paced by [`SendBandwidth`]).
    fn send_probes(&mut self, now: Instant, out: &mut VecDeque<Transmit>) {
        // A plain receiver (ffmpeg, a recorder) gives no transport-cc feedback that a probe
        // could be measured with, and would only be confused by the probator's SSRC.
        if !self.connection.is_connected() || self.connection.plain().is_some() {
            return;
        }
        let mut packet = Vec::new();
        while self
            .bandwidth
            .poll_probe(now, self.transport_seq, &mut packet)
            .is_some()
        {
            self.transport_seq = self.transport_seq.wrapping_add(1);
            let Some(tuple) = self.connection.rtp_tuple() else {
                return;
            };
            if self.connection.protect_rtp(&mut packet) {
                out.push_back(Transmit {
                    tuple,
                    data: std::mem::take(&mut packet),
                });
            }
        }
    }

    /// The next datagram of ICE or DTLS to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.connection.poll_transmit()
    }

    /// The next thing the worker must do for this transport.
    pub fn poll_host_event(&mut self) -> Option<HostEvent> {
        self.host_events.pop_front()
    }

    /// Closes: DTLS `close_notify` (queued for [`MediaTransport::poll_transmit`]), then
    /// silence. The tuples it had are unmapped by the worker.
    pub fn close(&mut self, now: Instant) {
        self.connection.close(now);
    }

    /// The tuples mapped to it.
    pub fn tuples(&self) -> &[Tuple] {
        &self.tuples
    }

    /// Reads the connection's events: ICE state for the abandonment timer, tuples that
    /// lost consent, the end of DTLS.
    fn drain_connection(&mut self, now: Instant) {
        while let Some(e) = self.connection.poll_event() {
            tracing::debug!(target: "kolabmeet::transport", transport = %self.id, event = ?e, "transport event");
            match e {
                TransportEvent::IceState(IceState::Disconnected) => {
                    self.disconnected_since = Some(now);
                }
                TransportEvent::IceState(IceState::Connected | IceState::Completed) => {
                    self.disconnected_since = None;
                }
                TransportEvent::DtlsState(DtlsState::Failed | DtlsState::Closed) => {
                    self.host_events
                        .push_back(HostEvent::Close(CloseReason::DtlsOver));
                }
                _ => {}
            }
            if let TransportEvent::SelectedTuple(_) | TransportEvent::IceState(_) = e {
                let connection = &self.connection;
                let host_events = &mut self.host_events;
                self.tuples.retain(|t| {
                    let valid = connection.is_valid_tuple(t);
                    if !valid {
                        host_events.push_back(HostEvent::UnmapTuple(*t));
                    }
                    valid
                });
            }
        }
    }
}
