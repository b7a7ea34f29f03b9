//! What the control plane does when something fails underneath it (issue 8).
//!
//! **A media worker failed** ([`EngineEvent::WorkerFailed`](kolabmeet_media_types::EngineEvent)):
//! every transport, producer and consumer of its rooms is gone, and the engine already has
//! empty routers for them on the worker replacing it. Each such room starts its media
//! again: the control plane forgets the room's media, fails the requests still waiting for
//! the dead worker (`503`, [`EngineError::WorkerFailed`]), and marks every peer as not
//! joined. Every connected peer then gets, on its unchanged signaling socket,
//! `peerClosed` for each other peer that was joined (they come back with `newPeer` as they
//! join again) followed by `roomReady` (fresh ICE servers): the notification a client
//! starts from, loading its device, creating its transports, joining, producing. A peer
//! without a socket at that moment (within its reconnection grace) gets `roomReady`
//! instead of `roomBack` when it comes back.
//!
//! The unchanged Kolab client does not rebuild everything on a second `roomReady` (it
//! makes a new device, receiving transport and `join`, but keeps its stale sending
//! transport and does not produce again, because its camera and microphone did not
//! change); the browser suite's page does the whole flow. ICE restarts cannot help: the
//! DTLS and SRTP state of the old transports died with the worker.
//!
//! **A panic in the control plane** while it handles one socket frame, one timer or one
//! engine event is caught ([`ControlPlane::contained`]) and costs at most the room it was
//! handling: that room is closed (its peers' sockets get a Socket.IO disconnect, the
//! `roomClosed` webhook is posted); a socket not bound to a room is just closed. Every
//! other room, and the process, go on.

use std::panic::{AssertUnwindSafe, catch_unwind};

use kolabmeet_media_types::panic_message::panic_message;
use kolabmeet_media_types::{EngineError, EngineEvent, PeerId, RequestTag, RoomId};
use serde_json::json;

use super::{ControlPlane, Now, TimerKey};
use crate::ConnId;
use crate::error::RequestError;

/// What a piece of control-plane work touches, so that a panic in it costs only that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// One room's state.
    Room(RoomId),
    /// A signaling socket bound to no room yet.
    Socket(ConnId),
    /// Nothing that a close would clean up (logged only).
    Nothing,
}

impl ControlPlane {
    /// Runs `work`; if it panics, the panic costs `scope` only: the room is closed (or the
    /// socket), everything else goes on.
    pub(super) fn contained(&mut self, scope: Scope, now: Now, work: impl FnOnce(&mut Self)) {
        let Err(payload) = catch_unwind(AssertUnwindSafe(|| work(self))) else {
            return;
        };
        // Frames half-made for a socket are not sent.
        self.scratch.clear();
        let message = panic_message(&*payload);
        // A socket the work bound to its peer before panicking takes its room along.
        let scope = match scope {
            Scope::Socket(conn) => self.socket_scope(conn),
            other => other,
        };
        match scope {
            Scope::Room(room) => {
                tracing::error!(room = %room, panic = %message, "internal error while handling this room: closing it");
                self.close_room_after_panic(room, now);
            }
            Scope::Socket(conn) => {
                tracing::error!(conn = conn.0, panic = %message, "internal error while handling a signaling socket: closing it");
                self.sockets.remove(&conn);
                self.outputs.push_back(super::Output::Close(conn));
            }
            Scope::Nothing => {
                tracing::error!(panic = %message, "internal error in the control plane");
            }
        }
    }

    /// Closes a room whose state a panic may have left inconsistent: as a normal close
    /// if that works, else by dropping what belongs to it.
    fn close_room_after_panic(&mut self, room: RoomId, now: Now) {
        self.fail_pending_of(room, None, now);
        let closed = catch_unwind(AssertUnwindSafe(|| self.close_room(room, now)));
        if closed.is_err() {
            self.scratch.clear();
            tracing::error!(room = %room, "closing the room failed too: dropping it");
            if let Some(r) = self.rooms.remove(&room) {
                for peer in r.peers.values() {
                    self.peer_rooms.remove(&peer.id);
                    self.forget_media_of(peer.id);
                    if let Some(conn) = peer.conn {
                        self.sockets.remove(&conn);
                        self.outputs.push_back(super::Output::Close(conn));
                    }
                }
            }
            self.engine
                .submit(kolabmeet_media_types::EngineCommand::CloseRouter { room });
            self.outputs
                .push_back(super::Output::Webhook(super::Webhook::RoomClosed { room }));
        }
    }

    /// The scope of a socket's work: its room once bound.
    pub(super) fn socket_scope(&self, conn: ConnId) -> Scope {
        match self.sockets.get(&conn).and_then(|r| r.bound) {
            Some((room, _)) => Scope::Room(room),
            None => Scope::Socket(conn),
        }
    }

    /// The scope of a timer.
    pub(super) fn timer_scope(&self, key: &TimerKey) -> Scope {
        match key {
            TimerKey::Socket(conn) => self.socket_scope(*conn),
            TimerKey::Peer(room, _) | TimerKey::Room(room) => Scope::Room(*room),
            TimerKey::Request(tag) => self.tag_scope(*tag),
            TimerKey::Drain => Scope::Nothing,
        }
    }

    /// The scope of a media request waiting for its reply.
    pub(super) fn tag_scope(&self, tag: RequestTag) -> Scope {
        self.pending
            .get(&tag)
            .map_or(Scope::Nothing, |p| Scope::Room(p.ctx.room))
    }

    /// The scope of an engine event about a peer.
    pub(super) fn peer_scope(&self, peer: PeerId) -> Scope {
        self.peer_rooms
            .get(&peer)
            .map_or(Scope::Nothing, |r| Scope::Room(*r))
    }

