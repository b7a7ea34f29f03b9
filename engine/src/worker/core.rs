//! The sans-IO heart of a media worker, shaped like quinn's `Endpoint` and str0m's `Rtc`:
//! a thin demultiplexer of the worker's shared media port (contract section 1: one UDP
//! and one TCP port per worker, "demultiplexed by ICE username, then by address") that
//! hands each datagram to its transport and routes what the transport yields to the
//! transport's router. Transports ([`MediaTransport`]) and routers ([`Router`], one per
//! room) live in slab arenas and own their state; the core holds only the demultiplexing
//! maps, the UUID index of the engine's edge, the deadlines of both, and the outputs.
//!
//! The mio driver (`driver.rs`) owns the sockets and the clock; it feeds commands
//! (`commands.rs`), datagrams (TCP frames included: `ingress.rs`) and timeouts in, and
//! sends what comes out. After each call it drains [`WorkerCore::poll_transmit`] and
//! [`WorkerCore::poll_event`], and sleeps until [`WorkerCore::poll_timeout`]. What one
//! transport's datagram or timer makes the core do runs contained (`containment.rs`): a
//! panic there closes that transport, not the worker.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;

use super::counters::{WorkerCounters, WorkerSizes};
use super::deadlines::Deadlines;
use super::settings::WorkerSettings;
use crate::arena::{Arena, RouterKey, TransportKey};
use crate::buffer_pool::BufferPool;
use crate::crypto::DtlsCertificate;
use crate::ids::{PeerId, RoomId, TransportId};
use crate::media_engine::EngineEvent;
use crate::mirror::{PipeOutbox, WorkerIndex};
use crate::ortc::{RtpCapabilities, router_rtp_capabilities};
use crate::router::{Egress, RoomTransports, Router};
use crate::rtp_stream::MediaClock;
use crate::transport::{CloseReason, HostEvent, MediaTransport, Transmit, Tuple, TupleProtocol};
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
    /// This worker's index among the engine's (what mirrors name their origin by).
    pub(super) index: WorkerIndex,
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
    pub(super) by_tuple: HashMap<Tuple, TransportKey>,
    /// Plain transports by the local port of their RTP and of their RTCP socket.
    pub(super) by_plain_port: HashMap<u16, TransportKey>,
    /// Local ports of closed plain transports, whose sockets the driver is to close.
    pub(super) released_ports: Vec<u16>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<EngineEvent>,
    pub(super) counters: WorkerCounters,
    /// RTCP feedback received and answered.
    pub(super) feedback: crate::worker_stats::FeedbackCounters,
    /// Datagrams and bytes in and out, transports closed by DTLS and ICE failures and by
    /// panics.
    pub(super) traffic: super::counters::TrafficCounters,
    /// Packet buffers recycled between the forwarding path and the driver.
    pool: BufferPool,
    /// Messages for other workers (issue 16: rooms over several workers).
    pub(super) pipes: PipeOutbox,
    /// The overload shed level the driver set (issue 16).
    pub(super) shed: u8,
    /// What arrives now waited in the socket while the worker's loop stalled.
    pub(super) stale_input: bool,
    /// `consume` requests waiting for their producer's mirror.
    pub(super) parked: super::parked_consumes::ParkedConsumes,
    /// `createPlainTransport` requests waiting for the two ports the driver binds
    /// ([`WorkerCore::serve_port_requests`]).
    pub(super) port_requests: Vec<(crate::media_engine::RequestTag, RoomId, PeerId)>,
    /// When timers were last served.
    last_tick: Option<Instant>,
    pub(super) transport_timers: Deadlines<TransportKey>,
    router_timers: Deadlines<RouterKey>,
    /// Keys whose deadline came, reused from one timeout to the next (no allocation per
    /// timer round).
    due_transports: Vec<TransportKey>,
    due_routers: Vec<RouterKey>,
    /// Lines clients cause (transports closed by DTLS failures), rate-limited.
    log_limit: LogLimiter,
    /// Transports closed by a contained panic, logged at error level, rate-limited apart
    /// (DTLS failures must not hide them).
    pub(super) panic_log_limit: LogLimiter,
}

