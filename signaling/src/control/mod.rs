//! The control plane: every room, peer and signaling socket of the server, as one sans-IO
//! state machine (contract sections 3-5).
//!
//! It is driven by one thread: the HTTP API calls ([`ControlPlane::create_room`] and
//! friends), socket events ([`ControlPlane::socket_open`], [`ControlPlane::socket_frame`],
//! [`ControlPlane::socket_closed`]), timers ([`ControlPlane::handle_timeout`]) and media
//! engine events ([`ControlPlane::pump_engine`]). After each call the driver drains
//! [`ControlPlane::poll_output`] until `None`: frames to write, sockets to close and
//! webhooks to post. Room state lives here only; nothing here writes to a socket or
//! blocks, so no lock is ever held while writing.
//!
//! A panic while handling one socket frame, timer or engine event costs at most the room
//! it concerned (that room is closed), and a failed media worker restarts the media of the
//! rooms it hosted (`roomReady` again): see `recovery.rs`.

mod answer;
pub mod counters;
mod drain;
mod drain_state;
mod media;
mod media_book;
mod recovery;
mod requests;
mod socket_rec;
mod sockets;
mod stats;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use kolabmeet_media_types::log_limit::LogLimiter;
use kolabmeet_media_types::{MediaEngine, PeerId, RequestTag, RoomId};
use serde_json::Value;

use self::answer::Pending;
use self::media_book::MediaBook;
use self::socket_rec::SocketRec;
use crate::ConnId;
use crate::peer::Peer;
use crate::roles::Role;
use crate::room::{MAX_PEERS_PER_ROOM, Room};
use crate::session::{SessionConfig, notification_frame};
use crate::timers::TimerHeap;

pub use answer::PendingKind;
pub use counters::SignalingCounters;
pub use drain_state::DrainStatus;
pub use socket_rec::HandshakeQuery;

/// Rooms the server keeps at most (rooms are created by the authenticated API, but even
/// so every map a client can grow is bounded).
pub const MAX_ROOMS: usize = 100_000;
/// Signaling sockets the control plane keeps at most.
pub const MAX_SOCKETS: usize = 100_000;

/// Output queue capacity kept once the queue is drained (more is given back).
const OUTPUTS_KEPT_CAPACITY: usize = 1024;

/// The current time as both clocks the control plane needs: monotonic for timers, unix
/// seconds for `createdAt` and TURN credential expiry. Read once by the driver.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time.
    pub mono: Instant,
    /// Wall-clock unix seconds.
    pub unix: u64,
}

/// TURN settings (contract section 2).
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// The URL handed to clients.
    pub url: String,
    /// coturn's `static-auth-secret`.
    pub secret: String,
}

/// Settings of the control plane.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Heartbeats, request timeouts, rate limits.
    pub session: SessionConfig,
    /// How long a peer whose socket was lost waits for a reconnection (10 s).
    pub peer_grace: Duration,
    /// How long an empty room waits before closing (10 s).
    pub room_close_delay: Duration,
    /// How long a room nobody connects to lives (improvement over the old server).
    pub room_idle_expiry: Duration,
    /// TURN, if any.
    pub turn: Option<TurnConfig>,
    /// `host:port` written into signaling URLs.
    pub public_domain: String,
    /// Hand out `wss://` URLs.
    pub wss: bool,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            peer_grace: Duration::from_secs(10),
            room_close_delay: Duration::from_secs(10),
            room_idle_expiry: Duration::from_secs(3600),
            turn: None,
            public_domain: "127.0.0.1:12443".into(),
            wss: false,
        }
    }
}

/// A webhook to POST (contract section 3, "Webhooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Webhook {
    /// `{"roomId","event":"roomClosed"}`.
    RoomClosed {
        /// The room.
        room: RoomId,
    },
    /// `{"requestId","roomId","event":"joinRequestAccepted"|"joinRequestDenied"}`.
    JoinRequest {
        /// The moderator's answer.
        accepted: bool,
        /// The request id.
        request_id: String,
        /// The room.
        room: RoomId,
    },
}

