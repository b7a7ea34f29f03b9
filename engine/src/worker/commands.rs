//! The control plane's commands to a worker core (contract sections 4 and 5: the media
//! requests of `mediasoup-client`, and closing what peers and rooms leave behind),
//! translated at the engine's edge from UUIDs to keys: transport operations are done here
//! (they touch the demultiplexing maps), media operations are handed to the room's
//! [`Router`]. Every request is answered with one `Reply` event.

use std::net::SocketAddr;
use std::time::Instant;

use super::core::{PeerEntry, RouterCall, WorkerCore};
use crate::arena::{ProducerKey, RouterKey, TransportKey};
use crate::ids::{ConsumerId, PeerId, ProducerId, RoomId, TransportId};
use crate::media_engine::{
    EngineCommand, EngineError, EngineEvent, EngineReply, ErrorSource, Refusal, RequestTag,
};
use crate::ortc::DtlsParameters;
use crate::router::{ConsumeRequest, ProduceRequest, Router};
use crate::transport::{
    IceCredentials, MAX_PLAIN_TRANSPORTS, MediaTransport, PlainTransport, WebRtcConnection,
};
use kolabmeet_media_types::replies::{
    IceCandidate, IceParameters, IceProtocol, PlainTransportInfo, WebRtcTransportInfo,
};

/// Transports one worker hosts at most (every peer has two); beyond, creation fails.
pub const MAX_TRANSPORTS: usize = 20_000;

/// mediasoup's host candidate priorities (UDP preferred over TCP).
const UDP_PRIORITY: u32 = 1_076_302_079;
const TCP_PRIORITY: u32 = 1_076_276_479;

/// `createPlainTransport` requests waiting for ports at once, at most (a driver serves
/// them in the round that queued them; more is a burst of commands to refuse).
const MAX_PORT_REQUESTS: usize = 64;

impl WorkerCore {
    /// Handles a command of the control plane: one method per command, and the answer of
    /// those that take one.
    pub fn handle_command(&mut self, now: Instant, command: EngineCommand) {
        match command {
            EngineCommand::CreateRouter { room } => {
                self.router_of_room(room);
            }
            EngineCommand::CloseRouter { room } => self.close_router(now, room),
            EngineCommand::ClosePeer { room, peer } => self.close_peer(now, room, peer),
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
                let result = self.restart_ice(peer, transport);
                self.reply(tag, result);
            }
            EngineCommand::Produce {
                tag,
                peer,
                transport,
                kind,
                rtp_parameters,
                source,
            } => {
                let req = |tk| ProduceRequest {
                    peer,
                    transport: tk,
                    kind,
                    rtp_parameters,
                    source,
                    paused: false,
                };
                let result = self.produce(peer, transport, req);
                self.reply(tag, result);
            }
            command @ EngineCommand::Consume { .. } => self.consume(now, command),
            EngineCommand::CloseProducer {
                tag,
                peer,
                producer,
            } => {
                let result = self.close_producer(peer, producer);
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
            EngineCommand::CloseConsumer { peer, consumer } => self.close_consumer(peer, consumer),
            EngineCommand::CloseProducersOf { peer } => {
                self.with_router_of(peer, |router, egress| {
                    router.close_producers_of(peer, egress);
                });
            }
            EngineCommand::CreatePlainTransport {
                tag, room, peer, ..
            } => self.request_plain_transport(tag, room, peer),
            EngineCommand::ConnectPlainTransport {
                tag,
                peer,
                transport,
                ip,
                port,
                rtcp_port,
            } => {
                let result = self.connect_plain_transport(peer, transport, ip, port, rtcp_port);
                self.reply(tag, result);
            }
        }
    }

    /// `ClosePeer`: every transport of `peer` in `room` closes, with its producers and
    /// consumers.
    fn close_peer(&mut self, now: Instant, room: RoomId, peer: PeerId) {
        let Some(router) = self.rooms.get(&room).and_then(|rk| self.routers.get(*rk)) else {
            return;
        };
        let owned: Vec<TransportKey> = router
            .transports()
            .iter()
            .copied()
            .filter(|tk| self.transports.get(*tk).is_some_and(|t| t.peer == peer))
            .collect();
        for tk in owned {
            self.close_transport(now, tk, false);
        }
    }

