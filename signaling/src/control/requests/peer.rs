//! A peer's own state and chat: `changeNickname`, `raisedHand` and `chatMessage`, each
//! broadcast to the joined peers (the sender included).

use serde_json::{Value, json};

use crate::control::ControlPlane;
use crate::control::answer::{Answer, Ctx};
use crate::error::RequestError;
use crate::request::Request;

impl ControlPlane {
    /// A peer state or chat request (see `dispatch`).
    pub(super) fn peer_request(
        &mut self,
        ctx: Ctx,
        request: Request,
    ) -> Result<Answer, RequestError> {
        let (room, peer) = (ctx.room, ctx.peer);
        match request {
            Request::ChangeNickname(nickname) => {
                self.with_peer(room, peer, |p| p.nickname = Some(nickname.clone()));
                self.broadcast(
                    room,
                    None,
                    "changeNickname",
                    &json!({ "peerId": peer, "nickname": nickname }),
                );
            }
            Request::RaisedHand(raised) => {
                self.with_peer(room, peer, |p| p.raised_hand = raised);
                self.broadcast(
                    room,
                    None,
                    "changeRaisedHand",
                    &json!({ "peerId": peer, "raisedHand": raised }),
                );
            }
            Request::ChatMessage(message) => {
                let nickname = self
                    .rooms
                    .get(&room)
                    .and_then(|r| r.peers.get(&peer))
                    .map(|p| p.nickname_value())
                    .unwrap_or(Value::Bool(false));
                self.broadcast(
                    room,
                    None,
                    "chatMessage",
                    &json!({ "peerId": peer, "nickname": nickname, "message": message }),
                );
            }
            other => unreachable!("{} is not a peer request", other.method()),
        }
        Ok(Answer::Ok(None))
    }
}