impl Webhook {
    /// The JSON body.
    pub fn body(&self) -> Value {
        match self {
            Webhook::RoomClosed { room } => {
                serde_json::json!({ "roomId": room, "event": "roomClosed" })
            }
            Webhook::JoinRequest {
                accepted,
                request_id,
                room,
            } => serde_json::json!({
                "requestId": request_id,
                "roomId": room,
                "event": if *accepted { "joinRequestAccepted" } else { "joinRequestDenied" },
            }),
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Write a text frame.
    Frame(ConnId, String),
    /// Close the socket (after the frames queued before this).
    Close(ConnId),
    /// POST a webhook.
    Webhook(Webhook),
}

/// Errors of the HTTP-facing operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No such room.
    #[error("room not found")]
    RoomNotFound,
    /// The role has bits the contract does not know.
    #[error("invalid role")]
    InvalidRole,
    /// A bound was reached.
    #[error("{0}")]
    Full(&'static str),
    /// The server is draining (issue 10): it creates no new rooms.
    #[error(
        "the server is draining (shutting down once its rooms have closed): it creates no new rooms"
    )]
    Draining,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Socket(ConnId),
    Peer(RoomId, PeerId),
    Room(RoomId),
    /// A media request's reply deadline.
    Request(RequestTag),
    /// The drain deadline (issue 10).
    Drain,
}

/// How long a media request waits for the engine's reply before its client gets a failure
/// ack (a worker that is stuck or gone must not leave requests unanswered).
pub const ENGINE_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The control plane. See the module documentation.
pub struct ControlPlane {
    config: ControlConfig,
    engine: Box<dyn MediaEngine>,
    rooms: HashMap<RoomId, Room>,
    /// Which room each peer is in.
    peer_rooms: HashMap<PeerId, RoomId>,
    sockets: HashMap<ConnId, SocketRec>,
    timers: TimerHeap<TimerKey>,
    pending: HashMap<RequestTag, Pending>,
    media: MediaBook,
    next_tag: u64,
    outputs: VecDeque<Output>,
    scratch: Vec<String>,
    /// Rate limits of the log lines clients cause.
    logs: ClientLogLimits,
    /// The drain in progress, once the server was asked to stop (drain.rs).
    drain: Option<drain_state::Drain>,
    /// Connections and requests by outcome (`/metrics`).
    counters: SignalingCounters,
}

/// One limiter per kind of log line a client can cause at will (refused connections, failed
/// requests, too many sockets): a flood writes a few lines a second, saying how many it held
/// back.
#[derive(Debug, Default)]
struct ClientLogLimits {
    refused: LogLimiter,
    request_failed: LogLimiter,
    sockets_full: LogLimiter,
}

impl ControlPlane {
    /// A control plane with no rooms, using `engine` for media.
    pub fn new(config: ControlConfig, engine: Box<dyn MediaEngine>) -> Self {
        Self {
            config,
            engine,
            rooms: HashMap::new(),
            peer_rooms: HashMap::new(),
            sockets: HashMap::new(),
            timers: TimerHeap::default(),
            pending: HashMap::new(),
            media: MediaBook::default(),
            next_tag: 1,
            outputs: VecDeque::new(),
            scratch: Vec::new(),
            logs: ClientLogLimits::default(),
            drain: None,
            counters: SignalingCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        let out = self.outputs.pop_front();
        if out.is_none() && self.outputs.capacity() > OUTPUTS_KEPT_CAPACITY {
            // A burst (a room closing, many peers timing out at once) grew the queue;
            // do not keep its high-water capacity for the life of the process.
            self.outputs.shrink_to(OUTPUTS_KEPT_CAPACITY);
        }
        out
    }

    /// When [`ControlPlane::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek()
    }

