//! Stats and dumps: `GET /meetmedia/api/stats`, `dumpStats` and the console (contract
//! sections 3, 5 and 7).

use std::collections::HashMap;

use kolabmeet_media_types::worker_stats::WorkerStats;
use kolabmeet_media_types::{ConsumerId, PeerId, ProducerId, RoomId, TransportId};
use serde_json::{Value, json};

use super::ControlPlane;
use crate::peer::Peer;

/// The media workers' last snapshots, indexed by id: each transport (with its bandwidth
/// estimate and the worker hosting it), producer and consumer as JSON.
#[derive(Default)]
struct MediaIndex {
    transports: HashMap<TransportId, Value>,
    producers: HashMap<ProducerId, Value>,
    consumers: HashMap<ConsumerId, Value>,
}

impl MediaIndex {
    fn new(workers: &[WorkerStats]) -> Self {
        let mut index = MediaIndex::default();
        for w in workers {
            for t in &w.transports {
                let mut v = json!({
                    "id": t.transport_id,
                    "worker": w.worker,
                    "kind": t.kind,
                    "state": t.state,
                    "estimateBps": t.estimate_bps,
                    "droppedPackets": t.dropped_packets,
                    "wrongSourcePackets": t.wrong_source_packets,
                });
                if let Some(b) = w
                    .bandwidth
                    .iter()
                    .find(|b| b.transport_id == t.transport_id)
                {
                    v["desiredBps"] = json!(b.desired_bps);
                    v["ackedBps"] = json!(b.acked_bps);
                    v["loss"] = json!(b.loss);
                    v["delayTrend"] = json!(b.delay_trend);
                    v["trialBps"] = json!(b.trial_bps);
                }
                index.transports.insert(t.transport_id, v);
            }
            for p in &w.producers {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                v["id"] = json!(p.producer_id);
                index.producers.insert(p.producer_id, v);
            }
            for c in &w.consumers {
                let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                v["id"] = json!(c.consumer_id);
                index.consumers.insert(c.consumer_id, v);
            }
        }
        index
    }
}

/// An entry's stats, or just its id when no worker has reported it yet (it was created
/// within the last second, or its worker is being replaced).
fn stats_of<K: std::hash::Hash + Eq + serde::Serialize>(map: &HashMap<K, Value>, id: &K) -> Value {
    map.get(id).cloned().unwrap_or_else(|| json!({ "id": id }))
}

fn peer_stats(p: &Peer, media: &MediaIndex) -> Value {
    json!({
        "id": p.id,
        "nickname": p.nickname_value(),
        "role": p.role.bits(),
        "joined": p.joined,
        "connected": p.conn.is_some(),
        "transports": p.transports.iter().map(|t| stats_of(&media.transports, t)).collect::<Vec<_>>(),
        "producers": p.producers.iter().map(|t| stats_of(&media.producers, t)).collect::<Vec<_>>(),
        "consumers": p.consumers.iter().map(|t| stats_of(&media.consumers, t)).collect::<Vec<_>>(),
    })
}

impl ControlPlane {
    /// One room's stats: `{id, createdAt, peers: [...]}`, each peer with the stats of its
    /// transports, producers and consumers as the media workers last published them.
    pub fn room_stats(&self, room: RoomId) -> Value {
        self.room_stats_with(room, &MediaIndex::new(&self.engine.worker_stats()))
    }

    fn room_stats_with(&self, room: RoomId, media: &MediaIndex) -> Value {
        match self.rooms.get(&room) {
            None => Value::Null,
            Some(r) => {
                let mut peers: Vec<&Peer> = r.peers.values().collect();
                peers.sort_by_key(|p| p.id);
                json!({
                    "id": r.id,
                    "createdAt": r.created_at,
                    "peers": peers.into_iter().map(|p| peer_stats(p, media)).collect::<Vec<_>>(),
                })
            }
        }
    }

    /// Every room's stats: `{"rooms": [...]}` (`GET /meetmedia/api/stats`, contract
    /// section 3: "for each room, for each peer: id, nickname, and the stats of its
    /// transports, producers, consumers").
    pub fn stats(&self) -> Value {
        let media = MediaIndex::new(&self.engine.worker_stats());
        let rooms: Vec<Value> = self
            .sessions()
            .into_iter()
            .map(|(id, _)| self.room_stats_with(id, &media))
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
    /// leaves nothing behind. `timers` counts the live ones; `timerEntries` what the heap
    /// holds, with the entries rescheduling and cancelling left behind (compacted once
    /// they outnumber twice the live bound plus 1,024).
    pub fn internal_counts(&self) -> String {
        let peers: usize = self.rooms.values().map(|r| r.peers.len()).sum();
        format!(
            "rooms:{} peers:{} peerIndex:{} sockets:{} timers:{} pendingEngineRequests:{} producers:{} consumerOffers:{} timerEntries:{}",
            self.rooms.len(),
            peers,
            self.peer_rooms.len(),
            self.sockets.len(),
            self.live_timers(),
            self.pending.len(),
            self.media.producers.len(),
            self.media.offers.len(),
            self.timers.len()
        )
    }

    /// The room of a peer, if it exists.
    pub fn room_of(&self, peer: &PeerId) -> Option<RoomId> {
        self.peer_rooms.get(peer).copied()
    }
}
