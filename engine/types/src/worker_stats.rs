//! What each media worker publishes about itself about once a second (issue 10: `GET
//! /metrics`, `GET /meetmedia/api/stats` of contract section 3, the console's
//! `dumpWorkers` of section 7): its tables, its traffic and drop counters, its busy time
//! and queue, and the stats of every transport, producer and consumer it hosts. The
//! worker fills it from plain counters it owns (no lock or allocation per packet); the
//! snapshot is the only thing shared, replaced once a second.

use serde::Serialize;

use crate::bandwidth_stats::{ConsumerLayerStats, TransportBandwidthStats};
use crate::ids::{ConsumerId, PeerId, ProducerId, RoomId, TransportId};
use crate::ortc::MediaKind;

/// Counters of RTCP feedback a worker received and answered (monotonic over the worker's
/// life; a replaced worker starts from zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackCounters {
    /// NACK packets received from receivers (RFC 4585 §6.2.1).
    pub nacks_received: u64,
    /// Packets resent in answer to NACKs.
    pub retransmitted: u64,
    /// PLIs received from receivers (RFC 4585 §6.3.1).
    pub plis_received: u64,
    /// FIR entries received from receivers (RFC 5104 §4.3.1).
    pub firs_received: u64,
    /// PLIs sent to senders (key frame requests, one per `keyFrameRequestDelay`).
    pub plis_sent: u64,
}

/// Input a worker dropped, by reason (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DropCounts {
    /// Datagrams from unknown addresses that were not a STUN request naming a transport.
    pub unknown_source: u64,
    /// Datagrams a transport refused (bad STUN, DTLS, SRTP authentication or replay).
    pub transport: u64,
    /// Datagrams to a plain transport from another address than its remote one.
    pub wrong_source: u64,
    /// RTP that no producer stream claimed.
    pub unknown_ssrc: u64,
    /// RTCP compound packets that did not parse to the end.
    pub malformed_rtcp: u64,
    /// RTP media that waited in the socket while the worker was stopped or starved, not
    /// forwarded (a burst of seconds-old media helps no receiver).
    pub stale_after_stall: u64,
}

/// One producer's stats (summed over its encodings).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerStats {
    /// The producer.
    pub producer_id: ProducerId,
    /// Its peer.
    pub peer_id: PeerId,
    /// The transport it receives on.
    pub transport_id: TransportId,
    /// Audio or video.
    pub kind: MediaKind,
    /// Paused by its owner.
    pub paused: bool,
    /// Media packets received (RTX packets that filled a gap included).
    pub packets_received: u64,
    /// Payload and header bytes received.
    pub bytes_received: u64,
    /// RTX packets received.
    pub packets_retransmitted: u64,
    /// What its encodings receive now, bit/s.
    pub bitrate_bps: u64,
    /// Its score per encoding, 0-10 (what `producerScore` carries).
    pub scores: Vec<u8>,
    /// Encodings (simulcast layers, or 1).
    pub encodings: usize,
}

/// One consumer's stats.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerStats {
    /// The consumer.
    pub consumer_id: ConsumerId,
    /// The consuming peer.
    pub peer_id: PeerId,
    /// The transport it sends on.
    pub transport_id: TransportId,
    /// Its producer.
    pub producer_id: ProducerId,
    /// Audio or video.
    pub kind: MediaKind,
    /// Media packets sent.
    pub packets_sent: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Packets resent in answer to NACKs.
    pub packets_retransmitted: u64,
    /// The fraction lost the receiver last reported, 0-1 (RFC 3550 §6.4.1).
    pub loss: f64,
    /// Round-trip time from the receiver's reports, ms.
    pub rtt_ms: Option<f64>,
    /// Its score, 0-10, and its layers (the same figures as `statsConsumer`).
    #[serde(flatten)]
    pub layers: ConsumerLayerStats,
}

/// One transport's stats.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportStats {
    /// The transport.
    pub transport_id: TransportId,
    /// Its peer.
    pub peer_id: PeerId,
    /// Its room.
    pub room_id: RoomId,
    /// `webrtc` or `plain`.
    pub kind: &'static str,
    /// `connecting` until it can send media (a WebRTC transport once DTLS gave SRTP
    /// keys, a plain one once its remote RTP address is known), then `connected`.
    pub state: &'static str,
    /// Datagrams it dropped, whatever the reason.
    pub dropped_packets: u64,
    /// Of those, datagrams from another address than its remote one (plain transports).
    pub wrong_source_packets: u64,
    /// The send-side bandwidth estimate, bit/s.
    pub estimate_bps: u64,
}

/// What crossed between this worker and the others (issue 16: rooms over several
/// workers; mirrored producers' packets and messages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipeCounts {
    /// Messages handed to other workers.
    pub sent: u64,
    /// Messages received from other workers.
    pub received: u64,
    /// Messages dropped because the queue to another worker was full.
    pub dropped_full: u64,
    /// Messages received for a room or producer no longer here (closed meanwhile).
    pub dropped_stale: u64,
}

/// One room a worker holds a router of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomOnWorker {
    /// The room.
    pub room_id: RoomId,
    /// Its peers with a transport on this worker.
    pub peers: usize,
    /// Their transports.
    pub transports: usize,
    /// Producers of other workers mirrored here.
    pub mirrored_producers: usize,
}

/// Everything one worker published about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStats {
    /// Its index among the workers.
    pub worker: usize,
    /// Its media port (UDP and TCP).
    pub port: u16,
    /// Rooms (routers) it hosts.
    pub rooms: Vec<RoomId>,
    /// The same rooms with what each has here.
    pub room_details: Vec<RoomOnWorker>,
    /// What crossed between it and the other workers.
    pub pipes: PipeCounts,
    /// Its overload shed level (0: nothing shed; issue 16).
    pub shed_level: u8,
    /// Datagrams (and TCP frames) received on its port.
    pub packets_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams (and TCP frames) sent.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// What it dropped, by reason.
    pub dropped: DropCounts,
    /// RTCP feedback.
    pub feedback: FeedbackCounters,
    /// Transports closed because DTLS failed (or the remote closed it).
    pub dtls_failures: u64,
    /// Transports closed because ICE consent was lost too long, or never connected.
    pub ice_failures: u64,
    /// Transports closed because handling one of their datagrams or timers panicked (an
    /// internal error the worker contained).
    pub transport_panics: u64,
    /// Seconds its loop spent working (not waiting in `poll`), since it started.
    pub busy_seconds: f64,
    /// Commands waiting in its queue when it published.
    pub command_queue: usize,
    /// Events waiting for the control plane when it published (its own backlog).
    pub event_backlog: usize,
    /// Its transports.
    pub transports: Vec<TransportStats>,
    /// Its producers.
    pub producers: Vec<ProducerStats>,
    /// Its consumers.
    pub consumers: Vec<ConsumerStats>,
    /// Each transport sending media: its outgoing bandwidth and its consumers' layers.
    pub bandwidth: Vec<TransportBandwidthStats>,
}
