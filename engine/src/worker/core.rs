//! The sans-IO heart of a media worker: every room (router) the worker hosts, their
//! WebRTC transports, and the demultiplexing of the worker's shared media port (contract
//! section 1: one UDP and one TCP port per worker, "demultiplexed by ICE username, then
//! by address").
//!
//! The mio driver (`driver.rs`) owns the sockets and the clock; it feeds commands,
//! datagrams (TCP frames included) and timeouts in, and sends what comes out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use rand::rngs::StdRng;

use super::media::MediaState;
use crate::crypto::DtlsCertificate;
use crate::ids::{PeerId, RoomId, TransportId};
use crate::media_engine::{
    EngineCommand, EngineError, EngineEvent, EngineReply, ErrorSource, RequestTag,
};
use crate::ortc::{DtlsParameters, RtpCapabilities, router_rtp_capabilities};
use crate::transport::ice_lite::peek_local_ufrag;
use crate::transport::{
    CloseReason, HostEvent, IceCredentials, MediaTransport, Received, Transmit, Tuple,
    TupleProtocol, WebRtcTransport,
};
use kolabmeet_media_types::log_limit::LogLimiter;
use kolabmeet_media_types::replies::{
    IceCandidate, IceParameters, IceProtocol, WebRtcTransportInfo,
};

/// Transports one worker hosts at most (every peer has two); beyond, creation fails.
pub const MAX_TRANSPORTS: usize = 20_000;

/// Where the worker listens and what it tells clients.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `WEBRTC_LISTEN_IP`.
    pub listen_ip: IpAddr,
    /// `WEBRTC_ANNOUNCED_ADDRESS`, or the listen address.
    pub announced_address: String,
    /// The worker's UDP and TCP port (44444 + worker index).
    pub port: u16,
}

/// Counters of what the worker dropped, for stats and the console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Datagrams from unknown tuples that were not a STUN request naming a transport.
    pub unknown_source: u64,
    /// Datagrams a transport dropped (see its own counters).
    pub transport_dropped: u64,
    /// Decrypted RTP that no producer of its transport claimed.
    pub unknown_ssrc: u64,
    /// Decrypted RTCP compound packets that did not parse to the end.
    pub malformed_rtcp: u64,
}

/// Table sizes of a worker core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSizes {
    /// Rooms.
    pub rooms: usize,
    /// WebRTC transports.
    pub transports: usize,
    /// ICE usernames routed.
    pub ufrags: usize,
    /// Tuples routed.
    pub tuples: usize,
    /// Producers.
    pub producers: usize,
    /// Consumers.
    pub consumers: usize,
    /// SSRC, MID and fan-out entries.
    pub routes: usize,
    /// Key frame request timers.
    pub key_frame_timers: usize,
    /// Per-transport deadlines scheduled.
    pub per_transport: usize,
}

/// All media state of one worker.
pub struct WorkerCore {
    settings: WorkerSettings,
    certificate: DtlsCertificate,
    pub(super) capabilities: RtpCapabilities,
    pub(super) rng: StdRng,
    /// Time base of abs-send-time, set by the first packet sent.
    pub(super) epoch: Option<Instant>,
    rooms: HashMap<RoomId, HashSet<TransportId>>,
    pub(super) transports: HashMap<TransportId, MediaTransport>,
    by_ufrag: HashMap<String, TransportId>,
    by_tuple: HashMap<Tuple, TransportId>,
    pub(super) media: MediaState,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<EngineEvent>,
    pub(super) counters: WorkerCounters,
    /// Packet buffers recycled between the forwarding path and the driver.
    pub(super) pool: super::buffer_pool::BufferPool,
    /// When timers were last served.
    pub(super) last_tick: Option<Instant>,
    /// Each transport's next deadline.
    pub(super) timers: super::timers::TransportTimers,
    /// Lines clients cause (transports closed by DTLS failures), rate-limited.
    log_limit: LogLimiter,
}

/// Granularity of the worker's timers (ICE consent, DTLS retransmissions, transport-cc
/// feedback, NACKs, reports, key-frame requests): a deadline is served at most this late.
pub const TIMER_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// mediasoup's host candidate priorities (UDP preferred over TCP).
const UDP_PRIORITY: u32 = 1_076_302_079;
const TCP_PRIORITY: u32 = 1_076_276_479;

impl WorkerCore {
    /// A worker core with its DTLS certificate and random source.
    pub fn new(settings: WorkerSettings, certificate: DtlsCertificate, rng: StdRng) -> Self {
        WorkerCore {
            settings,
            certificate,
            capabilities: router_rtp_capabilities(),
            rng,
            epoch: None,
            media: MediaState::default(),
            rooms: HashMap::new(),
            transports: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_tuple: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: WorkerCounters::default(),
            pool: super::buffer_pool::BufferPool::default(),
            last_tick: None,
            timers: super::timers::TransportTimers::default(),
            log_limit: LogLimiter::per_second(),
        }
    }

