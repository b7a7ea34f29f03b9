//! The client requests of contract section 5: checks (joined, roles, targets), room state
//! changes and notifications. Media requests are forwarded to the engine (see `media`).

use kolabmeet_engine::{EngineCommand, PeerId, RoomId};
use serde_json::{Value, json};

use super::media::PendingKind;
use super::{ControlPlane, Now, Output, Webhook};
use crate::ConnId;
use crate::error::RequestError;
use crate::request::{Request, parse_request, split_envelope};
use crate::roles::Role;

/// What a handled request answers right away.
pub(super) enum Answer {
    /// Success, with or without data.
    Ok(Option<Value>),
    /// The engine will answer later (the ack is sent then).
    Later,
}

impl ControlPlane {
    /// A `request` event from a socket.
    pub(super) fn on_request(&mut self, conn: ConnId, ack: Option<u64>, payload: Value, now: Now) {
        let Some(rec) = self.sockets.get_mut(&conn) else {
            return;
        };
        let Some((room, peer)) = rec.bound else {
            return;
        };
        let result = if rec.session.allow_request(now.mono) {
            self.dispatch(conn, ack, room, peer, &payload, now)
        } else {
            Err(RequestError::RateLimited)
        };
        let Some(ack) = ack else {
            return;
        };
        let Some(rec) = self.sockets.get(&conn) else {
            return;
        };
        match result {
            Ok(Answer::Ok(v)) => rec.session.ack_ok(ack, v.as_ref(), &mut self.scratch),
            Ok(Answer::Later) => {}
            Err(e) => {
                if !matches!(e, RequestError::RateLimited) {
                    tracing::info!(room = %room, peer = %peer, code = e.code(), error = %e, "request failed");
                }
                rec.session
                    .ack_err(ack, e.code(), &e.to_string(), &mut self.scratch);
            }
        }
        self.push_frames(conn);
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        ack: Option<u64>,
        room_id: RoomId,
        peer_id: PeerId,
        payload: &Value,
        now: Now,
    ) -> Result<Answer, RequestError> {
        let (method, data) = split_envelope(payload)?;
        let request = parse_request(method, data)?;
        let peer = self
            .rooms
            .get(&room_id)
            .and_then(|r| r.peers.get(&peer_id))
            .ok_or_else(|| RequestError::PeerNotFound(peer_id.to_string()))?;
        if !peer.joined && !request.allowed_before_join() {
            return Err(RequestError::NotJoined(request.method()));
        }
        let role = peer.role;
        let ctx = super::media::Ctx {
            conn,
            ack,
            room: room_id,
            peer: peer_id,
        };
        let method = request.method();
        let accepted = matches!(request, Request::JoinRequestAccept(_));
        match request {
            Request::Ping => Ok(Answer::Ok(None)),
            Request::DumpStats => {
                tracing::info!(room = %room_id, stats = %self.room_stats(room_id), "dumpStats");
                Ok(Answer::Ok(None))
            }
            Request::GetRouterRtpCapabilities => {
                let caps = serde_json::to_value(self.engine.router_rtp_capabilities())
                    .unwrap_or(Value::Null);
                Ok(Answer::Ok(Some(caps)))
            }
            Request::Join {
                nickname,
                rtp_capabilities,
            } => self.join(room_id, peer_id, nickname, rtp_capabilities, now),
            Request::CreateWebRtcTransport {
                force_tcp,
                producing,
                consuming,
            } => self.engine_request(
                ctx,
                PendingKind::CreateTransport { consuming },
                |tag| EngineCommand::CreateWebRtcTransport {
                    tag,
                    room: room_id,
                    peer: peer_id,
                    force_tcp,
                    producing,
                    consuming,
                },
                now,
            ),
            Request::ConnectWebRtcTransport {
                transport,
                dtls_parameters,
            } => self.engine_request(
                ctx,
                PendingKind::Plain,
                |tag| EngineCommand::ConnectWebRtcTransport {
                    tag,
                    peer: peer_id,
                    transport,
                    dtls_parameters: *dtls_parameters,
                },
                now,
            ),
            Request::RestartIce { transport } => self.engine_request(
                ctx,
                PendingKind::Plain,
                |tag| EngineCommand::RestartIce {
                    tag,
                    peer: peer_id,
                    transport,
                },
                now,
            ),
            Request::CreatePlainTransport {
                producing,
                consuming,
            } => self.engine_request(
                ctx,
                PendingKind::CreateTransport { consuming },
                |tag| EngineCommand::CreatePlainTransport {
                    tag,
                    room: room_id,
                    peer: peer_id,
                    producing,
                    consuming,
                },
                now,
            ),
            Request::ConnectPlainTransport {
                transport,
                ip,
                port,
                rtcp_port,
            } => self.engine_request(
                ctx,
                PendingKind::Plain,
                |tag| EngineCommand::ConnectPlainTransport {
                    tag,
                    peer: peer_id,
                    transport,
                    ip,
                    port,
                    rtcp_port,
                },
                now,
            ),
            Request::Produce {
                transport,
                kind,
                rtp_parameters,
                source,
                app_data,
            } => {
                if !role.contains(Role::PUBLISHER) {
                    return Err(RequestError::Forbidden {
                        method: "produce",
                        reason: "the peer lacks the PUBLISHER role",
                    });
                }
                tracing::debug!(room = %room_id, peer = %peer_id, ?source, ?kind, "produce");
                self.engine_request(
                    ctx,
                    PendingKind::Produce {
                        kind,
                        app_data: app_data.clone(),
                    },
                    |tag| EngineCommand::Produce {
                        tag,
                        peer: peer_id,
                        transport,
                        kind,
                        rtp_parameters: *rtp_parameters,
                        app_data,
                    },
                    now,
                )
            }
            Request::CloseProducer(producer) => self.engine_request(
                ctx,
                PendingKind::CloseProducer { producer },
                |tag| EngineCommand::CloseProducer {
                    tag,
                    peer: peer_id,
                    producer,
                },
                now,
            ),
            Request::PauseProducer(producer) | Request::ResumeProducer(producer) => {
                let paused = matches!(request, Request::PauseProducer(_));
                self.engine_request(
                    ctx,
                    PendingKind::Plain,
                    |tag| EngineCommand::SetProducerPaused {
                        tag,
                        peer: peer_id,
                        producer,
                        paused,
                    },
                    now,
                )
            }
            Request::PauseConsumer(consumer) | Request::ResumeConsumer(consumer) => {
                let paused = matches!(request, Request::PauseConsumer(_));
                self.engine_request(
                    ctx,
                    PendingKind::Plain,
                    |tag| EngineCommand::SetConsumerPaused {
                        tag,
                        peer: peer_id,
                        consumer,
                        paused,
                    },
                    now,
                )
            }
            Request::ChangeNickname(nickname) => {
                self.with_peer(room_id, peer_id, |p| p.nickname = Some(nickname.clone()));
                self.broadcast(
                    room_id,
                    None,
                    "changeNickname",
                    &json!({ "peerId": peer_id, "nickname": nickname }),
                );
                Ok(Answer::Ok(None))
            }
            Request::RaisedHand(raised) => {
                self.with_peer(room_id, peer_id, |p| p.raised_hand = raised);
                self.broadcast(
                    room_id,
                    None,
                    "changeRaisedHand",
                    &json!({ "peerId": peer_id, "raisedHand": raised }),
                );
                Ok(Answer::Ok(None))
            }
            Request::ChatMessage(message) => {
                let nickname = self
                    .rooms
                    .get(&room_id)
                    .and_then(|r| r.peers.get(&peer_id))
                    .map(|p| p.nickname_value())
                    .unwrap_or(Value::Bool(false));
                self.broadcast(
                    room_id,
                    None,
                    "chatMessage",
                    &json!({ "peerId": peer_id, "nickname": nickname, "message": message }),
                );
                Ok(Answer::Ok(None))
            }
            Request::AddRole { peer, role: bits } => {
                require(role, Role::MODERATOR, "moderator:addRole")?;
                self.change_role(room_id, peer, bits, true, now)
            }
            Request::RemoveRole { peer, role: bits } => {
                require(role, Role::MODERATOR, "moderator:removeRole")?;
                self.change_role(room_id, peer, bits, false, now)
            }
            Request::ChangeLanguage { peer, language } => {
                require(role, Role::MODERATOR, "moderator:changeLanguage")?;
                self.target(room_id, peer)?;
                self.with_peer(room_id, peer, |p| p.language = language.clone());
                self.broadcast(
                    room_id,
                    None,
                    "changeLanguage",
                    &json!({ "peerId": peer, "language": language }),
                );
                Ok(Answer::Ok(None))
            }
            Request::JoinRequestAccept(request_id) | Request::JoinRequestDeny(request_id) => {
                require(role, Role::MODERATOR, method)?;
                self.outputs
                    .push_back(Output::Webhook(Webhook::JoinRequest {
                        accepted,
                        request_id,
                        room: room_id,
                    }));
                Ok(Answer::Ok(None))
            }
            Request::KickPeer(target) => {
                require(role, Role::MODERATOR, "moderator:kickPeer")?;
                self.target(room_id, target)?;
                self.notify_peer(room_id, target, "moderator:kickPeer", &json!({}));
                tracing::info!(room = %room_id, peer = %target, by = %peer_id, "peer kicked");
                self.close_peer(room_id, target, now);
                Ok(Answer::Ok(None))
            }
            Request::CloseRoom => {
                require(role, Role::OWNER, "moderator:closeRoom")?;
                self.broadcast(room_id, Some(peer_id), "moderator:closeRoom", &json!({}));
                // Answer first, then close (the caller's socket closes with the room).
                if let (Some(ack), Some(rec)) = (ack, self.sockets.get(&conn)) {
                    rec.session.ack_ok(ack, None, &mut self.scratch);
                    self.push_frames(conn);
                }
                tracing::info!(room = %room_id, by = %peer_id, "room closed by its owner");
                self.close_room(room_id, now);
                Ok(Answer::Later)
            }
        }
    }

