//! The sans-IO heart of a media worker, shaped like quinn's `Endpoint` and str0m's `Rtc`:
//! a thin demultiplexer of the worker's shared media port (contract section 1: one UDP
//! and one TCP port per worker, "demultiplexed by ICE username, then by address") that
//! hands each datagram to its transport and routes what the transport yields to the
//! transport's router. Transports ([`MediaTransport`]) and routers ([`Router`], one per
//! room) live in slab arenas and own their state; the core holds only the demultiplexing
//! maps, the UUID index of the engine's edge, the deadlines of both, and the outputs.
//!
//! The mio driver (`driver.rs`) owns the sockets and the clock; it feeds commands
//! (`commands.rs`), datagrams (TCP frames included) and timeouts in, and sends what comes
//! out. After each call it drains [`WorkerCore::poll_transmit`] and
//! [`WorkerCore::poll_event`], and sleeps until [`WorkerCore::poll_timeout`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use kolabmeet_net::rtp::RtpHeader;
use rand::rngs::StdRng;

use super::counters::{WorkerCounters, WorkerSizes};
use super::deadlines::Deadlines;
use super::settings::WorkerSettings;
use crate::arena::{Arena, RouterKey, TransportKey};
use crate::buffer_pool::BufferPool;
use crate::crypto::DtlsCertificate;
use crate::ids::{PeerId, RoomId, TransportId};
use crate::media_engine::EngineEvent;
use crate::ortc::{RtpCapabilities, router_rtp_capabilities};
use crate::router::{Egress, Router};
use crate::rtp_stream::MediaClock;
use crate::transport::ice_lite::peek_local_ufrag;
use crate::transport::{
    CloseReason, DropReason, HostEvent, MediaTransport, Received, Transmit, Tuple, TupleProtocol,
};
use kolabmeet_media_types::log_limit::LogLimiter;

/// Granularity of the worker's timers (ICE consent, DTLS retransmissions, transport-cc
/// feedback, NACKs, reports, key-frame requests): a deadline is served at most this late.
pub const TIMER_TICK: Duration = Duration::from_millis(10);

/// A peer's room and how many transports it has there.
#[derive(Debug, Clone, Copy)]
pub(super) struct PeerEntry {
    pub router: RouterKey,
    pub transports: usize,
}

/// A router lent for one operation, with the worker's outputs, the router capabilities
/// and the random source.
pub(super) struct RouterCall<'a> {
    pub router: &'a mut Router,
    pub egress: Egress<'a>,
    pub capabilities: &'a RtpCapabilities,
    pub rng: &'a mut StdRng,
}

/// All media state of one worker; see the module documentation.
pub struct WorkerCore {
    pub(super) settings: WorkerSettings,
    pub(super) certificate: DtlsCertificate,
    pub(super) capabilities: RtpCapabilities,
    pub(super) rng: StdRng,
    pub(super) clock: MediaClock,
    pub(super) routers: Arena<RouterKey, Router>,
    pub(super) rooms: HashMap<RoomId, RouterKey>,
    pub(super) transports: Arena<TransportKey, MediaTransport>,
    pub(super) transport_ids: HashMap<TransportId, TransportKey>,
    pub(super) peers: HashMap<PeerId, PeerEntry>,
    pub(super) by_ufrag: HashMap<String, TransportKey>,
    by_tuple: HashMap<Tuple, TransportKey>,
    /// Plain transports by the local port of their RTP and of their RTCP socket.
    pub(super) by_plain_port: HashMap<u16, TransportKey>,
    /// Local ports of closed plain transports, whose sockets the driver is to close.
    pub(super) released_ports: Vec<u16>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<EngineEvent>,
    counters: WorkerCounters,
    /// RTCP feedback received and answered.
    pub(super) feedback: crate::worker_stats::FeedbackCounters,
    /// Datagrams and bytes in and out, transports closed by DTLS and ICE failures.
    pub(super) traffic: super::counters::TrafficCounters,
    /// Packet buffers recycled between the forwarding path and the driver.
    pool: BufferPool,
    /// When timers were last served.
    last_tick: Option<Instant>,
    transport_timers: Deadlines<TransportKey>,
    router_timers: Deadlines<RouterKey>,
    /// Keys whose deadline came, reused from one timeout to the next (no allocation per
    /// timer round).
    due_transports: Vec<TransportKey>,
    due_routers: Vec<RouterKey>,
    /// Lines clients cause (transports closed by DTLS failures), rate-limited.
    log_limit: LogLimiter,
}