    /// Drops cancelled timer entries once they outnumber the live ones. Timers are
    /// cancelled lazily (an entry is checked when it fires), so without this every
    /// socket that closes leaves its heartbeat entry for up to a ping interval and every
    /// room that empties and fills again leaves an idle-expiry entry for an hour: under
    /// steady churn the heap (and its capacity) grows with the churn rate, not with what
    /// the server holds.
    fn maybe_compact_timers(&mut self) {
        let live_bound =
            self.sockets.len() + self.peer_rooms.len() + self.rooms.len() + self.pending.len();
        if self.timers.len() <= 2 * live_bound + 1024 {
            return;
        }
        let mut heap = std::mem::take(&mut self.timers);
        heap.retain(|at, key| self.timer_is_live(at, key));
        self.timers = heap;
    }

    /// Whether a timer entry would still do something when it fires: the entries that
    /// rescheduling or cancelling left behind are not (lazy cancellation).
    fn timer_is_live(&self, at: Instant, key: &TimerKey) -> bool {
        match key {
            TimerKey::Socket(conn) => self.sockets.get(conn).is_some_and(|r| r.timer_is_live(at)),
            TimerKey::Peer(room, peer) => self
                .rooms
                .get(room)
                .and_then(|r| r.peers.get(peer))
                .is_some_and(|p| p.grace_until == Some(at)),
            TimerKey::Room(room) => self.rooms.get(room).is_some_and(|r| r.close_at == Some(at)),
            TimerKey::Request(tag) => self.pending.get(tag).is_some_and(|p| p.deadline == at),
            TimerKey::Drain => self.drain.is_some_and(|d| d.deadline == at),
        }
    }

    /// Live timers (console `dumpInternals`): the heap's entries less those that
    /// rescheduling and cancelling left behind, so that the figure says what the server
    /// waits for whatever the moment it is read.
    pub(crate) fn live_timers(&self) -> usize {
        self.timers.count(|at, key| self.timer_is_live(at, key))
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        while let Some((at, key)) = self.timers.pop_due(now.mono) {
            // A panic while handling one timer costs at most its room (recovery.rs).
            let scope = self.timer_scope(&key);
            self.contained(scope, now, |cp| cp.run_timer(at, key, now));
        }
        self.maybe_compact_timers();
    }

    fn run_timer(&mut self, at: Instant, key: TimerKey, now: Now) {
        match key {
            TimerKey::Socket(conn) => self.socket_timer(conn, at, now),
            TimerKey::Peer(room, peer) => self.peer_grace_timer(room, peer, now),
            TimerKey::Request(tag) => self.engine_reply_timer(tag, at),
            TimerKey::Drain => self.drain_deadline(at, now),
            TimerKey::Room(room) => {
                let due = self
                    .rooms
                    .get(&room)
                    .and_then(|r| r.close_at)
                    .is_some_and(|t| t <= now.mono);
                if due {
                    tracing::info!(room = %room, "room closing: no peer left");
                    self.close_room(room, now);
                }
            }
        }
    }

    // ---- HTTP API side (contract section 3) ----

    /// `POST /meetmedia/api/sessions`: a new room, expiring if nobody ever comes. Refused
    /// while draining.
    pub fn create_room(&mut self, now: Now) -> Result<RoomId, ControlError> {
        self.check_not_draining()?;
        if self.rooms.len() >= MAX_ROOMS {
            return Err(ControlError::Full("too many rooms"));
        }
        let id = RoomId::random();
        let close_at = now.mono + self.idle_expiry();
        self.rooms.insert(id, Room::new(id, now.unix, close_at));
        self.timers.push(close_at, TimerKey::Room(id));
        self.engine
            .submit(kolabmeet_media_types::EngineCommand::CreateRouter { room: id });
        tracing::info!(room = %id, "room created");
        self.pump_engine(now);
        Ok(id)
    }

