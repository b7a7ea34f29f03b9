//! Signaling sockets: the connection checks, `roomReady`/`roomBack`, the socket swap on
//! reconnection, and what a lost socket means for its peer (contract sections 4 and 5).

use std::time::{Duration, Instant};

use kolabmeet_media_types::{PeerId, RoomId};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::recovery::Scope;
use super::socket_rec::{HandshakeQuery, SocketRec};
use super::{ControlPlane, MAX_SOCKETS, Now, Output, TimerKey};
use crate::ConnId;
use crate::engineio::EioVersion;
use crate::session::{CloseReason, Incoming, Session, TimerOutcome};
use crate::turn_credentials::ice_server;

/// How long a socket whose connection was refused may stay open (the client normally
/// closes it itself after its `connect_error`).
const REFUSED_SOCKET_LINGER: Duration = Duration::from_secs(5);

impl ControlPlane {
    /// A WebSocket was accepted: starts its Engine.IO session. For Engine.IO v3 the
    /// Socket.IO default namespace connects at once, so the checks run now.
    pub fn socket_open(&mut self, conn: ConnId, query: HandshakeQuery, now: Now) {
        // A panic here costs at most this socket (recovery.rs).
        self.contained(Scope::Socket(conn), now, |cp| {
            cp.open_socket(conn, query, now)
        });
    }

    fn open_socket(&mut self, conn: ConnId, query: HandshakeQuery, now: Now) {
        let version = EioVersion::from_query(query.eio.as_deref()).unwrap_or(EioVersion::V4);
        if self.sockets.len() >= MAX_SOCKETS {
            if let Some(suppressed) = self.logs.sockets_full.allow(now.mono) {
                tracing::warn!(suppressed, "too many signaling sockets, refusing one");
            }
            self.outputs.push_back(Output::Close(conn));
            return;
        }
        let sid = super::random_hex_token();
        let session = Session::open(
            version,
            sid,
            self.config.session.clone(),
            now.mono,
            &mut self.scratch,
        );
        self.push_frames(conn);
        let scheduled = session.poll_timeout();
        self.timers.push(scheduled, TimerKey::Socket(conn));
        self.sockets.insert(
            conn,
            SocketRec {
                session,
                query,
                bound: None,
                scheduled,
                linger_until: None,
                detached: false,
            },
        );
        if version == EioVersion::V3 {
            self.connect_socket(conn, now);
        }
        self.maybe_compact_timers();
    }

    /// One text frame from a socket.
    pub fn socket_frame(&mut self, conn: ConnId, text: &str, now: Now) {
        // A panic while handling one frame costs at most its room (recovery.rs).
        let scope = self.socket_scope(conn);
        self.contained(scope, now, |cp| cp.on_socket_frame(conn, text, now));
    }

    fn on_socket_frame(&mut self, conn: ConnId, text: &str, now: Now) {
        let Some(rec) = self.sockets.get_mut(&conn) else {
            return;
        };
        if rec.detached {
            return;
        }
        let incoming = rec.session.on_frame(text, now.mono, &mut self.scratch);
        self.push_frames(conn);
        match incoming {
            Err(e) => {
                tracing::debug!(conn = conn.0, error = %e, "bad signaling frame, closing socket");
                self.end_socket(conn, CloseReason::ParseError, now);
            }
            Ok(Incoming::Nothing) => {}
            Ok(Incoming::Connect) => self.connect_socket(conn, now),
            Ok(Incoming::Request { ack, payload }) => self.on_request(conn, ack, payload, now),
            Ok(Incoming::OtherEvent(name)) => {
                tracing::debug!(conn = conn.0, event = %name, "ignored socket.io event");
            }
            Ok(Incoming::Ack { token, args }) => self.on_server_request_ack(token, args, now),
            Ok(Incoming::Disconnect) => self.end_socket(conn, CloseReason::ClientDisconnect, now),
            Ok(Incoming::Close) => self.end_socket(conn, CloseReason::TransportClose, now),
        }
        self.reschedule_socket(conn);
    }

    /// The socket is gone (whatever the reason). Called once per opened socket.
    pub fn socket_closed(&mut self, conn: ConnId, now: Now) {
        let scope = self.socket_scope(conn);
        self.contained(scope, now, |cp| cp.on_socket_closed(conn, now));
    }

