//! The control plane's side of media: requests forwarded to the engine and answered when
//! it replies, consumers created for every joined peer that can consume a producer, the
//! `newConsumer` server request (20 s, 3 tries) and the consumer notifications.

use kolabmeet_media_types::ortc::MediaKind;
use kolabmeet_media_types::replies::{ConsumerInfo, PlainTransportInfo, WebRtcTransportInfo};
use kolabmeet_media_types::{
    ConsumerId, EngineCommand, EngineError, EngineEvent, EngineReply, PeerId, ProducerId,
    RequestTag, RoomId,
};
use serde_json::{Value, json};

use super::answer::{Answer, Ctx, Pending, PendingKind};
use super::media_book::{ConsumerOffer, ProducerInfo};
use super::{ControlPlane, ENGINE_REPLY_TIMEOUT, Now, TimerKey};
use crate::ConnId;
use crate::error::RequestError;
use crate::peer::MAX_MEDIA_OBJECTS_PER_PEER;

impl ControlPlane {
    /// Forwards a request to the engine; the ack is sent when it replies.
    pub(super) fn engine_request(
        &mut self,
        ctx: Ctx,
        kind: PendingKind,
        command: impl FnOnce(RequestTag) -> EngineCommand,
        now: Now,
    ) -> Result<Answer, RequestError> {
        let creates = matches!(
            kind,
            PendingKind::CreateTransport { .. } | PendingKind::Produce { .. }
        );
        if creates {
            let owned = self
                .rooms
                .get(&ctx.room)
                .and_then(|r| r.peers.get(&ctx.peer))
                .map_or(0, |p| p.media_objects());
            if owned >= MAX_MEDIA_OBJECTS_PER_PEER {
                return Err(RequestError::TooMany("transports and producers"));
            }
        }
        let tag = RequestTag(self.next_tag);
        self.next_tag += 1;
        self.await_reply(tag, ctx, kind, now);
        self.engine.submit(command(tag));
        self.pump_engine(now);
        Ok(Answer::Later)
    }

    /// Records a request to the engine and arms its reply deadline
    /// ([`ENGINE_REPLY_TIMEOUT`]): every request is answered, by the engine or by the timer.
    fn await_reply(&mut self, tag: RequestTag, ctx: Ctx, kind: PendingKind, now: Now) {
        let deadline = now.mono + ENGINE_REPLY_TIMEOUT;
        self.pending.insert(
            tag,
            Pending {
                ctx,
                kind,
                deadline,
            },
        );
        self.timers.push(deadline, TimerKey::Request(tag));
    }

    /// A request's reply deadline passed: its client gets a failure ack (504) and a late
    /// reply is ignored. (An object the engine creates after that is closed with its peer.)
    pub(super) fn engine_reply_timer(&mut self, tag: RequestTag, at: std::time::Instant) {
        if self.pending.get(&tag).is_none_or(|p| p.deadline != at) {
            return;
        }
        if let Some(p) = self.pending.remove(&tag) {
            tracing::warn!(room = %p.ctx.room, peer = %p.ctx.peer, kind = ?p.kind, "media engine did not answer in time");
            self.ack_error(p.ctx, &RequestError::EngineTimeout, at);
        }
    }

    /// Drains the engine's events (call after every submit and when the engine wakes the
    /// driver).
    pub fn pump_engine(&mut self, now: Now) {
        while let Some(event) = self.engine.poll_event() {
            // A panic while handling one event costs at most its room (recovery.rs).
            let scope = self.event_scope(&event);
            self.contained(scope, now, |cp| cp.on_engine_event(event, now));
        }
    }