    /// Whether a room exists.
    pub fn room_exists(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    /// How many peers a room has (connected or not yet), if it exists (the demo page's
    /// per-room bound).
    pub fn peer_count(&self, room: &RoomId) -> Option<usize> {
        self.rooms.get(room).map(|r| r.peers.len())
    }

    /// `GET /meetmedia/api/sessions`: `(roomId, createdAt)` of every room.
    pub fn sessions(&self) -> Vec<(RoomId, u64)> {
        let mut v: Vec<_> = self.rooms.values().map(|r| (r.id, r.created_at)).collect();
        v.sort_by_key(|(id, t)| (*t, *id));
        v
    }

    /// `POST /meetmedia/api/sessions/<id>/connection`: a new peer with `role`; returns
    /// its id and signaling URL.
    pub fn create_peer(
        &mut self,
        room_id: RoomId,
        role: Role,
        now: Now,
    ) -> Result<(PeerId, String), ControlError> {
        let idle_expiry = self.idle_expiry();
        let room = self
            .rooms
            .get_mut(&room_id)
            .ok_or(ControlError::RoomNotFound)?;
        if room.peers.len() >= MAX_PEERS_PER_ROOM {
            return Err(ControlError::Full("too many peers in this room"));
        }
        let id = PeerId::random();
        let token = random_hex_token();
        let url = format!(
            "{}://{}?peerId={id}&roomId={room_id}&authToken={token}",
            if self.config.wss { "wss" } else { "ws" },
            self.config.public_domain
        );
        room.peers.insert(id, Peer::new(id, token, role));
        // A peer about to join keeps an empty room alive as long as a new room.
        if !room.has_active_peers() {
            let at = now.mono + idle_expiry;
            if room.close_at.is_none_or(|t| t < at) {
                room.close_at = Some(at);
                self.timers.push(at, TimerKey::Room(room_id));
            }
        }
        self.peer_rooms.insert(id, room_id);
        tracing::info!(room = %room_id, peer = %id, role = role.bits(), "peer created");
        Ok((id, url))
    }

    /// `POST /meetmedia/api/signal`: `signal:<type>` with `data` to every connected peer
    /// of the room, or only to those with any bit of `role`.
    pub fn signal(
        &mut self,
        room_id: RoomId,
        kind: &str,
        role: Option<Role>,
        data: &Value,
    ) -> Result<usize, ControlError> {
        let room = self.rooms.get(&room_id).ok_or(ControlError::RoomNotFound)?;
        let frame = notification_frame(&format!("signal:{kind}"), data);
        let mut sent = 0;
        for peer in room.peers.values() {
            if role.is_some_and(|r| !peer.role.intersects(r)) {
                continue;
            }
            if let Some(conn) = peer.conn {
                self.outputs.push_back(Output::Frame(conn, frame.clone()));
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Whether the media engine serves every room (`GET /meetmedia/api/health`).
    pub fn media_health(&self) -> kolabmeet_media_types::EngineHealth {
        self.engine.health()
    }

    /// Every transport's outgoing bandwidth and its consumers' layers, as the media
    /// workers last published them (console `statsTransport`, `statsConsumer`).
    pub fn bandwidth_stats(
        &self,
    ) -> Vec<kolabmeet_media_types::bandwidth_stats::TransportBandwidthStats> {
        self.engine.bandwidth_stats()
    }

    /// What every running media worker last published about itself (`/metrics`, the
    /// API's stats, console `dumpWorkers`).
    pub fn worker_stats(&self) -> Vec<kolabmeet_media_types::worker_stats::WorkerStats> {
        self.engine.worker_stats()
    }

    /// Signaling connections and requests by outcome (`/metrics`).
    pub fn signaling_counters(&self) -> &SignalingCounters {
        &self.counters
    }

    /// Media engine events waiting for the control loop (`/metrics`).
    pub fn engine_events_pending(&self) -> usize {
        self.engine.pending_events()
    }

    /// Signaling sockets open now (connected or not yet bound to a peer).
    pub fn socket_count(&self) -> usize {
        self.sockets.len()
    }

    /// Number of rooms and of peers (console `stats`).
    pub fn counts(&self) -> (usize, usize) {
        (self.rooms.len(), self.peer_rooms.len())
    }

    // ---- helpers shared by the submodules ----

    fn push_frames(&mut self, conn: ConnId) {
        for f in self.scratch.drain(..) {
            self.outputs.push_back(Output::Frame(conn, f));
        }
    }

    /// Changes a peer, if it exists.
    fn with_peer(&mut self, room: RoomId, peer: PeerId, f: impl FnOnce(&mut Peer)) {
        if let Some(p) = self
            .rooms
            .get_mut(&room)
            .and_then(|r| r.peers.get_mut(&peer))
        {
            f(p);
        }
    }

    /// Sends a notification to the joined peers of a room, except `except`.
    fn broadcast(&mut self, room: RoomId, except: Option<PeerId>, method: &str, data: &Value) {
        let Some(room) = self.rooms.get(&room) else {
            return;
        };
        let frame = notification_frame(method, data);
        for peer in room.joined_peers() {
            if Some(peer.id) == except {
                continue;
            }
            if let Some(conn) = peer.conn {
                self.outputs.push_back(Output::Frame(conn, frame.clone()));
            }
        }
    }

    /// Sends a notification to one peer, if it is reachable.
    fn notify_peer(&mut self, room: RoomId, peer: PeerId, method: &str, data: &Value) {
        let conn = self
            .rooms
            .get(&room)
            .and_then(|r| r.peers.get(&peer))
            .and_then(|p| p.conn);
        if let Some(conn) = conn {
            self.outputs
                .push_back(Output::Frame(conn, notification_frame(method, data)));
        }
    }

    /// Schedules the room's close when its last active peer is gone.
    fn maybe_schedule_room_close(&mut self, room_id: RoomId, now: Now) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        if room.has_active_peers() || room.close_at.is_some() {
            return;
        }
        let at = now.mono + self.config.room_close_delay;
        room.close_at = Some(at);
        self.timers.push(at, TimerKey::Room(room_id));
    }

    /// Closes a peer: its media, its socket, `peerClosed` to the others.
    fn close_peer(&mut self, room_id: RoomId, peer_id: PeerId, now: Now) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        let Some(peer) = room.peers.remove(&peer_id) else {
            return;
        };
        self.peer_rooms.remove(&peer_id);
        self.forget_media_of(peer_id);
        self.engine
            .submit(kolabmeet_media_types::EngineCommand::ClosePeer {
                room: room_id,
                peer: peer_id,
            });
        if let Some(conn) = peer.conn {
            self.detach_socket(conn);
        }
        if peer.joined {
            self.broadcast(
                room_id,
                None,
                "peerClosed",
                &serde_json::json!({ "peerId": peer_id }),
            );
        }
        tracing::info!(room = %room_id, peer = %peer_id, "peer closed");
        self.maybe_schedule_room_close(room_id, now);
        self.pump_engine(now);
    }

    /// Closes a room: every peer's socket, its routers, the `roomClosed` webhook.
    fn close_room(&mut self, room_id: RoomId, now: Now) {
        let Some(room) = self.rooms.remove(&room_id) else {
            return;
        };
        for peer in room.peers.values() {
            self.peer_rooms.remove(&peer.id);
            self.forget_media_of(peer.id);
            if let Some(conn) = peer.conn {
                self.detach_socket(conn);
            }
        }
        self.engine
            .submit(kolabmeet_media_types::EngineCommand::CloseRouter { room: room_id });
        self.outputs
            .push_back(Output::Webhook(Webhook::RoomClosed { room: room_id }));
        tracing::info!(room = %room_id, "room closed");
        self.note_room_closed_while_draining(room_id, now);
        self.pump_engine(now);
    }
}

/// 32 hex characters from the OS random source (the `authToken` of a peer URL).
fn random_hex_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