    /// Sizes of every table (tests of churn and `dumpInternals`).
    pub fn sizes(&self) -> WorkerSizes {
        WorkerSizes {
            rooms: self.rooms.len(),
            transports: self.transports.len(),
            ufrags: self.by_ufrag.len(),
            tuples: self.by_tuple.len(),
            producers: self.media.producers.len(),
            consumers: self.media.consumers.len(),
            routes: self
                .transports
                .values()
                .map(|t| t.listener.len() + t.consumer_count())
                .sum::<usize>()
                + self.media.fanout.len(),
            key_frame_timers: self
                .media
                .producers
                .values()
                .map(|p| p.key_frames.active_ssrcs())
                .sum(),
            per_transport: self.timers.len(),
        }
    }

    /// The room and owner check of a transport.
    pub(super) fn transport_room(
        &self,
        peer: PeerId,
        id: TransportId,
    ) -> Result<RoomId, EngineError> {
        match self.transports.get(&id) {
            Some(e) if e.peer == peer => Ok(e.room),
            _ => Err(EngineError::TransportNotFound(id)),
        }
    }

    /// Drop counters.
    pub fn counters(&self) -> WorkerCounters {
        self.counters
    }

    /// A transport's counters of dropped input.
    pub fn transport_drops(&self, id: TransportId) -> Option<crate::transport::DropCounters> {
        self.transports.get(&id).map(|e| e.connection.drops())
    }

    /// Whether libsrtp holds per-SSRC state for `ssrc` on a transport, outbound (what we
    /// send) or inbound (tests of bounded state: closed consumers and producers free it).
    pub fn has_srtp_stream(&mut self, id: TransportId, ssrc: u32, outbound: bool) -> bool {
        self.transports
            .get_mut(&id)
            .is_some_and(|e| e.connection.has_srtp_stream(ssrc, outbound))
    }

    fn reply(&mut self, tag: RequestTag, result: Result<EngineReply, EngineError>) {
        self.events.push_back(EngineEvent::Reply { tag, result });
    }

