//! A peer of a room (contract section 5): its role, its public `peerInfo`, the socket it
//! is reachable on and the media objects it owns.

use std::time::Instant;

use kolabmeet_media_types::ortc::RtpCapabilities;
use kolabmeet_media_types::{ConsumerId, PeerId, ProducerId, TransportId};
use serde_json::{Value, json};

use crate::ConnId;
use crate::roles::Role;

/// Media objects a peer may own at once (bounds what a client can make the server keep).
pub const MAX_MEDIA_OBJECTS_PER_PEER: usize = 512;

/// One peer.
#[derive(Debug)]
pub struct Peer {
    /// Its id.
    pub id: PeerId,
    /// The 32 hex characters of its signaling URL.
    pub auth_token: String,
    /// Role bits.
    pub role: Role,
    /// `false` until set (serialised as `false`, like the old server).
    pub nickname: Option<String>,
    /// Two-letter interpreter language, or none.
    pub language: Option<String>,
    /// Raised hand.
    pub raised_hand: bool,
    /// Whether `join` succeeded.
    pub joined: bool,
    /// Whether a socket ever connected (decides `roomReady` versus `roomBack`).
    pub ever_connected: bool,
    /// The socket it is reachable on.
    pub conn: Option<ConnId>,
    /// While its socket is lost: when the peer closes unless it reconnects.
    pub grace_until: Option<Instant>,
    /// The device capabilities given at `join`.
    pub rtp_capabilities: Option<Box<RtpCapabilities>>,
    /// Transports it created.
    pub transports: Vec<TransportId>,
    /// The transport it consumes on (the last one created with `consuming`).
    pub consuming_transport: Option<TransportId>,
    /// Producers it owns.
    pub producers: Vec<ProducerId>,
    /// Consumers it owns.
    pub consumers: Vec<ConsumerId>,
}

impl Peer {
    /// Forgets its media after the worker its transports were on failed: not joined, no
    /// transports, producers or consumers; a peer without a socket (within its
    /// reconnection grace) starts over too. Its socket, if it has one, to tell it.
    pub fn forget_media_after_worker_failure(&mut self) -> Option<ConnId> {
        self.joined = false;
        self.rtp_capabilities = None;
        self.transports.clear();
        self.consuming_transport = None;
        self.producers.clear();
        self.consumers.clear();
        if self.conn.is_none() {
            self.ever_connected = false;
        }
        self.conn
    }

    /// A peer created by the HTTP API, not yet connected.
    pub fn new(id: PeerId, auth_token: String, role: Role) -> Self {
        Self {
            id,
            auth_token,
            role,
            nickname: None,
            language: None,
            raised_hand: false,
            joined: false,
            ever_connected: false,
            conn: None,
            grace_until: None,
            rtp_capabilities: None,
            transports: Vec::new(),
            consuming_transport: None,
            producers: Vec::new(),
            consumers: Vec::new(),
        }
    }

    /// `peerInfo`: `{id, language, nickname, role, raisedHand}`.
    pub fn info(&self) -> Value {
        json!({
            "id": self.id,
            "language": self.language,
            "nickname": self.nickname_value(),
            "role": self.role.bits(),
            "raisedHand": self.raised_hand,
        })
    }

    /// The nickname as the contract shows it: a string, or `false` when never set.
    pub fn nickname_value(&self) -> Value {
        match &self.nickname {
            Some(n) => Value::String(n.clone()),
            None => Value::Bool(false),
        }
    }

    /// Whether the peer holds a socket or may still come back on one.
    pub fn is_active(&self) -> bool {
        self.conn.is_some() || self.grace_until.is_some()
    }

    /// How many media objects it owns.
    pub fn media_objects(&self) -> usize {
        self.transports.len() + self.producers.len() + self.consumers.len()
    }
}