    fn with_peer(&mut self, room: RoomId, peer: PeerId, f: impl FnOnce(&mut crate::peer::Peer)) {
        if let Some(p) = self
            .rooms
            .get_mut(&room)
            .and_then(|r| r.peers.get_mut(&peer))
        {
            f(p);
        }
    }

    /// The target of a moderator request must be a peer of the same room.
    fn target(&self, room: RoomId, peer: PeerId) -> Result<(), RequestError> {
        match self.rooms.get(&room).and_then(|r| r.peers.get(&peer)) {
            Some(_) => Ok(()),
            None => Err(RequestError::PeerNotFound(peer.to_string())),
        }
    }

    fn join(
        &mut self,
        room_id: RoomId,
        peer_id: PeerId,
        nickname: Option<String>,
        rtp_capabilities: Option<Box<kolabmeet_engine::ortc::RtpCapabilities>>,
        now: Now,
    ) -> Result<Answer, RequestError> {
        let room = self
            .rooms
            .get_mut(&room_id)
            .ok_or_else(|| RequestError::PeerNotFound(peer_id.to_string()))?;
        let others: Vec<Value> = room
            .joined_peers()
            .filter(|p| p.id != peer_id)
            .map(|p| p.info())
            .collect();
        let peer = room
            .peers
            .get_mut(&peer_id)
            .ok_or_else(|| RequestError::PeerNotFound(peer_id.to_string()))?;
        if peer.joined {
            return Err(RequestError::AlreadyJoined);
        }
        peer.joined = true;
        if nickname.is_some() {
            peer.nickname = nickname;
        }
        peer.rtp_capabilities = rtp_capabilities;
        let info = peer.info();
        let mut answer = info.clone();
        if let Value::Object(map) = &mut answer {
            map.insert("peers".into(), Value::Array(others));
        }
        self.broadcast(room_id, Some(peer_id), "newPeer", &info);
        tracing::info!(room = %room_id, peer = %peer_id, "peer joined");
        self.consume_existing_producers(room_id, peer_id, now);
        Ok(Answer::Ok(Some(answer)))
    }

