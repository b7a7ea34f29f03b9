//! What a router writes to outside its room: the worker's transports (its consumers send
//! on them, its producers' senders get RTCP over them), the datagrams and events queued for
//! the driver and the control plane, the recycled packet buffers and the media clock. The
//! worker lends them for one call; the router keeps no reference to anything outside.

use std::collections::VecDeque;

use crate::arena::{Arena, TransportKey};
use crate::buffer_pool::BufferPool;
use crate::media_engine::EngineEvent;
use crate::mirror::PipeOutbox;
use crate::rtp_stream::MediaClock;
use crate::transport::{MediaTransport, Transmit};
use crate::worker_stats::FeedbackCounters;

/// The worker's outputs lent to a router; see the module documentation.
pub struct Egress<'a> {
    /// Every transport of the worker, by key.
    pub transports: &'a mut Arena<TransportKey, MediaTransport>,
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