    /// `produce` on `peer`'s `transport` (`request` made for its key).
    fn produce(
        &mut self,
        peer: PeerId,
        transport: TransportId,
        request: impl FnOnce(TransportKey) -> ProduceRequest,
    ) -> Result<EngineReply, EngineError> {
        let (tk, rk) = self.owned(peer, transport)?;
        let c = self.call(rk)?;
        let mut egress = c.egress;
        c.router
            .produce(request(tk), c.capabilities, c.rng, &mut egress)
            .map(EngineReply::ProducerCreated)
    }

    /// `consume`: answered at once, or, in a room over several workers whose producer's
    /// mirror is not here yet, parked until it is.
    fn consume(&mut self, now: Instant, command: EngineCommand) {
        let EngineCommand::Consume {
            tag,
            peer,
            transport,
            producer,
            rtp_capabilities,
            paused,
        } = command
        else {
            return;
        };
        let mut spread = false;
        let result = self.owned(peer, transport).and_then(|(tk, rk)| {
            let req = ConsumeRequest {
                peer,
                transport: tk,
                producer,
                rtp_capabilities: &rtp_capabilities,
                paused,
            };
            let c = self.call(rk)?;
            spread = c.router.is_spread();
            let mut egress = c.egress;
            let info = c.router.consume(now, req, c.rng, &mut egress);
            self.schedule_router(rk);
            info
        });
        if spread && matches!(result, Err(EngineError::ProducerNotFound(_))) {
            // Its mirror may be on its way from its origin worker: wait for it.
            let command = EngineCommand::Consume {
                tag,
                peer,
                transport,
                producer,
                rtp_capabilities,
                paused,
            };
            if self.parked.park(now, producer, command) {
                return;
            }
        }
        self.reply(tag, result.map(EngineReply::ConsumerCreated));
    }

    /// `closeProducer`.
    fn close_producer(
        &mut self,
        peer: PeerId,
        producer: ProducerId,
    ) -> Result<EngineReply, EngineError> {
        self.on_producer_of(peer, producer, |router, pk, egress| {
            router.close_producer(pk, egress);
        })
    }

    /// `pauseProducer` / `resumeProducer`.
    fn set_producer_paused(
        &mut self,
        now: Instant,
        peer: PeerId,
        producer: ProducerId,
        paused: bool,
    ) -> Result<EngineReply, EngineError> {
        self.on_producer_of(peer, producer, |router, pk, egress| {
            router.set_producer_paused(now, pk, paused, egress);
        })
    }

    /// `pauseConsumer` / `resumeConsumer`.
    fn set_consumer_paused(
        &mut self,
        now: Instant,
        peer: PeerId,
        consumer: ConsumerId,
        paused: bool,
    ) -> Result<EngineReply, EngineError> {
        self.with_router_of(peer, |router, egress| {
            let ck = router
                .consumer_of(peer, consumer)
                .ok_or(EngineError::ConsumerNotFound(consumer))?;
            router.set_consumer_paused(now, ck, paused, egress);
            Ok(EngineReply::Done)
        })
        .unwrap_or(Err(EngineError::ConsumerNotFound(consumer)))
    }

