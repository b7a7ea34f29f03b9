//! The client requests of contract section 5. `on_request` parses a request, checks that
//! its peer exists and has joined where that is needed, and hands it to its family: the
//! room (`room`), media, forwarded to the engine (`media`), the peer's own state and chat
//! (`peer`), and moderation (`moderation`).

mod media;
mod moderation;
mod peer;
mod room;

use kolabmeet_media_types::{PeerId, RoomId};
use serde_json::Value;

use super::answer::{Answer, Ctx};
use super::{ControlPlane, Now};
use crate::ConnId;
use crate::error::RequestError;
use crate::request::{Request, parse_request, split_envelope};

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
        match &result {
            Ok(Answer::Ok(_)) => self.counters.requests_ok += 1,
            Ok(Answer::Later) => {}
            Err(e) => *self.counters.requests_failed.entry(e.code()).or_default() += 1,
        }
        let Some(rec) = self.sockets.get(&conn) else {
            return;
        };
        match result {
            Ok(Answer::Ok(v)) => rec.session.ack_ok(ack, v.as_ref(), &mut self.scratch),
            Ok(Answer::Later) => {}
            Err(e) => {
                if !matches!(e, RequestError::RateLimited)
                    && let Some(suppressed) = self.logs.request_failed.allow(now.mono)
                {
                    tracing::info!(room = %room, peer = %peer, code = e.code(), error = %e, suppressed, "request failed");
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
        room: RoomId,
        peer: PeerId,
        payload: &Value,
        now: Now,
    ) -> Result<Answer, RequestError> {
        let (method, data) = split_envelope(payload)?;
        let request = parse_request(method, data)?;
        let p = self
            .rooms
            .get(&room)
            .and_then(|r| r.peers.get(&peer))
            .ok_or_else(|| RequestError::PeerNotFound(peer.to_string()))?;
        if !p.joined && !request.allowed_before_join() {
            return Err(RequestError::NotJoined(request.method()));
        }
        let role = p.role;
        let ctx = Ctx {
            conn,
            ack,
            room,
            peer,
        };
        match request {
            Request::Ping
            | Request::DumpStats
            | Request::GetRouterRtpCapabilities
            | Request::Join { .. } => self.room_request(ctx, request, now),
            Request::CreateWebRtcTransport { .. }
            | Request::ConnectWebRtcTransport { .. }
            | Request::RestartIce { .. }
            | Request::CreatePlainTransport { .. }
            | Request::ConnectPlainTransport { .. }
            | Request::Produce { .. }
            | Request::CloseProducer(_)
            | Request::PauseProducer(_)
            | Request::ResumeProducer(_)
            | Request::PauseConsumer(_)
            | Request::ResumeConsumer(_) => self.media_request(ctx, role, request, now),
            Request::ChangeNickname(_) | Request::RaisedHand(_) | Request::ChatMessage(_) => {
                self.peer_request(ctx, request)
            }
            Request::AddRole { .. }
            | Request::RemoveRole { .. }
            | Request::ChangeLanguage { .. }
            | Request::JoinRequestAccept(_)
            | Request::JoinRequestDeny(_)
            | Request::KickPeer(_)
            | Request::CloseRoom => self.moderation_request(ctx, role, request, now),
        }
    }
}
