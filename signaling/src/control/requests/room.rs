//! Room requests: `ping`, `dumpStats`, `getRouterRtpCapabilities` and `join`.

use kolabmeet_media_types::ortc::RtpCapabilities;
use kolabmeet_media_types::{PeerId, RoomId};
use serde_json::Value;

use crate::control::answer::{Answer, Ctx};
use crate::control::{ControlPlane, Now};
use crate::error::RequestError;
use crate::request::Request;

impl ControlPlane {
    /// A room request (see `dispatch`).
    pub(super) fn room_request(
        &mut self,
        ctx: Ctx,
        request: Request,
        now: Now,
    ) -> Result<Answer, RequestError> {
        match request {
            Request::Ping => Ok(Answer::Ok(None)),
            Request::DumpStats => {
                tracing::info!(room = %ctx.room, stats = %self.room_stats(ctx.room), "dumpStats");
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
            } => self.join(ctx.room, ctx.peer, nickname, rtp_capabilities, now),
            other => unreachable!("{} is not a room request", other.method()),
        }
    }

    fn join(
        &mut self,
        room_id: RoomId,
        peer_id: PeerId,
        nickname: Option<String>,
        rtp_capabilities: Option<Box<RtpCapabilities>>,
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
}