impl WorkerCore {
    /// A worker core with its DTLS certificate and random source.
    pub fn new(settings: WorkerSettings, certificate: DtlsCertificate, rng: StdRng) -> Self {
        let mut clock = MediaClock::default();
        clock.sender_reports = settings.sender_report_clock;
        WorkerCore {
            settings,
            certificate,
            capabilities: router_rtp_capabilities(),
            rng,
            clock,
            routers: Arena::new(),
            rooms: HashMap::new(),
            transports: Arena::new(),
            transport_ids: HashMap::new(),
            peers: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_tuple: HashMap::new(),
            by_plain_port: HashMap::new(),
            released_ports: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: WorkerCounters::default(),
            feedback: Default::default(),
            traffic: Default::default(),
            pool: BufferPool::default(),
            last_tick: None,
            transport_timers: Deadlines::default(),
            router_timers: Deadlines::default(),
            due_transports: Vec::new(),
            due_routers: Vec::new(),
            log_limit: LogLimiter::per_second(),
        }
    }

    /// Tells the core the wall clock (time since the Unix epoch) at `now`, for the NTP
    /// timestamps of its sender reports. The driver calls it at start; without it NTP
    /// time starts at the Unix epoch.
    pub fn set_wall_clock(&mut self, now: Instant, since_unix_epoch: Duration) {
        self.clock.set_wall_clock(now, since_unix_epoch);
    }

    /// Sets what consumers' sender reports map from now on (`SENDER_REPORT_CLOCK`; the
    /// driver takes it from the settings).
    pub fn set_sender_report_clock(&mut self, mapping: crate::rtp_stream::SenderReportClock) {
        self.clock.sender_reports = mapping;
    }

    /// Every transport's outgoing bandwidth with its consumers' layers (issue 9: the
    /// console's `statsTransport`), `worker` being this core's worker index.
    pub fn bandwidth_stats(
        &self,
        worker: usize,
    ) -> Vec<kolabmeet_media_types::bandwidth_stats::TransportBandwidthStats> {
        use crate::bwe::BandwidthUsage;
        self.transports
            .iter()
            .filter(|(_, t)| t.consumer_count() > 0)
            .filter_map(|(tk, t)| {
                let router = self.routers.get(t.router)?;
                let bwe = t.bandwidth.estimator();
                Some(
                    kolabmeet_media_types::bandwidth_stats::TransportBandwidthStats {
                        transport_id: t.id,
                        peer_id: t.peer,
                        room_id: router.room,
                        worker,
                        estimate_bps: t.bandwidth.estimate().bps(),
                        desired_bps: t.bandwidth.desired().bps(),
                        acked_bps: bwe.acked().map(|b| b.bps()),
                        loss: bwe.loss(),
                        delay_trend: match bwe.usage() {
                            BandwidthUsage::Normal => "normal",
                            BandwidthUsage::Overusing => "overusing",
                            BandwidthUsage::Underusing => "underusing",
                        },
                        consumers: router.consumer_layer_stats(tk),
                    },
                )
            })
            .collect()
    }

    /// Sizes of every table (tests of churn and `dumpInternals`).
    pub fn sizes(&self) -> WorkerSizes {
        let mut s = WorkerSizes {
            rooms: self.routers.len(),
            transports: self.transports.len(),
            ufrags: self.by_ufrag.len(),
            tuples: self.by_tuple.len(),
            per_transport: self.transport_ids.len() + self.transport_timers.len(),
            peers: self.peers.len(),
            room_timers: self.router_timers.len(),
            ..WorkerSizes::default()
        };
        for r in self.routers.values() {
            let rs = r.sizes();
            s.producers += rs.producers;
            s.consumers += rs.consumers;
            s.routes += rs.routes;
            s.key_frame_timers += rs.key_frame_timers;
        }
        for t in self.transports.values() {
            s.routes += t.listener.len() + t.consumer_count();
        }
        s
    }