    fn on_engine_event(&mut self, event: EngineEvent, now: Now) {
        match event {
            EngineEvent::Reply { tag, result } => {
                if let Some(p) = self.pending.remove(&tag) {
                    self.on_reply(p, result, now);
                }
            }
            EngineEvent::ConsumerClosed { peer, consumer } => {
                if let Some(room) = self.forget_consumer(peer, consumer) {
                    self.notify_peer(
                        room,
                        peer,
                        "consumerClosed",
                        &json!({ "consumerId": consumer }),
                    );
                }
            }
            EngineEvent::ConsumerProducerPaused {
                peer,
                consumer,
                paused,
            } => {
                if let Some(room) = self.peer_rooms.get(&peer).copied() {
                    let method = if paused {
                        "consumerPaused"
                    } else {
                        "consumerResumed"
                    };
                    self.notify_peer(room, peer, method, &json!({ "consumerId": consumer }));
                }
            }
            EngineEvent::ConsumerLayersChanged {
                peer,
                consumer,
                layers,
            } => {
                if let Some(room) = self.peer_rooms.get(&peer).copied() {
                    self.notify_peer(
                        room,
                        peer,
                        "consumerLayersChanged",
                        &json!({ "consumerId": consumer, "layers": layers }),
                    );
                }
            }
            EngineEvent::ConsumerScoreChanged {
                peer,
                consumer,
                score,
            } => {
                if let Some(room) = self.peer_rooms.get(&peer).copied() {
                    self.notify_peer(
                        room,
                        peer,
                        "consumerScoreChanged",
                        &json!({ "consumerId": consumer, "score": score }),
                    );
                }
            }
            EngineEvent::TransportClosed {
                peer,
                transport,
                producers,
                consumers,
            } => {
                // Its producers are gone: later joins must not try to consume them (their
                // other consumers are reported closed by the engine one by one).
                for producer in &producers {
                    self.media.producers.remove(producer);
                }
                let room = self.peer_rooms.get(&peer).copied();
                if let Some(p) = room
                    .and_then(|r| self.rooms.get_mut(&r))
                    .and_then(|r| r.peers.get_mut(&peer))
                {
                    p.transports.retain(|t| *t != transport);
                    if p.consuming_transport == Some(transport) {
                        p.consuming_transport = None;
                    }
                    p.producers.retain(|x| !producers.contains(x));
                    p.consumers.retain(|x| !consumers.contains(x));
                }
                // Its own consumers: the client drops them.
                if let Some(room) = room {
                    for consumer in consumers {
                        self.notify_peer(
                            room,
                            peer,
                            "consumerClosed",
                            &json!({ "consumerId": consumer }),
                        );
                    }
                }
                tracing::info!(peer = %peer, transport = %transport, producers = producers.len(), "transport closed by the engine");
            }
            EngineEvent::WorkerFailed {
                worker,
                rooms,
                spread_peers,
                reason,
            } => self.on_worker_failed(worker, rooms, spread_peers, &reason, now),
            // The rooms were restarted at the failure (their routers re-homed on the
            // replacement): nothing more to do; health comes from the engine.
            EngineEvent::WorkerRestarted { worker, port } => {
                tracing::info!(worker, port, "media worker replaced");
            }
        }
    }

