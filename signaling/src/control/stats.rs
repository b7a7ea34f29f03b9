//! Stats and dumps: `GET /meetmedia/api/stats`, `dumpStats` and the console (contract
//! sections 3, 5 and 7).

use kolabmeet_media_types::{PeerId, RoomId};
use serde_json::{Value, json};

use super::ControlPlane;
use crate::peer::Peer;

fn peer_stats(p: &Peer) -> Value {
    json!({
        "id": p.id,
        "nickname": p.nickname_value(),
        "role": p.role.bits(),
        "joined": p.joined,
        "connected": p.conn.is_some(),
        "transports": p.transports,
        "producers": p.producers,
        "consumers": p.consumers,
    })
}

impl ControlPlane {
    /// One room's stats: `{id, createdAt, peers: [...]}`.
    pub fn room_stats(&self, room: RoomId) -> Value {
        match self.rooms.get(&room) {
            None => Value::Null,
            Some(r) => {
                let mut peers: Vec<&Peer> = r.peers.values().collect();
                peers.sort_by_key(|p| p.id);
                json!({
                    "id": r.id,
                    "createdAt": r.created_at,
                    "peers": peers.into_iter().map(peer_stats).collect::<Vec<_>>(),
                })
            }
        }
    }

    /// Every room's stats: `{"rooms": [...]}`.
    pub fn stats(&self) -> Value {
        let rooms: Vec<Value> = self
            .sessions()
            .into_iter()
            .map(|(id, _)| self.room_stats(id))
            .collect();
        json!({ "rooms": rooms })
    }

    /// Console `dumpRooms`: one line per room.
    pub fn dump_rooms(&self) -> String {
        let mut out = String::new();
        for (id, created) in self.sessions() {
            let r = &self.rooms[&id];
            let connected = r.peers.values().filter(|p| p.conn.is_some()).count();
            out.push_str(&format!(
                "room {id} createdAt:{created} peers:{} connected:{connected}\n",
                r.peers.len()
            ));
        }
        if out.is_empty() {
            out.push_str("no rooms\n");
        }
        out
    }

    /// Console `dumpPeers`: one line per peer.
    pub fn dump_peers(&self) -> String {
        let mut out = String::new();
        for (id, _) in self.sessions() {
            let mut peers: Vec<&Peer> = self.rooms[&id].peers.values().collect();
            peers.sort_by_key(|p| p.id);
            for p in peers {
                out.push_str(&format!(
                    "peer {} room:{id} role:{} joined:{} connected:{} nickname:{} transports:{} producers:{} consumers:{}\n",
                    p.id,
                    p.role.bits(),
                    p.joined,
                    p.conn.is_some(),
                    p.nickname_value(),
                    p.transports.len(),
                    p.producers.len(),
                    p.consumers.len()
                ));
            }
        }
        if out.is_empty() {
            out.push_str("no peers\n");
        }
        out
    }

    /// Console `dumpInternals`: sizes of the control plane's tables, to check that churn
    /// leaves nothing behind.
    pub fn internal_counts(&self) -> String {
        let peers: usize = self.rooms.values().map(|r| r.peers.len()).sum();
        format!(
            "rooms:{} peers:{} peerIndex:{} sockets:{} timers:{} pendingEngineRequests:{} producers:{} consumerOffers:{}",
            self.rooms.len(),
            peers,
            self.peer_rooms.len(),
            self.sockets.len(),
            self.timers.len(),
            self.pending.len(),
            self.media.producers.len(),
            self.media.offers.len()
        )
    }

    /// The room of a peer, if it exists.
    pub fn room_of(&self, peer: &PeerId) -> Option<RoomId> {
        self.peer_rooms.get(peer).copied()
    }
}