    fn change_role(
        &mut self,
        room_id: RoomId,
        target: PeerId,
        bits: Role,
        add: bool,
        now: Now,
    ) -> Result<Answer, RequestError> {
        let method = if add {
            "moderator:addRole"
        } else {
            "moderator:removeRole"
        };
        if bits.intersects(Role::OWNER) {
            return Err(RequestError::Forbidden {
                method,
                reason: "the OWNER role can be neither given nor taken",
            });
        }
        let peer = self
            .rooms
            .get_mut(&room_id)
            .and_then(|r| r.peers.get_mut(&target))
            .ok_or_else(|| RequestError::PeerNotFound(target.to_string()))?;
        if !add && bits.intersects(Role::MODERATOR) && peer.role.contains(Role::OWNER) {
            return Err(RequestError::Forbidden {
                method,
                reason: "MODERATOR cannot be taken from the OWNER",
            });
        }
        let mut close_producers = false;
        if add {
            peer.role = peer.role.with(bits);
            if bits.intersects(Role::PUBLISHER) {
                peer.raised_hand = false;
            }
        } else {
            let had_publisher = peer.role.contains(Role::PUBLISHER);
            peer.role = peer.role.without(bits);
            if bits.intersects(Role::PUBLISHER) {
                peer.language = None;
                close_producers = had_publisher && !peer.producers.is_empty();
            }
        }
        let role = peer.role.bits();
        if close_producers {
            peer.producers.clear();
            self.media.producers.retain(|_, p| p.peer_id() != target);
            self.engine
                .submit(EngineCommand::CloseProducersOf { peer: target });
        }
        self.broadcast(
            room_id,
            None,
            "changeRole",
            &json!({ "peerId": target, "role": role }),
        );
        self.pump_engine(now);
        Ok(Answer::Ok(None))
    }
}

fn require(have: Role, need: Role, method: &'static str) -> Result<(), RequestError> {
    if have.contains(need) {
        Ok(())
    } else if need == Role::OWNER {
        Err(RequestError::Forbidden {
            method,
            reason: "the peer lacks the OWNER role",
        })
    } else {
        Err(RequestError::Forbidden {
            method,
            reason: "the peer lacks the MODERATOR role",
        })
    }
}