    fn on_reply(&mut self, pending: Pending, result: Result<EngineReply, EngineError>, now: Now) {
        let Pending { ctx, kind, .. } = pending;
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                let err = RequestError::Engine(e);
                if let PendingKind::Consume { .. } = kind
                    && let Some(suppressed) = self.logs.request_failed.allow(now.mono)
                {
                    tracing::info!(room = %ctx.room, peer = %ctx.peer, error = %err, suppressed, "consume failed");
                }
                self.ack_error(ctx, &err, now.mono);
                return;
            }
        };
        // The mediasoup wire JSON is written here, at the signaling edge, from the typed
        // reply (each type's `Serialize` is the wire format).
        let answer = match (&kind, &reply) {
            (_, EngineReply::Done) => None,
            (_, EngineReply::WebRtcTransportCreated(info)) => serde_json::to_value(info).ok(),
            (_, EngineReply::PlainTransportCreated(info)) => serde_json::to_value(info).ok(),
            (_, EngineReply::IceRestarted(ice)) => serde_json::to_value(ice).ok(),
            (_, EngineReply::ProducerCreated(id)) => Some(json!({ "id": id })),
            (_, EngineReply::ConsumerCreated(_)) => None,
        };
        match (kind, reply) {
            (
                PendingKind::CreateTransport { consuming },
                EngineReply::WebRtcTransportCreated(WebRtcTransportInfo { id, .. })
                | EngineReply::PlainTransportCreated(PlainTransportInfo { id, .. }),
            ) => {
                self.with_peer(ctx.room, ctx.peer, |p| {
                    p.transports.push(id);
                    if consuming {
                        p.consuming_transport = Some(id);
                    }
                });
            }
            (PendingKind::Produce { kind, app_data }, EngineReply::ProducerCreated(id)) => {
                self.with_peer(ctx.room, ctx.peer, |p| p.producers.push(id));
                self.media.producers.insert(
                    id,
                    ProducerInfo {
                        room: ctx.room,
                        peer: ctx.peer,
                        kind,
                        app_data,
                    },
                );
                self.ack_answer(ctx, answer);
                self.consume_new_producer(id, now);
                return;
            }
            (PendingKind::CloseProducer { producer }, _) => {
                self.media.producers.remove(&producer);
                self.with_peer(ctx.room, ctx.peer, |p| {
                    p.producers.retain(|x| *x != producer)
                });
            }
            (
                PendingKind::Consume {
                    producer,
                    producer_peer,
                    app_data,
                    paused,
                },
                EngineReply::ConsumerCreated(info),
            ) => {
                self.offer_consumer(ctx, producer, producer_peer, app_data, paused, info, now);
                return;
            }
            _ => {}
        }
        self.ack_answer(ctx, answer);
    }

    /// Acks a request, if it wanted an ack and its socket is still there.
    pub(super) fn ack_answer(&mut self, ctx: Ctx, answer: Option<Value>) {
        if ctx.ack.is_some() {
            self.counters.requests_ok += 1;
        }
        let (Some(ack), Some(rec)) = (ctx.ack, self.sockets.get(&ctx.conn)) else {
            return;
        };
        rec.session.ack_ok(ack, answer.as_ref(), &mut self.scratch);
        self.push_frames(ctx.conn);
    }

    pub(super) fn ack_error(&mut self, ctx: Ctx, err: &RequestError, now: std::time::Instant) {
        if ctx.ack.is_some() {
            *self.counters.requests_failed.entry(err.code()).or_default() += 1;
        }
        let (Some(ack), Some(rec)) = (ctx.ack, self.sockets.get(&ctx.conn)) else {
            return;
        };
        if let Some(suppressed) = self.logs.request_failed.allow(now) {
            tracing::info!(room = %ctx.room, peer = %ctx.peer, code = err.code(), error = %err, suppressed, "request failed");
        }
        rec.session
            .ack_err(ack, err.code(), &err.to_string(), &mut self.scratch);
        self.push_frames(ctx.conn);
    }

    fn forget_consumer(&mut self, peer: PeerId, consumer: ConsumerId) -> Option<RoomId> {
        let room = *self.peer_rooms.get(&peer)?;
        self.with_peer(room, peer, |p| p.consumers.retain(|c| *c != consumer));
        Some(room)
    }

    /// After `join`: a consumer for every producer of the other peers.
    pub(super) fn consume_existing_producers(&mut self, room: RoomId, peer: PeerId, now: Now) {
        let producers: Vec<ProducerId> = self
            .media
            .producers
            .iter()
            .filter(|(_, p)| p.room == room && p.peer != peer)
            .map(|(id, _)| *id)
            .collect();
        for producer in producers {
            self.create_consumer(room, peer, producer, now);
        }
    }

    /// After `produce`: a consumer for every other joined peer.
    fn consume_new_producer(&mut self, producer: ProducerId, now: Now) {
        let Some(info) = self.media.producers.get(&producer).cloned() else {
            return;
        };
        let peers: Vec<PeerId> = self
            .rooms
            .get(&info.room)
            .map(|r| {
                r.joined_peers()
                    .filter(|p| p.id != info.peer)
                    .map(|p| p.id)
                    .collect()
            })
            .unwrap_or_default();
        for peer in peers {
            self.create_consumer(info.room, peer, producer, now);
        }
    }

    fn create_consumer(&mut self, room: RoomId, peer: PeerId, producer: ProducerId, now: Now) {
        let Some(info) = self.media.producers.get(&producer).cloned() else {
            return;
        };
        let Some(p) = self.rooms.get(&room).and_then(|r| r.peers.get(&peer)) else {
            return;
        };
        let (Some(transport), Some(caps), Some(conn)) =
            (p.consuming_transport, p.rtp_capabilities.clone(), p.conn)
        else {
            return;
        };
        if p.media_objects() >= MAX_MEDIA_OBJECTS_PER_PEER {
            return;
        }
        let paused = info.kind == MediaKind::Video;
        let tag = RequestTag(self.next_tag);
        self.next_tag += 1;
        let pending_ctx = Ctx {
            conn,
            ack: None,
            room,
            peer,
        };
        self.await_reply(
            tag,
            pending_ctx,
            PendingKind::Consume {
                producer,
                producer_peer: info.peer,
                app_data: info.app_data.clone(),
                paused,
            },
            now,
        );
        self.engine.submit(EngineCommand::Consume {
            tag,
            peer,
            transport,
            producer,
            rtp_capabilities: *caps,
            paused,
        });
        self.pump_engine(now);
    }

    #[allow(clippy::too_many_arguments)]
    fn offer_consumer(
        &mut self,
        ctx: Ctx,
        producer: ProducerId,
        producer_peer: PeerId,
        app_data: Value,
        paused: bool,
        info: ConsumerInfo,
        now: Now,
    ) {
        let consumer = info.id;
        self.with_peer(ctx.room, ctx.peer, |p| p.consumers.push(consumer));
        let data = NewConsumer {
            peer_id: producer_peer,
            producer_id: producer,
            info: &info,
            app_data: &app_data,
        };
        let token = self.media.next_offer;
        self.media.next_offer += 1;
        let conn = self
            .rooms
            .get(&ctx.room)
            .and_then(|r| r.peers.get(&ctx.peer))
            .and_then(|p| p.conn);
        let mut sent = false;
        if let Some(rec) = conn.and_then(|c| self.sockets.get_mut(&c)) {
            sent =
                rec.session
                    .send_request("newConsumer", &data, token, now.mono, &mut self.scratch);
        }
        if let Some(c) = conn {
            self.push_frames(c);
        }
        if sent {
            self.media.offers.insert(
                token,
                ConsumerOffer {
                    peer: ctx.peer,
                    consumer,
                    resume: paused,
                },
            );
            if let Some(c) = conn {
                self.reschedule_socket(c);
            }
        } else {
            self.engine.submit(EngineCommand::CloseConsumer {
                peer: ctx.peer,
                consumer,
            });
            self.forget_consumer(ctx.peer, consumer);
        }
    }

    /// The client acked `newConsumer`: resume a consumer created paused.
    pub(super) fn on_server_request_ack(&mut self, token: u64, _args: Vec<Value>, now: Now) {
        let Some(offer) = self.media.offers.remove(&token) else {
            return;
        };
        if offer.resume {
            let tag = RequestTag(self.next_tag);
            self.next_tag += 1;
            let room = self.peer_rooms.get(&offer.peer).copied();
            if let Some(room) = room {
                let pending_ctx = Ctx {
                    conn: ConnId(u64::MAX),
                    ack: None,
                    room,
                    peer: offer.peer,
                };
                self.await_reply(tag, pending_ctx, PendingKind::Internal, now);
            }
            self.engine.submit(EngineCommand::SetConsumerPaused {
                tag,
                peer: offer.peer,
                consumer: offer.consumer,
                paused: false,
            });
            self.pump_engine(now);
        }
    }

    /// `newConsumer` got no ack after every try: close that consumer.
    pub(super) fn on_server_request_failed(&mut self, token: u64, now: Now) {
        let Some(offer) = self.media.offers.remove(&token) else {
            return;
        };
        tracing::info!(peer = %offer.peer, consumer = %offer.consumer, "newConsumer not acknowledged, closing the consumer");
        self.engine.submit(EngineCommand::CloseConsumer {
            peer: offer.peer,
            consumer: offer.consumer,
        });
        self.forget_consumer(offer.peer, offer.consumer);
        self.pump_engine(now);
    }

    /// Forgets the producers of a peer that closed.
    pub(super) fn forget_media_of(&mut self, peer: PeerId) {
        self.media.producers.retain(|_, p| p.peer != peer);
        self.media.offers.retain(|_, o| o.peer != peer);
    }
}

/// The data of the `newConsumer` server request (contract section 5):
/// `{peerId, producerId, id, kind, rtpParameters, type, appData, producerPaused}`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct NewConsumer<'a> {
    peer_id: PeerId,
    producer_id: ProducerId,
    #[serde(flatten)]
    info: &'a ConsumerInfo,
    app_data: &'a Value,
}
