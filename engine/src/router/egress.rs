//! What a router writes to outside its room: its room's transports (its consumers send
//! on them, its producers' senders get RTCP over them; [`RoomTransports`] lends no other
//! room's), the datagrams and events queued for the driver and the control plane, the
//! recycled packet buffers and the media clock. The worker lends them for one call; the
//! router keeps no reference to anything outside.

use std::collections::VecDeque;

use crate::arena::{Arena, RouterKey, TransportKey};
use crate::buffer_pool::BufferPool;
use crate::media_engine::EngineEvent;
use crate::mirror::PipeOutbox;
use crate::rtp_stream::MediaClock;
use crate::transport::{MediaTransport, Transmit};
use crate::worker_stats::FeedbackCounters;

/// The transports of one router's room, out of the worker's arena: a key of another
/// room's transport finds nothing (issue 18 §5: a router lends its consumers only its own
/// room's transports).
pub struct RoomTransports<'a> {
    arena: &'a mut Arena<TransportKey, MediaTransport>,
    router: RouterKey,
}

impl<'a> RoomTransports<'a> {
    /// The transports of `router` in `arena`.
    pub fn new(arena: &'a mut Arena<TransportKey, MediaTransport>, router: RouterKey) -> Self {
        Self { arena, router }
    }

    /// Transport `t`, if it is of this room.
    pub fn get(&self, t: TransportKey) -> Option<&MediaTransport> {
        self.arena.get(t).filter(|m| m.router == self.router)
    }

    /// Transport `t`, if it is of this room.
    pub fn get_mut(&mut self, t: TransportKey) -> Option<&mut MediaTransport> {
        let router = self.router;
        self.arena.get_mut(t).filter(|m| m.router == router)
    }
}

/// The worker's outputs lent to a router; see the module documentation.
pub struct Egress<'a> {
    /// The transports of the router's room, by key.
    pub transports: RoomTransports<'a>,
    /// Datagrams for the driver to send.
    pub transmits: &'a mut VecDeque<Transmit>,
    /// Events for the control plane.
    pub events: &'a mut VecDeque<EngineEvent>,
    /// Packet buffers.
    pub pool: &'a mut BufferPool,
    /// abs-send-time and NTP time.
    pub clock: &'a mut MediaClock,
    /// The worker's RTCP feedback counters (`/metrics`).
    pub counters: &'a mut FeedbackCounters,
    /// Messages for the other workers of the room (issue 16: mirrored producers).
    pub pipes: &'a mut PipeOutbox,
    /// The worker's overload shed level (issue 16; `allocation::load_shed`).
    pub shed: u8,
    /// The media being routed waited in the socket while the worker was stopped or
    /// starved: it updates the producers' state but is not forwarded (issue 18 §4).
    pub stale: bool,
}

impl Egress<'_> {
    /// Protects an RTCP compound packet and queues it on transport `t` (dropped when it is
    /// gone or not connected).
    pub fn send_rtcp(&mut self, t: TransportKey, packet: Vec<u8>) {
        if let Some(transport) = self.transports.get_mut(t) {
            transport.send_rtcp(packet, self.transmits);
        }
    }

    /// Whether transport `t` can send media.
    pub fn is_connected(&self, t: TransportKey) -> bool {
        self.transports
            .get(t)
            .is_some_and(MediaTransport::is_connected)
    }
}
