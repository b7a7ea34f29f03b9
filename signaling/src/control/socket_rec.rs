//! What the control plane keeps per signaling socket.

use std::time::Instant;

use kolabmeet_media_types::{PeerId, RoomId};

use crate::session::Session;

/// The handshake query of a signaling socket (`peerId`, `roomId`, `authToken`, `EIO`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeQuery {
    /// `peerId`.
    pub peer_id: Option<String>,
    /// `roomId`.
    pub room_id: Option<String>,
    /// `authToken`.
    pub auth_token: Option<String>,
    /// `EIO`.
    pub eio: Option<String>,
}

#[derive(Debug)]
pub(super) struct SocketRec {
    pub(super) session: Session,
    pub(super) query: HandshakeQuery,
    /// The peer this socket speaks for, once connected.
    pub(super) bound: Option<(RoomId, PeerId)>,
    /// The deadline currently in the timer heap for this socket.
    pub(super) scheduled: Instant,
    /// Set when the connection was refused: close at this time.
    pub(super) linger_until: Option<Instant>,
    /// Set once the socket's end has been decided (its peer is no longer affected).
    pub(super) detached: bool,
}

impl SocketRec {
    /// Whether a timer entry at `at` for this socket would still do something when it
    /// fires (see `ControlPlane::socket_timer`).
    pub(super) fn timer_is_live(&self, at: Instant) -> bool {
        self.scheduled == at && !self.detached
    }
}
