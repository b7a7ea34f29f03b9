//! Moderation: the `moderator:*` requests. Roles, languages, join requests and kicks need
//! MODERATOR; closing the room needs OWNER.

use kolabmeet_media_types::{EngineCommand, PeerId, RoomId};
use serde_json::json;

use crate::control::answer::{Answer, Ctx};
use crate::control::{ControlPlane, Now, Output, Webhook};
use crate::error::RequestError;
use crate::request::Request;
use crate::roles::Role;

impl ControlPlane {
    /// A moderation request (see `dispatch`); `role` is the asking peer's.
    pub(super) fn moderation_request(
        &mut self,
        ctx: Ctx,
        role: Role,
        request: Request,
        now: Now,
    ) -> Result<Answer, RequestError> {
        let (room_id, peer_id) = (ctx.room, ctx.peer);
        let method = request.method();
        let accepted = matches!(request, Request::JoinRequestAccept(_));
        match request {
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
                self.ack_answer(ctx, None);
                tracing::info!(room = %room_id, by = %peer_id, "room closed by its owner");
                self.close_room(room_id, now);
                Ok(Answer::Later)
            }
            other => unreachable!("{} is not a moderation request", other.method()),
        }
    }

    /// The target of a moderator request must be a peer of the same room.
    fn target(&self, room: RoomId, peer: PeerId) -> Result<(), RequestError> {
        match self.rooms.get(&room).and_then(|r| r.peers.get(&peer)) {
            Some(_) => Ok(()),
            None => Err(RequestError::PeerNotFound(peer.to_string())),
        }
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
            self.media.producers.retain(|_, p| p.peer != target);
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