    fn on_socket_closed(&mut self, conn: ConnId, now: Now) {
        let Some(rec) = self.sockets.remove(&conn) else {
            return;
        };
        if rec.detached {
            return;
        }
        if let Some((room, peer)) = rec.bound {
            self.lose_peer_socket(room, peer, conn, now);
        }
    }

    /// Ends a socket for `reason`: a deliberate disconnect closes its peer at once; any
    /// other loss starts the peer's reconnection grace.
    fn end_socket(&mut self, conn: ConnId, reason: CloseReason, now: Now) {
        let Some(rec) = self.sockets.get_mut(&conn) else {
            return;
        };
        if rec.detached {
            return;
        }
        rec.detached = true;
        let bound = rec.bound;
        tracing::debug!(conn = conn.0, ?reason, "signaling socket ending");
        if reason == CloseReason::ClientDisconnect {
            // The client already left the namespace; just close the engine.io session.
            self.scratch
                .push(crate::engineio::EioPacket::Close.encode());
            self.push_frames(conn);
        }
        self.outputs.push_back(Output::Close(conn));
        if let Some((room, peer)) = bound {
            if reason == CloseReason::ClientDisconnect {
                tracing::info!(room = %room, peer = %peer, "peer left");
                self.close_peer(room, peer, now);
            } else {
                tracing::info!(room = %room, peer = %peer, ?reason, "peer lost its socket");
                self.lose_peer_socket(room, peer, conn, now);
            }
        }
    }

    /// The server closes a socket on its own (kick, replacement, room closed): tells the
    /// client (`41`) and closes it, without touching its peer.
    pub(super) fn detach_socket(&mut self, conn: ConnId) {
        let Some(rec) = self.sockets.get_mut(&conn) else {
            return;
        };
        if rec.detached {
            return;
        }
        rec.detached = true;
        rec.session.disconnect(&mut self.scratch);
        self.push_frames(conn);
        self.outputs.push_back(Output::Close(conn));
    }

    fn lose_peer_socket(&mut self, room_id: RoomId, peer_id: PeerId, conn: ConnId, now: Now) {
        let grace = self.config.peer_grace;
        let Some(peer) = self
            .rooms
            .get_mut(&room_id)
            .and_then(|r| r.peers.get_mut(&peer_id))
        else {
            return;
        };
        if peer.conn != Some(conn) {
            return;
        }
        peer.conn = None;
        let until = now.mono + grace;
        peer.grace_until = Some(until);
        self.timers.push(until, TimerKey::Peer(room_id, peer_id));
    }

    pub(super) fn peer_grace_timer(&mut self, room_id: RoomId, peer_id: PeerId, now: Now) {
        let expired = self
            .rooms
            .get(&room_id)
            .and_then(|r| r.peers.get(&peer_id))
            .is_some_and(|p| p.conn.is_none() && p.grace_until.is_some_and(|t| t <= now.mono));
        if expired {
            tracing::info!(room = %room_id, peer = %peer_id, "peer did not come back in time");
            self.close_peer(room_id, peer_id, now);
        }
    }

    pub(super) fn socket_timer(&mut self, conn: ConnId, at: Instant, now: Now) {
        let Some(rec) = self.sockets.get_mut(&conn) else {
            return;
        };
        if !rec.timer_is_live(at) {
            return;
        }
        if rec.linger_until.is_some_and(|t| t <= now.mono) {
            rec.detached = true;
            self.outputs.push_back(Output::Close(conn));
            return;
        }
        let outcomes = rec.session.handle_timeout(now.mono, &mut self.scratch);
        self.push_frames(conn);
        for outcome in outcomes {
            match outcome {
                TimerOutcome::PingTimeout => {
                    self.end_socket(conn, CloseReason::PingTimeout, now);
                    return;
                }
                TimerOutcome::RequestFailed { token } => {
                    self.on_server_request_failed(token, now);
                }
            }
        }
        if let Some(rec) = self.sockets.get_mut(&conn) {
            rec.scheduled = far_future(now.mono);
        }
        self.reschedule_socket(conn);
    }