    /// Drop counters.
    pub fn counters(&self) -> WorkerCounters {
        self.counters
    }

    /// A transport's counters of dropped input.
    pub fn transport_drops(&self, id: TransportId) -> Option<crate::transport::DropCounters> {
        let key = self.transport_ids.get(&id)?;
        Some(self.transports.get(*key)?.connection.drops())
    }

    /// Whether libsrtp holds per-SSRC state for `ssrc` on a transport, outbound (what we
    /// send) or inbound (tests of bounded state: closed consumers and producers free it).
    pub fn has_srtp_stream(&mut self, id: TransportId, ssrc: u32, outbound: bool) -> bool {
        let Some(key) = self.transport_ids.get(&id) else {
            return false;
        };
        self.transports
            .get_mut(*key)
            .is_some_and(|t| t.connection.has_srtp_stream(ssrc, outbound))
    }

    /// A router and the worker's outputs lent to it.
    pub(super) fn router_and_egress(&mut self, rk: RouterKey) -> Option<(&mut Router, Egress<'_>)> {
        let call = self.router_call(rk)?;
        Some((call.router, call.egress))
    }

    /// A router with everything a control operation on it may need.
    pub(super) fn router_call(&mut self, rk: RouterKey) -> Option<RouterCall<'_>> {
        let router = self.routers.get_mut(rk)?;
        let egress = Egress {
            transports: &mut self.transports,
            transmits: &mut self.transmits,
            events: &mut self.events,
            pool: &mut self.pool,
            clock: &mut self.clock,
            counters: &mut self.feedback,
        };
        Some(RouterCall {
            router,
            egress,
            capabilities: &self.capabilities,
            rng: &mut self.rng,
        })
    }

    /// Handles a datagram (or a TCP frame) that arrived on the worker's port: to its
    /// transport by tuple, or, from an unknown tuple, a STUN request by the ICE username
    /// it names; what the transport decrypts goes to its router.
    pub fn handle_datagram(&mut self, now: Instant, tuple: Tuple, buf: &mut Vec<u8>) {
        self.traffic.packets_in += 1;
        self.traffic.bytes_in += buf.len() as u64;
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
        let Some(transport) = self.transports.get_mut(tk) else {
            return;
        };
        let received = transport.handle_datagram(now, tuple, buf);
        self.service_transport(now, tk);
        match received {
            Received::ProtectedRtp => self.route_rtp(now, tk, buf),
            Received::Rtcp => self.route_rtcp(now, tk, buf),
            Received::Dropped(DropReason::WrongSource) => self.counters.wrong_source += 1,
            Received::Dropped(_) => self.counters.transport_dropped += 1,
            // A hosted transport leaves RTP protected: `Rtp` comes only from
            // `WebRtcTransport::handle_datagram`, which it does not call.
            Received::Handled | Received::Rtp => {}
        }
        match received {
            // Media changes no ICE or DTLS deadline; transport-cc feedback may start.
            Received::ProtectedRtp | Received::Rtcp => {
                if let Some(t) = self.transports.get(tk).and_then(|t| t.twcc_timeout()) {
                    self.transport_timers.schedule_earlier(tk, t);
                }
            }
            _ => self.schedule_transport(tk),
        }
    }

    /// RTP from transport `tk`, still protected: its producer stream is found from the
    /// header alone (by SSRC, or MID then RID), and only then is it decrypted, so what no
    /// stream wants costs no decryption; an SSRC is learnt only from a packet that
    /// authenticated. The header is read once and follows the packet to every consumer.
    fn route_rtp(&mut self, now: Instant, tk: TransportKey, buf: &mut Vec<u8>) {
        let Some(transport) = self.transports.get_mut(tk) else {
            return;
        };
        let Ok(mut header) = RtpHeader::parse(buf) else {
            transport.connection.drop_malformed();
            self.counters.transport_dropped += 1;
            return;
        };
        let rk = transport.router;
        let found = transport.listener.find(&header, buf).and_then(|(pk, _)| {
            let m = self.routers.get(rk)?.producer(pk)?.identify(&header, buf)?;
            Some((pk, m))
        });
        let Some((pk, m)) = found else {
            self.counters.unknown_ssrc += 1;
            return;
        };
        if !transport.unprotect_rtp(buf) {
            self.counters.transport_dropped += 1;
            return;
        }
        if m.learn {
            transport.listener.bind(header.ssrc, pk);
            if let Some(p) = self.routers.get_mut(rk).and_then(|r| r.producer_mut(pk)) {
                p.learn(m, header.ssrc);
            }
        }
        // Every packet of a stream that carries a transport-wide number counts for the
        // sender's bandwidth estimation, retransmissions and probes included (mediasoup's
        // `Transport::ReceiveRtpPacket` feeds its TCC server the same way), or the sender
        // would read the missing numbers as losses. What no stream wants was not
        // authenticated, and is not recorded.
        transport.record_twcc(now, &header, buf);
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

    /// A TCP connection of the worker closed.
    pub fn tcp_closed(&mut self, now: Instant, tuple: Tuple) {
        if let Some(tk) = self.by_tuple.remove(&tuple)
            && let Some(transport) = self.transports.get_mut(tk)
        {
            transport.tcp_closed(now, &tuple);
            self.service_transport(now, tk);
            self.schedule_transport(tk);
        }
    }

    /// Sends what a transport queued and does what it asks: map or unmap tuples, close.
    pub(super) fn service_transport(&mut self, now: Instant, tk: TransportKey) {
        let Some(transport) = self.transports.get_mut(tk) else {
            return;
        };
        while let Some(t) = transport.poll_transmit() {
            self.transmits.push_back(t);
        }
        let mut close = None;
        while let Some(e) = transport.poll_host_event() {
            match e {
                HostEvent::MapTuple(t) => {
                    self.by_tuple.insert(t, tk);
                }
                HostEvent::UnmapTuple(t) => {
                    self.by_tuple.remove(&t);
                }
                HostEvent::Close(reason) => close = Some(reason),
            }
        }
        let Some(reason) = close else {
            return;
        };
        let id = transport.id;
        match reason {
            CloseReason::DtlsOver => {
                self.traffic.dtls_failures += 1;
                // A failing or hostile client can make this happen at will: rate-limited.
                if let Some(suppressed) = self.log_limit.allow(now) {
                    tracing::info!(target: "kolabmeet::transport", transport = %id, suppressed, "DTLS failed or closed by the peer: transport closed");
                }
            }
            CloseReason::Abandoned => {
                self.traffic.ice_failures += 1;
                tracing::info!(target: "kolabmeet::transport", transport = %id, "ICE disconnected too long: transport closed");
            }
            CloseReason::NeverConnected => {
                self.traffic.ice_failures += 1;
                tracing::debug!(target: "kolabmeet::transport", transport = %id, "never connected: transport closed");
            }
        }
        self.close_transport(now, tk, true);
    }

    /// Closes a transport with everything it carried and forgets its routes; `by_itself`
    /// reports it to the control plane (`TransportClosed`).
    pub(super) fn close_transport(&mut self, now: Instant, tk: TransportKey, by_itself: bool) {
        let Some(rk) = self.transports.get(tk).map(|t| t.router) else {
            return;
        };
        let (producers, consumers) = match self.router_and_egress(rk) {
            Some((router, mut egress)) => router.close_transport_media(tk, &mut egress),
            None => Default::default(),
        };
        self.schedule_router(rk);
        self.transport_timers.remove(tk);
        let Some(mut transport) = self.transports.remove(tk) else {
            return;
        };
        transport.close(now);
        while let Some(t) = transport.poll_transmit() {
            self.transmits.push_back(t);
        }
        for ufrag in transport.ufrags() {
            self.by_ufrag.remove(ufrag);
        }
        for tuple in transport.tuples() {
            self.by_tuple.remove(tuple);
        }
        if let Some(p) = transport.connection.plain() {
            for port in [p.local_rtp().port(), p.local_rtcp().port()] {
                self.by_plain_port.remove(&port);
                self.released_ports.push(port);
            }
        }
        self.transport_ids.remove(&transport.id);
        if let Some(p) = self.peers.get_mut(&transport.peer) {
            p.transports = p.transports.saturating_sub(1);
            if p.transports == 0 {
                self.peers.remove(&transport.peer);
            }
        }
        if by_itself {
            self.events.push_back(EngineEvent::TransportClosed {
                peer: transport.peer,
                transport: transport.id,
                producers,
                consumers,
            });
        }
    }

    /// Schedules a transport's next deadline.
    pub(super) fn schedule_transport(&mut self, tk: TransportKey) {
        let deadline = self.transports.get(tk).and_then(|t| t.poll_timeout());
        self.transport_timers.schedule(tk, deadline);
    }

    /// Schedules a router's next deadline, and brings its transports' deadlines earlier
    /// where its work made them so (a bandwidth allocation may start a probe cluster).
    pub(super) fn schedule_router(&mut self, rk: RouterKey) {
        let Some(router) = self.routers.get(rk) else {
            self.router_timers.schedule(rk, None);
            return;
        };
        self.router_timers.schedule(rk, router.poll_timeout());
        for &tk in router.transports() {
            if let Some(t) = self
                .transports
                .get(tk)
                .and_then(MediaTransport::poll_timeout)
            {
                self.transport_timers.schedule_earlier(tk, t);
            }
        }
    }

    /// After media: a router's deadlines may only have come earlier.
    fn schedule_router_earlier(&mut self, rk: RouterKey) {
        if let Some(t) = self.routers.get(rk).and_then(Router::poll_timeout) {
            self.router_timers.schedule_earlier(rk, t);
        }
    }

    /// When [`WorkerCore::handle_timeout`] must next run: the earliest deadline, but not
    /// sooner than [`TIMER_TICK`] after the last run (deadlines close together are
    /// served in one run).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let earliest = self.earliest_deadline()?;
        Some(match self.last_tick {
            Some(t) => earliest.max(t + TIMER_TICK),
            None => earliest,
        })
    }

    /// The earliest deadline of every timer of the core.
    pub fn earliest_deadline(&self) -> Option<Instant> {
        [self.transport_timers.next(), self.router_timers.next()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Drives every timer that is due: only the transports and routers whose deadline
    /// came.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_tick = Some(now);
        let mut due = std::mem::take(&mut self.due_transports);
        self.transport_timers.take_due(now, &mut due);
        for tk in due.drain(..) {
            let Some(transport) = self.transports.get_mut(tk) else {
                continue;
            };
            transport.handle_timeout(now, &mut self.transmits);
            // It may close (DTLS over, abandoned, never connected).
            self.service_transport(now, tk);
            self.schedule_transport(tk);
        }
        self.due_transports = due;
        let mut due = std::mem::take(&mut self.due_routers);
        self.router_timers.take_due(now, &mut due);
        for rk in due.drain(..) {
            if let Some((router, mut egress)) = self.router_and_egress(rk) {
                router.handle_timeout(now, &mut egress);
            }
            self.schedule_router(rk);
        }
        self.due_routers = due;
    }

    /// The local port of a closed plain transport's socket, for the driver to close it.
    pub fn poll_released_port(&mut self) -> Option<u16> {
        self.released_ports.pop()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        self.traffic.packets_out += 1;
        self.traffic.bytes_out += t.data.len() as u64;
        Some(t)
    }

    /// Gives the buffer of a sent datagram back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.pool.give(buf);
    }

    /// The next event for the control plane.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop_front()
    }

    /// The address the worker listens on (`WEBRTC_LISTEN_IP`).
    pub fn listen_ip(&self) -> std::net::IpAddr {
        self.settings.listen_ip
    }

    /// The protocol a tuple of this worker uses for `remote` (helper for drivers).
    pub fn tuple(&self, protocol: TupleProtocol, remote: std::net::SocketAddr) -> Tuple {
        Tuple {
            protocol,
            local: std::net::SocketAddr::new(self.settings.listen_ip, self.settings.port),
            remote,
        }
    }
}