    /// Handles a command of the control plane.
    pub fn handle_command(&mut self, now: Instant, command: EngineCommand) {
        match command {
            EngineCommand::CreateRouter { room } => {
                self.rooms.entry(room).or_default();
            }
            EngineCommand::CloseRouter { room } => {
                for id in self.rooms.remove(&room).unwrap_or_default() {
                    self.close_transport(now, id, false);
                }
            }
            EngineCommand::ClosePeer { room, peer } => {
                let ids: Vec<TransportId> = self
                    .transports
                    .iter()
                    .filter(|(_, e)| e.peer == peer && e.room == room)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.close_transport(now, id, false);
                }
            }
            EngineCommand::CreateWebRtcTransport {
                tag,
                room,
                peer,
                force_tcp,
                ..
            } => {
                let result = self.create_webrtc_transport(room, peer, force_tcp);
                self.reply(tag, result);
            }
            EngineCommand::ConnectWebRtcTransport {
                tag,
                peer,
                transport,
                dtls_parameters,
            } => {
                let result = self.connect(now, peer, transport, dtls_parameters);
                self.reply(tag, result);
            }
            EngineCommand::RestartIce {
                tag,
                peer,
                transport,
            } => {
                let creds = IceCredentials::random(&mut self.rng);
                let result = match self.owned(peer, transport) {
                    Err(e) => Err(e),
                    Ok(entry) => {
                        let old = entry.connection.ice_credentials().ufrag.clone();
                        match entry.restart_ice(creds.clone()) {
                            Ok(()) => {
                                // The previous ufrag stays routable until the browser
                                // switches; older ones go.
                                self.by_ufrag.retain(|u, t| *t != transport || *u == old);
                                self.by_ufrag.insert(creds.ufrag.clone(), transport);
                                Ok(EngineReply::IceRestarted(ice_parameters(&creds)))
                            }
                            Err(e) => Err(EngineError::Transport(ErrorSource::new(e))),
                        }
                    }
                };
                self.reply(tag, result);
            }
            EngineCommand::Produce {
                tag,
                peer,
                transport,
                kind,
                rtp_parameters,
                ..
            } => {
                let result = self.produce(peer, transport, kind, rtp_parameters, false);
                self.reply(tag, result);
            }
            EngineCommand::Consume {
                tag,
                peer,
                transport,
                producer,
                rtp_capabilities,
                paused,
            } => {
                let result =
                    self.consume(now, peer, transport, producer, &rtp_capabilities, paused);
                self.reply(tag, result);
            }
            EngineCommand::CloseProducer {
                tag,
                peer,
                producer,
            } => {
                let result = match self.media.producers.get(&producer) {
                    Some(p) if p.peer == peer => {
                        self.close_producer(producer);
                        Ok(EngineReply::Done)
                    }
                    _ => Err(EngineError::ProducerNotFound(producer)),
                };
                self.reply(tag, result);
            }
            EngineCommand::SetProducerPaused {
                tag,
                peer,
                producer,
                paused,
            } => {
                let result = self.set_producer_paused(now, peer, producer, paused);
                self.reply(tag, result);
            }
            EngineCommand::SetConsumerPaused {
                tag,
                peer,
                consumer,
                paused,
            } => {
                let result = self.set_consumer_paused(now, peer, consumer, paused);
                self.reply(tag, result);
            }
            EngineCommand::CloseConsumer { peer, consumer } => {
                if self
                    .media
                    .consumers
                    .get(&consumer)
                    .is_some_and(|c| c.peer == peer)
                {
                    self.close_consumer(consumer);
                }
            }
            EngineCommand::CloseProducersOf { peer } => self.close_producers_of(peer),
            EngineCommand::CreatePlainTransport { tag, .. }
            | EngineCommand::ConnectPlainTransport { tag, .. } => {
                // Plain RTP transports come with the next issue.
                self.reply(tag, Err(EngineError::PlainTransportUnavailable));
            }
        }
    }

    fn owned(&mut self, peer: PeerId, id: TransportId) -> Result<&mut MediaTransport, EngineError> {
        match self.transports.get_mut(&id) {
            Some(e) if e.peer == peer => Ok(e),
            _ => Err(EngineError::TransportNotFound(id)),
        }
    }

    fn create_webrtc_transport(
        &mut self,
        room: RoomId,
        peer: PeerId,
        force_tcp: bool,
    ) -> Result<EngineReply, EngineError> {
        if self.transports.len() >= MAX_TRANSPORTS {
            return Err(EngineError::Busy);
        }
        let mut creds = IceCredentials::random(&mut self.rng);
        while self.by_ufrag.contains_key(&creds.ufrag) {
            creds = IceCredentials::random(&mut self.rng);
        }
        let transport = WebRtcTransport::new(creds.clone(), self.certificate.clone())
            .map_err(|e| EngineError::Transport(ErrorSource::new(e)))?;
        let id = TransportId::random();
        let dtls = transport.local_dtls_parameters();
        let mut candidates = Vec::new();
        let addr = &self.settings.announced_address;
        let port = self.settings.port;
        let candidate = |foundation, priority, protocol, tcp_type| IceCandidate {
            foundation,
            priority,
            address: addr.clone(),
            ip: addr.clone(),
            protocol,
            port,
            candidate_type: "host",
            tcp_type,
        };
        if !force_tcp {
            candidates.push(candidate(
                "udpcandidate",
                UDP_PRIORITY,
                IceProtocol::Udp,
                None,
            ));
        }
        candidates.push(candidate(
            "tcpcandidate",
            TCP_PRIORITY,
            IceProtocol::Tcp,
            Some("passive"),
        ));
        self.by_ufrag.insert(creds.ufrag.clone(), id);
        self.rooms.entry(room).or_default().insert(id);
        self.transports
            .insert(id, MediaTransport::new(id, peer, room, transport));
        tracing::debug!(target: "kolabmeet::transport", %room, %peer, transport = %id, "WebRTC transport created");
        Ok(EngineReply::WebRtcTransportCreated(WebRtcTransportInfo {
            id,
            ice_parameters: ice_parameters(&creds),
            ice_candidates: candidates,
            dtls_parameters: dtls,
        }))
    }

    fn connect(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: TransportId,
        dtls: DtlsParameters,
    ) -> Result<EngineReply, EngineError> {
        let entry = self.owned(peer, id)?;
        entry
            .connect(now, dtls)
            .map_err(|e| EngineError::Transport(ErrorSource::new(e)))?;
        self.drain_transport(now, id);
        self.schedule(id);
        Ok(EngineReply::Done)
    }

    /// Closes a transport and forgets its routes; `by_itself` reports it to the control
    /// plane (`TransportClosed`).
    pub(super) fn close_transport(&mut self, now: Instant, id: TransportId, by_itself: bool) {
        let (producers, consumers) = self.close_transport_media(id);
        self.timers.remove(id);
        let Some(mut entry) = self.transports.remove(&id) else {
            return;
        };
        entry.close(now);
        while let Some(t) = entry.poll_transmit() {
            self.transmits.push_back(t);
        }
        self.by_ufrag.retain(|_, t| *t != id);
        for tuple in entry.tuples() {
            self.by_tuple.remove(tuple);
        }
        if let Some(set) = self.rooms.get_mut(&entry.room) {
            set.remove(&id);
        }
        if by_itself {
            self.events.push_back(EngineEvent::TransportClosed {
                peer: entry.peer,
                transport: id,
                producers,
                consumers,
            });
        }
    }

    /// Handles a datagram (or a TCP frame) that arrived on the worker's port. RTP and RTCP
    /// are decrypted in place; routing them comes with producers and consumers.
    pub fn handle_datagram(&mut self, now: Instant, tuple: Tuple, buf: &mut Vec<u8>) {
        let mapped = self.by_tuple.get(&tuple).copied();
        let id = match mapped {
            Some(id) => id,
            None => {
                // Unknown source: only a STUN request naming a transport may come in.
                let found = (buf.first().is_some_and(|b| *b < 4))
                    .then(|| peek_local_ufrag(buf))
                    .flatten()
                    .and_then(|ufrag| self.by_ufrag.get(&ufrag).copied());
                match found {
                    Some(id) => id,
                    None => {
                        self.counters.unknown_source += 1;
                        return;
                    }
                }
            }
        };
        let Some(entry) = self.transports.get_mut(&id) else {
            return;
        };
        let received = entry.handle_datagram(now, tuple, buf);
        self.drain_transport(now, id);
        match received {
            Received::Rtp => self.route_rtp(now, id, buf),
            Received::Rtcp => self.handle_rtcp(now, id, buf),
            Received::Dropped(_) => self.counters.transport_dropped += 1,
            Received::Handled => {}
        }
        match received {
            // Media changes no ICE or DTLS deadline; transport-cc feedback may start.
            Received::Rtp | Received::Rtcp => self.schedule_twcc(id),
            _ => self.schedule(id),
        }
    }

    /// A TCP connection of the worker closed.
    pub fn tcp_closed(&mut self, now: Instant, tuple: Tuple) {
        if let Some(id) = self.by_tuple.remove(&tuple)
            && let Some(entry) = self.transports.get_mut(&id)
        {
            entry.tcp_closed(now, &tuple);
            self.drain_transport(now, id);
            self.schedule(id);
        }
    }

    /// Sends what a transport queued and does what it asks: map or unmap tuples, close.
    pub(super) fn drain_transport(&mut self, now: Instant, id: TransportId) {
        let Some(entry) = self.transports.get_mut(&id) else {
            return;
        };
        while let Some(t) = entry.poll_transmit() {
            self.transmits.push_back(t);
        }
        let mut close = None;
        while let Some(e) = entry.poll_host_event() {
            match e {
                HostEvent::MapTuple(t) => {
                    self.by_tuple.insert(t, id);
                }
                HostEvent::UnmapTuple(t) => {
                    self.by_tuple.remove(&t);
                }
                HostEvent::Close(reason) => close = Some(reason),
            }
        }
        match close {
            Some(CloseReason::DtlsOver) => {
                // A failing or hostile client can make this happen at will: rate-limited.
                if let Some(suppressed) = self.log_limit.allow(now) {
                    tracing::info!(target: "kolabmeet::transport", transport = %id, suppressed, "DTLS failed or closed by the peer: transport closed");
                }
                self.close_transport(now, id, true);
            }
            Some(CloseReason::Abandoned) => {
                tracing::info!(target: "kolabmeet::transport", transport = %id, "ICE disconnected too long: transport closed");
                self.close_transport(now, id, true);
            }
            Some(CloseReason::NeverConnected) => {
                tracing::debug!(target: "kolabmeet::transport", transport = %id, "never connected: transport closed");
                self.close_transport(now, id, true);
            }
            None => {}
        }
    }

    /// Protects `packet` (RTCP) and queues it to `transport`'s selected tuple.
    pub(super) fn send_rtcp_on(&mut self, transport: TransportId, packet: Vec<u8>) {
        if let Some(entry) = self.transports.get_mut(&transport) {
            entry.send_rtcp(packet, &mut self.transmits);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Gives the buffer of a sent datagram back for reuse.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.pool.give(buf);
    }

    /// The next event for the control plane.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop_front()
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

/// `iceParameters` as mediasoup-client expects them.
fn ice_parameters(creds: &IceCredentials) -> IceParameters {
    IceParameters {
        username_fragment: creds.ufrag.clone(),
        password: creds.pwd.clone(),
        ice_lite: true,
    }
}