    /// Makes sure the timer heap holds the socket's earliest deadline.
    pub(super) fn reschedule_socket(&mut self, conn: ConnId) {
        let Some(rec) = self.sockets.get_mut(&conn) else {
            return;
        };
        let mut want = rec.session.poll_timeout();
        if let Some(t) = rec.linger_until {
            want = want.min(t);
        }
        if want < rec.scheduled {
            rec.scheduled = want;
            self.timers.push(want, TimerKey::Socket(conn));
        }
    }

    /// Runs the connection checks of contract section 4 and binds the socket to its peer.
    fn connect_socket(&mut self, conn: ConnId, now: Now) {
        let Some(rec) = self.sockets.get(&conn) else {
            return;
        };
        match self.check_query(&rec.query) {
            Err(reason) => {
                self.counters.connections_refused += 1;
                if let Some(suppressed) = self.logs.refused.allow(now.mono) {
                    tracing::info!(
                        conn = conn.0,
                        reason,
                        suppressed,
                        "signaling connection refused"
                    );
                }
                let rec = self.sockets.get_mut(&conn).expect("checked above");
                rec.session.refuse_connect(reason, &mut self.scratch);
                rec.linger_until = Some(now.mono + REFUSED_SOCKET_LINGER);
                self.push_frames(conn);
                self.reschedule_socket(conn);
            }
            Ok((room_id, peer_id)) => {
                self.counters.connections_accepted += 1;
                self.bind_socket(conn, room_id, peer_id, now);
            }
        }
    }

    fn check_query(&self, q: &HandshakeQuery) -> Result<(RoomId, PeerId), &'static str> {
        let peer = q
            .peer_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or("missing peerId")?;
        let room = q
            .room_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or("missing roomId")?;
        let token = q
            .auth_token
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or("missing authToken")?;
        let room_id: RoomId = room.parse().map_err(|_| "unknown room")?;
        let room = self.rooms.get(&room_id).ok_or("unknown room")?;
        let peer_id: PeerId = peer.parse().map_err(|_| "unknown peer")?;
        let peer = match room.peers.get(&peer_id) {
            Some(p) => p,
            None if self.peer_rooms.contains_key(&peer_id) => {
                return Err("peer belongs to another room");
            }
            None => return Err("unknown peer"),
        };
        if !bool::from(peer.auth_token.as_bytes().ct_eq(token.as_bytes())) {
            return Err("invalid authToken");
        }
        Ok((room_id, peer_id))
    }

    /// `roomReady {iceServers, roomId}` for a peer: TURN credentials valid from `now`.
    pub(super) fn room_ready_data(&self, room_id: RoomId, peer_id: PeerId, now: Now) -> Value {
        let ice_servers = match &self.config.turn {
            Some(t) => json!([ice_server(
                &t.url,
                &t.secret,
                &peer_id.to_string(),
                now.unix
            )]),
            None => Value::Null,
        };
        json!({ "iceServers": ice_servers, "roomId": room_id })
    }

    fn bind_socket(&mut self, conn: ConnId, room_id: RoomId, peer_id: PeerId, now: Now) {
        let Some(room) = self.rooms.get_mut(&room_id) else {
            return;
        };
        room.close_at = None;
        let Some(peer) = room.peers.get_mut(&peer_id) else {
            return;
        };
        let old = peer.conn.replace(conn);
        peer.grace_until = None;
        let first_time = !peer.ever_connected;
        peer.ever_connected = true;
        if let Some(rec) = self.sockets.get_mut(&conn) {
            rec.bound = Some((room_id, peer_id));
            rec.session.accept_connect(&mut self.scratch);
        }
        let (method, data) = if first_time {
            ("roomReady", self.room_ready_data(room_id, peer_id, now))
        } else {
            ("roomBack", json!({}))
        };
        if let Some(rec) = self.sockets.get(&conn) {
            rec.session.notify(method, &data, &mut self.scratch);
            self.push_frames(conn);
        }
        if let Some(old) = old.filter(|o| *o != conn) {
            tracing::info!(room = %room_id, peer = %peer_id, "peer reconnected, replacing its old socket");
            self.detach_socket(old);
        }
        tracing::info!(room = %room_id, peer = %peer_id, conn = conn.0, first_time, "peer connected");
    }
}

fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(86_400 * 365)
}
