//! A room (contract section 5): its peers and its life (closing after its last peer
//! leaves, or expiring when nobody ever comes).

use std::collections::HashMap;
use std::time::Instant;

use kolabmeet_media_types::{PeerId, RoomId};

use crate::peer::Peer;

/// Peers one room may hold (bounds what the API can make the server keep).
pub const MAX_PEERS_PER_ROOM: usize = 10_000;

/// One room.
#[derive(Debug)]
pub struct Room {
    /// Its id.
    pub id: RoomId,
    /// Creation time, unix seconds (`createdAt` of `GET /sessions`).
    pub created_at: u64,
    /// Its peers, by id.
    pub peers: HashMap<PeerId, Peer>,
    /// When the room closes unless a peer connects first.
    pub close_at: Option<Instant>,
}

impl Room {
    /// A new empty room that expires at `close_at` unless someone comes.
    pub fn new(id: RoomId, created_at: u64, close_at: Instant) -> Self {
        Self {
            id,
            created_at,
            peers: HashMap::new(),
            close_at: Some(close_at),
        }
    }

    /// Peers that joined, in no particular order.
    pub fn joined_peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values().filter(|p| p.joined)
    }

    /// Whether any peer holds a socket or is within its reconnection grace.
    pub fn has_active_peers(&self) -> bool {
        self.peers.values().any(Peer::is_active)
    }
}