    /// Runs `act` on `peer`'s `producer` in its router: done, or not found (no such
    /// producer of that peer, or the peer has no router).
    fn on_producer_of(
        &mut self,
        peer: PeerId,
        producer: ProducerId,
        act: impl FnOnce(&mut Router, ProducerKey, &mut crate::router::Egress<'_>),
    ) -> Result<EngineReply, EngineError> {
        self.with_router_of(peer, |router, egress| {
            let pk = router
                .producer_of(peer, producer)
                .ok_or(EngineError::ProducerNotFound(producer))?;
            act(router, pk, egress);
            Ok(EngineReply::Done)
        })
        .unwrap_or(Err(EngineError::ProducerNotFound(producer)))
    }

    /// A consumer closes (its peer's request, or the control plane's).
    fn close_consumer(&mut self, peer: PeerId, consumer: ConsumerId) {
        self.with_router_of(peer, |router, egress| {
            if let Some(ck) = router.consumer_of(peer, consumer) {
                router.close_consumer(ck, egress);
            }
        });
    }

    /// `createPlainTransport`: queued until the driver bound the two ports
    /// ([`WorkerCore::serve_port_requests`], in the same round of its loop); refused when
    /// no more plain transports may be made.
    fn request_plain_transport(&mut self, tag: RequestTag, room: RoomId, peer: PeerId) {
        if self.plain_transport_allowed() && self.port_requests.len() < MAX_PORT_REQUESTS {
            self.port_requests.push((tag, room, peer));
        } else {
            self.reply(tag, Err(EngineError::PlainTransportUnavailable));
        }
    }

    /// `connectPlainTransport`: where the plain receiver listens.
    fn connect_plain_transport(
        &mut self,
        peer: PeerId,
        transport: TransportId,
        ip: std::net::IpAddr,
        port: u16,
        rtcp_port: u16,
    ) -> Result<EngineReply, EngineError> {
        self.owned(peer, transport).and_then(|(tk, _)| {
            let plain = self.transports[tk]
                .connection
                .plain_mut()
                .ok_or_else(|| EngineError::Refused(Refusal::NotAPlainTransport))?;
            plain
                .connect(ip, port, rtcp_port)
                .map_err(|e| EngineError::Transport(ErrorSource::new(e)))?;
            tracing::debug!(target: "kolabmeet::transport", %peer, %transport, %ip, port, rtcp_port, "plain transport connected");
            Ok(EngineReply::Done)
        })
    }

    /// Whether one more plain transport may be created ([`MAX_PLAIN_TRANSPORTS`]); the
    /// driver asks before it binds sockets.
    pub fn plain_transport_allowed(&self) -> bool {
        self.by_plain_port.len() / 2 < MAX_PLAIN_TRANSPORTS
            && self.transports.len() < MAX_TRANSPORTS
    }

    /// Serves the `createPlainTransport` requests (contract section 5) waiting since the
    /// last call: `bind` gives each the two UDP ports the driver bound for it (`None`:
    /// none could be, or a harness without sockets), and the transport is made and the
    /// request answered (`{id, ip, port, rtcpPort}`, or unavailable).
    pub fn serve_port_requests(&mut self, mut bind: impl FnMut() -> Option<(u16, u16)>) {
        for (tag, room, peer) in std::mem::take(&mut self.port_requests) {
            let ports = if self.plain_transport_allowed() {
                bind()
            } else {
                None
            };
            self.create_plain_transport(tag, room, peer, ports);
        }
    }

    /// `createPlainTransport` over the two UDP ports `ports` (`None`: unavailable):
    /// answers `{id, ip, port, rtcpPort}`.
    fn create_plain_transport(
        &mut self,
        tag: RequestTag,
        room: RoomId,
        peer: PeerId,
        ports: Option<(u16, u16)>,
    ) {
        let result = match ports {
            Some((rtp, rtcp)) if self.plain_transport_allowed() => {
                Ok(self.add_plain_transport(room, peer, rtp, rtcp))
            }
            _ => Err(EngineError::PlainTransportUnavailable),
        };
        self.reply(tag, result);
    }

    fn add_plain_transport(
        &mut self,
        room: RoomId,
        peer: PeerId,
        rtp: u16,
        rtcp: u16,
    ) -> EngineReply {
        let ip = self.settings.listen_ip;
        let connection = PlainTransport::new(SocketAddr::new(ip, rtp), SocketAddr::new(ip, rtcp));
        let id = TransportId::random();
        let rk = self.router_of_room(room);
        let tk = self.register_transport(MediaTransport::new_plain(id, peer, rk, connection));
        self.by_plain_port.insert(rtp, tk);
        self.by_plain_port.insert(rtcp, tk);
        tracing::debug!(target: "kolabmeet::transport", %room, %peer, transport = %id, rtp, rtcp, "plain transport created");
        EngineReply::PlainTransportCreated(PlainTransportInfo {
            id,
            ip: self.settings.announced_address.clone(),
            port: rtp,
            rtcp_port: rtcp,
        })
    }

    /// Adds a new transport (WebRTC or plain) to the worker: its slot, its router, its id,
    /// and its peer's count of transports on that router.
    fn register_transport(&mut self, transport: MediaTransport) -> TransportKey {
        let (id, peer, rk) = (transport.id, transport.peer, transport.router);
        let tk = self.transports.insert(transport);
        self.routers[rk].add_transport(tk);
        self.transport_ids.insert(id, tk);
        self.peers
            .entry(peer)
            .or_insert(PeerEntry {
                router: rk,
                transports: 0,
            })
            .transports += 1;
        tk
    }

    fn reply(&mut self, tag: RequestTag, result: Result<EngineReply, EngineError>) {
        self.events.push_back(EngineEvent::Reply { tag, result });
    }

    /// The router of a room, created when the room is new.
    pub(super) fn router_of_room(&mut self, room: RoomId) -> RouterKey {
        if let Some(rk) = self.rooms.get(&room) {
            return *rk;
        }
        let rk = self.routers.insert(Router::new(room, self.index));
        self.rooms.insert(room, rk);
        rk
    }

    /// Closes a room: every transport in it, then its router.
    fn close_router(&mut self, now: Instant, room: RoomId) {
        let Some(rk) = self.rooms.remove(&room) else {
            return;
        };
        let transports = self
            .routers
            .get(rk)
            .map(|r| r.transports().to_vec())
            .unwrap_or_default();
        for tk in transports {
            self.close_transport(now, tk, false);
        }
        self.routers.remove(rk);
        self.schedule_router(rk);
        self.peers.retain(|_, p| p.router != rk);
    }

    /// The transport `id` if `peer` owns it, and its router.
    fn owned(
        &self,
        peer: PeerId,
        id: TransportId,
    ) -> Result<(TransportKey, RouterKey), EngineError> {
        let tk = self
            .transport_ids
            .get(&id)
            .copied()
            .ok_or(EngineError::TransportNotFound(id))?;
        match self.transports.get(tk) {
            Some(t) if t.peer == peer => Ok((tk, t.router)),
            _ => Err(EngineError::TransportNotFound(id)),
        }
    }

    /// The router `rk` lent for an operation, or an error when the room is gone.
    fn call(&mut self, rk: RouterKey) -> Result<RouterCall<'_>, EngineError> {
        self.router_call(rk)
            .ok_or(EngineError::Refused(Refusal::RoomClosed))
    }