    /// The scope of an engine event.
    pub(super) fn event_scope(&self, event: &EngineEvent) -> Scope {
        match event {
            EngineEvent::Reply { tag, .. } => self.tag_scope(*tag),
            EngineEvent::ConsumerClosed { peer, .. }
            | EngineEvent::ConsumerProducerPaused { peer, .. }
            | EngineEvent::ConsumerLayersChanged { peer, .. }
            | EngineEvent::ConsumerScoreChanged { peer, .. }
            | EngineEvent::TransportClosed { peer, .. } => self.peer_scope(*peer),
            // A worker's failure is handled room by room, each contained on its own.
            _ => Scope::Nothing,
        }
    }

    /// Fails every media request of `room` still waiting for the engine (their client
    /// gets `error` when given, else nothing).
    fn fail_pending_of(&mut self, room: RoomId, error: Option<&RequestError>, now: Now) {
        let tags: Vec<RequestTag> = self
            .pending
            .iter()
            .filter(|(_, p)| p.ctx.room == room)
            .map(|(t, _)| *t)
            .collect();
        for tag in tags {
            if let (Some(p), Some(e)) = (self.pending.remove(&tag), error) {
                self.ack_error(p.ctx, e, now.mono);
            }
        }
    }

    /// The worker hosting `rooms` failed (see the module documentation).
    pub(super) fn on_worker_failed(
        &mut self,
        worker: usize,
        rooms: Vec<RoomId>,
        spread_peers: Vec<(RoomId, Vec<PeerId>)>,
        reason: &str,
        now: Now,
    ) {
        tracing::warn!(
            worker,
            rooms = rooms.len(),
            spread_rooms = spread_peers.len(),
            reason,
            "media worker failed: its rooms' media start again"
        );
        for room in rooms {
            self.contained(Scope::Room(room), now, |cp| {
                cp.restart_room_media(room, now)
            });
        }
        for (room, peers) in spread_peers {
            self.contained(Scope::Room(room), now, |cp| {
                cp.restart_peers_media(room, &peers, now)
            });
        }
    }

    /// Starts the media of some peers of a room again after the worker they were on
    /// failed, the room's other peers keeping theirs (issue 16: a room spread over
    /// several workers). Each of them that is connected gets `peerClosed` for the room's
    /// other joined peers and `roomReady`; the others get `peerClosed` for each of them
    /// that was joined (and `newPeer` when it joins again). Their consumers of the lost
    /// peers' producers are closed by the engine (`consumerClosed`).
    fn restart_peers_media(&mut self, room_id: RoomId, lost: &[PeerId], now: Now) {
        if !self.rooms.contains_key(&room_id) {
            return;
        }
        let tags: Vec<RequestTag> = self
            .pending
            .iter()
            .filter(|(_, p)| p.ctx.room == room_id && lost.contains(&p.ctx.peer))
            .map(|(t, _)| *t)
            .collect();
        let error = RequestError::Engine(EngineError::WorkerFailed);
        for tag in tags {
            if let Some(p) = self.pending.remove(&tag) {
                self.ack_error(p.ctx, &error, now.mono);
            }
        }
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let was_joined: Vec<PeerId> = room.joined_peers().map(|p| p.id).collect();
        let mut reachable = Vec::new();
        for peer in room.peers.values_mut().filter(|p| lost.contains(&p.id)) {
            if let Some(conn) = peer.forget_media_after_worker_failure() {
                reachable.push((peer.id, conn));
            }
        }
        for peer in lost {
            self.forget_media_of(*peer);
        }
        for other in was_joined.iter().filter(|o| !lost.contains(o)) {
            for gone in lost.iter().filter(|p| was_joined.contains(p)) {
                self.notify_peer(room_id, *other, "peerClosed", &json!({ "peerId": gone }));
            }
        }
        for (peer, conn) in &reachable {
            for other in was_joined.iter().filter(|o| *o != peer) {
                self.notify_peer(room_id, *peer, "peerClosed", &json!({ "peerId": other }));
            }
            let data = self.room_ready_data(room_id, *peer, now);
            self.notify_peer(room_id, *peer, "roomReady", &data);
            tracing::info!(room = %room_id, peer = %peer, conn = conn.0, "its media worker failed: roomReady sent again");
        }
        self.maybe_compact_timers();
    }

    /// Starts a room's media again after its worker failed.
    fn restart_room_media(&mut self, room_id: RoomId, now: Now) {
        if !self.rooms.contains_key(&room_id) {
            return;
        }
        self.fail_pending_of(
            room_id,
            Some(&RequestError::Engine(EngineError::WorkerFailed)),
            now,
        );
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let was_joined: Vec<PeerId> = room.joined_peers().map(|p| p.id).collect();
        let mut reachable = Vec::new();
        for peer in room.peers.values_mut() {
            if let Some(conn) = peer.forget_media_after_worker_failure() {
                reachable.push((peer.id, conn));
            }
        }
        self.media.producers.retain(|_, p| p.room != room_id);
        let peer_rooms = &self.peer_rooms;
        self.media
            .offers
            .retain(|_, o| peer_rooms.get(&o.peer) != Some(&room_id));
        for (peer, conn) in &reachable {
            for other in was_joined.iter().filter(|o| *o != peer) {
                self.notify_peer(room_id, *peer, "peerClosed", &json!({ "peerId": other }));
            }
            let data = self.room_ready_data(room_id, *peer, now);
            self.notify_peer(room_id, *peer, "roomReady", &data);
            tracing::info!(room = %room_id, peer = %peer, conn = conn.0, "media restarted: roomReady sent again");
        }
        self.maybe_compact_timers();
    }
}