impl WorkerCore {
    /// A worker core with its DTLS certificate and random source.
    pub fn new(settings: WorkerSettings, certificate: DtlsCertificate, rng: StdRng) -> Self {
        let mut clock = MediaClock::default();
        clock.sender_reports = settings.sender_report_clock;
        WorkerCore {
            index: WorkerIndex(0),
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
            pipes: PipeOutbox::default(),
            parked: Default::default(),
            port_requests: Vec::new(),
            shed: 0,
            stale_input: false,
            last_tick: None,
            transport_timers: Deadlines::default(),
            router_timers: Deadlines::default(),
            due_transports: Vec::new(),
            due_routers: Vec::new(),
            log_limit: LogLimiter::per_second(),
            panic_log_limit: LogLimiter::per_second(),
        }
    }

    /// The driver's loop stalled (the process was stopped, or starved of CPU, for longer
    /// than a media packet is worth): until it says otherwise, the RTP media it hands over
    /// waited in the socket meanwhile, and is taken in (statistics, sequence numbers, the
    /// store) but not forwarded; consumers skip its numbers, and receivers ask for the key
    /// frames they need. Replaying seconds of media in one burst helped no receiver
    /// (issue 18 §4: 5 s of a stopped server reached a Chromium receiver at 14 times the
    /// stream's packet rate).
    pub fn set_stale_input(&mut self, stale: bool) {
        self.stale_input = stale;
    }

    /// Sets the overload shed level (the driver's `LoadShed`): every transport's
    /// consumers are allocated again under its caps at their router's next round.
    pub fn set_shed_level(&mut self, level: u8) {
        if level == self.shed {
            return;
        }
        tracing::info!(target: "kolabmeet::worker", worker = %self.index, level, "overload: shed level");
        self.shed = level;
        for t in self.transports.values_mut() {
            t.bandwidth.invalidate();
        }
    }

    /// The overload shed level.
    pub fn shed_level(&self) -> u8 {
        self.shed
    }

    /// Sets this worker's index among the engine's (the driver's; 0 until set).
    pub fn set_index(&mut self, index: WorkerIndex) {
        self.index = index;
    }

    /// This worker's index among the engine's.
    pub fn index(&self) -> WorkerIndex {
        self.index
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
                        trial_bps: t.bandwidth.trial().bps(),
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
            transports: RoomTransports::new(&mut self.transports, rk),
            transmits: &mut self.transmits,
            events: &mut self.events,
            pool: &mut self.pool,
            clock: &mut self.clock,
            counters: &mut self.feedback,
            pipes: &mut self.pipes,
            shed: self.shed,
            stale: self.stale_input,
        };
        Some(RouterCall {
            router,
            egress,
            capabilities: &self.capabilities,
            rng: &mut self.rng,
        })
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
    pub(super) fn schedule_router_earlier(&mut self, rk: RouterKey) {
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
        [
            self.transport_timers.next(),
            self.router_timers.next(),
            self.parked.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Drives every timer that is due: only the transports and routers whose deadline
    /// came.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_tick = Some(now);
        // A `consume` whose producer's mirror never came is answered as it would have
        // been at once.
        for command in self.parked.take_expired(now) {
            self.run_parked(now, command, false);
        }
        let mut due = std::mem::take(&mut self.due_transports);
        self.transport_timers.take_due(now, &mut due);
        for tk in due.drain(..) {
            let Some(id) = self.transports.get(tk).map(|t| t.id) else {
                continue;
            };
            // Its DTLS retransmissions and ICE consent run contained, as its datagrams do.
            self.contained(now, tk, id, |core| {
                if let Some(transport) = core.transports.get_mut(tk) {
                    transport.handle_timeout(now, &mut core.transmits);
                }
                // It may close (DTLS over, abandoned, never connected).
                core.service_transport(now, tk);
                core.schedule_transport(tk);
            });
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