    /// Runs `f` on the router of `peer`'s room (`None` when the peer has no transport
    /// on this worker), and reschedules the router's timers.
    fn with_router_of<R>(
        &mut self,
        peer: PeerId,
        f: impl FnOnce(&mut Router, &mut crate::router::Egress<'_>) -> R,
    ) -> Option<R> {
        let rk = self.peers.get(&peer)?.router;
        let (router, mut egress) = self.router_and_egress(rk)?;
        let result = f(router, &mut egress);
        self.schedule_router(rk);
        Some(result)
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
        let connection = WebRtcConnection::new(creds.clone(), self.certificate.clone())
            .map_err(|e| EngineError::Transport(ErrorSource::new(e)))?;
        let id = TransportId::random();
        let dtls = connection.local_dtls_parameters();
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
        let rk = self.router_of_room(room);
        let tk = self.register_transport(MediaTransport::new(id, peer, rk, connection));
        self.by_ufrag.insert(creds.ufrag.clone(), tk);
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
        let (tk, _) = self.owned(peer, id)?;
        self.transports[tk]
            .connect(now, dtls)
            .map_err(|e| EngineError::Transport(ErrorSource::new(e)))?;
        self.service_transport(now, tk);
        self.schedule_transport(tk);
        Ok(EngineReply::Done)
    }

    fn restart_ice(&mut self, peer: PeerId, id: TransportId) -> Result<EngineReply, EngineError> {
        let creds = IceCredentials::random(&mut self.rng);
        let (tk, _) = self.owned(peer, id)?;
        let gone = self.transports[tk]
            .restart_ice(creds.clone())
            .map_err(|e| EngineError::Transport(ErrorSource::new(e)))?;
        for ufrag in gone {
            self.by_ufrag.remove(&ufrag);
        }
        self.by_ufrag.insert(creds.ufrag.clone(), tk);
        Ok(EngineReply::IceRestarted(ice_parameters(&creds)))
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
