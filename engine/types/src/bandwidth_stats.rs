//! What operators see of each transport's outgoing bandwidth (issue 9: "the console/stats
//! show each transport's estimate and each consumer's current and target layers"): a
//! snapshot each media worker publishes about once a second, read by the console's
//! `statsTransport` and `statsConsumer`. Typed here, written as JSON by the console.

use serde::Serialize;

use crate::ids::{ConsumerId, PeerId, RoomId, TransportId};
use crate::ortc::MediaKind;

/// One WebRTC transport's outgoing bandwidth and its consumers' layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportBandwidthStats {
    /// The transport.
    pub transport_id: TransportId,
    /// Its peer.
    pub peer_id: PeerId,
    /// Its room.
    pub room_id: RoomId,
    /// The media worker hosting it.
    pub worker: usize,
    /// The send-side estimate, bit/s.
    pub estimate_bps: u64,
    /// What its consumers would cost at their highest layers, bit/s.
    pub desired_bps: u64,
    /// What the receiver acknowledged lately (transport-cc), bit/s.
    pub acked_bps: Option<u64>,
    /// The loss fraction of the last transport-cc reports.
    pub loss: f64,
    /// The delay detector's state: `normal`, `overusing` or `underusing`.
    pub delay_trend: &'static str,
    /// The padding of a spatial up-switch on trial, bit/s (0: none; issue 17).
    pub trial_bps: u64,
    /// Its consumers.
    pub consumers: Vec<ConsumerLayerStats>,
}

/// One consumer's layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerLayerStats {
    /// The consumer.
    pub consumer_id: ConsumerId,
    /// Audio or video.
    pub kind: MediaKind,
    /// The spatial layer it forwards now.
    pub current_layer: Option<u8>,
    /// The temporal layer it forwards now (VP8 with temporal layers).
    pub current_temporal_layer: Option<u8>,
    /// The spatial layer it is to forward (it switches on that layer's next key frame).
    pub target_layer: Option<u8>,
    /// What the allocation gives it: `highest` (nothing allocated yet), `upTo:<n>`, or
    /// `paused` (even its lowest layer does not fit).
    pub allocation: String,
    /// Paused by its peer or its producer.
    pub paused: bool,
    /// Packets sent.
    pub packets_sent: u64,
    /// Its score, 0-10.
    pub score: u8,
}
