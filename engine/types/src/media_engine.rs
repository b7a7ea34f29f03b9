//! The interface between the control plane (rooms and signaling) and the media engine.
//!
//! The control plane never calls into media workers directly: it submits an
//! [`EngineCommand`] and later drains [`EngineEvent`]s. A command that expects an answer
//! carries a [`RequestTag`]; its answer is an [`EngineEvent::Reply`] with the same tag, on
//! a later call of [`MediaEngine::poll_event`] (possibly the very next one). This shape fits
//! worker threads fed through lock-free queues (the control loop is woken by a
//! `mio::Waker` when events are ready) as well as the in-process
//! [`UnavailableEngine`](crate::unavailable::UnavailableEngine) that answers every media
//! request with a clear failure.

use serde::Serialize;

use crate::ids::{ConsumerId, PeerId, ProducerId, RoomId, TransportId};
use crate::ortc::{DtlsParameters, MediaKind, OrtcError, RtpCapabilities, RtpParameters};
pub use crate::replies::EngineReply;

/// What a producer sends (`produce`'s `appData.source`, contract section 5); the
/// bandwidth allocation serves screen shares before webcams (issue 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProducerSource {
    /// Microphone.
    Mic,
    /// Camera.
    #[default]
    Webcam,
    /// Screen share.
    Screen,
}

impl ProducerSource {
    /// The usual source of a producer of `kind`: the microphone or the camera.
    pub fn of_kind(kind: MediaKind) -> Self {
        match kind {
            MediaKind::Audio => ProducerSource::Mic,
            MediaKind::Video => ProducerSource::Webcam,
        }
    }
}

/// Pairs a command with its reply. Chosen by the control plane, echoed by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestTag(pub u64);

/// Why the engine refused a request its rules or its state do not allow (the client's
/// parameters were well-formed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The transport closed meanwhile.
    #[error("transport closed")]
    TransportClosed,
    /// The transport carries its limit of producers already.
    #[error("too many producers on this transport")]
    TooManyProducers,
    /// The transport carries its limit of consumers already.
    #[error("too many consumers on this transport")]
    TooManyConsumers,
    /// The consuming device cannot receive the producer's codecs.
    #[error("the device cannot receive this producer's codecs")]
    CannotConsume,
    /// Another producer of the transport uses this SSRC.
    #[error("ssrc {0} already in use")]
    SsrcInUse(u32),
    /// Another producer of the transport uses this MID.
    #[error("mid {0} already in use")]
    MidInUse(String),
    /// `connectPlainTransport` named a WebRTC transport.
    #[error("not a plain transport")]
    NotAPlainTransport,
    /// The room closed meanwhile.
    #[error("the room is closed")]
    RoomClosed,
    /// A mirror of a producer that exists on this worker already.
    #[error("the producer exists here")]
    ProducerExists,
    /// The command named a peer of which nothing exists on the worker.
    #[error("nothing of this peer exists")]
    NothingOfThisPeer,
    /// A worker did not answer in time (a test harness's wait).
    #[error("no reply from the worker in time")]
    NoReply,
}

/// Why the engine could not do what was asked. Its `Display` text goes into the failure
/// ack the client sees (contract section 4: "improvement: say why in the message").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No media engine is running in this server build.
    #[error("media is not available yet on this server")]
    Unavailable,
    /// The transport does not exist (or was closed).
    #[error("transport {0} not found")]
    TransportNotFound(TransportId),
    /// The producer does not exist (or was closed).
    #[error("producer {0} not found")]
    ProducerNotFound(ProducerId),
    /// The consumer does not exist (or was closed).
    #[error("consumer {0} not found")]
    ConsumerNotFound(ConsumerId),
    /// Parameters the client sent were refused by the ortc rules; the source says which.
    #[error("invalid parameters: {0}")]
    InvalidParameters(#[from] OrtcError),
    /// A request the engine's own limits or state refuse (too many producers on a
    /// transport, an SSRC or MID already in use, ...).
    #[error("invalid parameters: {0}")]
    Refused(Refusal),
    /// The transport refused the operation (its DTLS setup or ICE restart); the source is the
    /// transport's own error.
    #[error("transport: {0}")]
    Transport(#[source] ErrorSource),
    /// The engine is overloaded (its command queue is full).
    #[error("media engine is busy, try again")]
    Busy,
    /// No UDP ports could be bound for a plain RTP transport (contract section 1: the
    /// range 40000-49999), or the worker hosts as many as it may.
    #[error("no ports free for a plain RTP transport")]
    PlainTransportUnavailable,
    /// The media worker hosting the room failed before answering; the room's media
    /// starts again on its replacement (the client gets `roomReady` again).
    #[error("the media worker of this room failed; its media is starting again")]
    WorkerFailed,
}

/// An error of the engine's own layers (transport, DTLS), kept whole behind the
/// [`EngineError`] that carries it across the crate boundary: `source()` leads to it, and
/// two are equal when they say the same.
#[derive(Debug, Clone)]
pub struct ErrorSource(pub std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl ErrorSource {
    /// Wraps an error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(error))
    }
}

impl std::fmt::Display for ErrorSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for ErrorSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for ErrorSource {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for ErrorSource {}

/// A request of the control plane to the media engine.
#[derive(Debug, Clone)]
pub enum EngineCommand {
    /// Prepare a router for a room (contract section 6: a room lives on one or more routers).
    CreateRouter {
        /// The room.
        room: RoomId,
    },
    /// Close every router, transport, producer and consumer of the room.
    CloseRouter {
        /// The room.
        room: RoomId,
    },
    /// `createWebRtcTransport`: answer with `{id, iceParameters, iceCandidates, dtlsParameters}`.
    CreateWebRtcTransport {
        /// Reply tag.
        tag: RequestTag,
        /// The room.
        room: RoomId,
        /// The owning peer.
        peer: PeerId,
        /// Offer only TCP candidates.
        force_tcp: bool,
        /// The client will produce on it.
        producing: bool,
        /// The client will consume on it.
        consuming: bool,
    },
    /// `connectWebRtcTransport`: answer with nothing.
    ConnectWebRtcTransport {
        /// Reply tag.
        tag: RequestTag,
        /// The owning peer.
        peer: PeerId,
        /// The transport.
        transport: TransportId,
        /// The client's DTLS role and fingerprints.
        dtls_parameters: DtlsParameters,
    },
    /// `restartIce`: answer with new `iceParameters`.
    RestartIce {
        /// Reply tag.
        tag: RequestTag,
        /// The owning peer.
        peer: PeerId,
        /// The transport.
        transport: TransportId,
    },
    /// `createPlainTransport`: answer with `{id, ip, port, rtcpPort}`.
    CreatePlainTransport {
        /// Reply tag.
        tag: RequestTag,
        /// The room.
        room: RoomId,
        /// The owning peer.
        peer: PeerId,
        /// The client will produce on it (comedia).
        producing: bool,
        /// The client will consume on it.
        consuming: bool,
    },
    /// `connectPlainTransport`: answer with nothing.
    ConnectPlainTransport {
        /// Reply tag.
        tag: RequestTag,
        /// The owning peer.
        peer: PeerId,
        /// The transport.
        transport: TransportId,
        /// Where to send RTP.
        ip: std::net::IpAddr,
        /// RTP port.
        port: u16,
        /// RTCP port.
        rtcp_port: u16,
    },
    /// `produce`: answer with `{id}`.
    Produce {
        /// Reply tag.
        tag: RequestTag,
        /// The owning peer.
        peer: PeerId,
        /// The transport to receive on.
        transport: TransportId,
        /// Audio or video.
        kind: MediaKind,
        /// The sender's RTP parameters.
        rtp_parameters: RtpParameters,
        /// What it sends.
        source: ProducerSource,
    },
    /// Create a consumer of `producer` on the peer's consuming transport, created paused
    /// when `paused`; answer with the `newConsumer` data
    /// (`{id, kind, rtpParameters, type, producerPaused}`).
    Consume {
        /// Reply tag.
        tag: RequestTag,
        /// The consuming peer.
        peer: PeerId,
        /// The consuming transport.
        transport: TransportId,
        /// What to consume.
        producer: ProducerId,
        /// The consuming device's capabilities (from `join`).
        rtp_capabilities: RtpCapabilities,
        /// Start paused (video: resumed when the client acks `newConsumer`).
        paused: bool,
    },
    /// `closeProducer`: close a producer of `peer` (its consumers close too:
    /// `consumerClosed` to their peers); answer with nothing.
    CloseProducer {
        /// Reply tag.
        tag: RequestTag,
        /// The owning peer (the engine refuses another peer's producer).
        peer: PeerId,
        /// The producer.
        producer: ProducerId,
    },
    /// Pause (`true`) or resume (`false`) a producer; answer with nothing.
    SetProducerPaused {
        /// Reply tag.
        tag: RequestTag,
        /// The owning peer.
        peer: PeerId,
        /// The producer.
        producer: ProducerId,
        /// Paused or not.
        paused: bool,
    },
    /// Pause (`true`) or resume (`false`) a consumer; answer with nothing. Resuming
    /// requests a key frame from the producer.
    SetConsumerPaused {
        /// Reply tag.
        tag: RequestTag,
        /// The consuming peer.
        peer: PeerId,
        /// The consumer.
        consumer: ConsumerId,
        /// Paused or not.
        paused: bool,
    },
    /// Close a consumer (the client never acked its `newConsumer`).
    CloseConsumer {
        /// The consuming peer.
        peer: PeerId,
        /// The consumer.
        consumer: ConsumerId,
    },
    /// Close every producer of a peer (PUBLISHER taken away); its transports stay.
    CloseProducersOf {
        /// The peer.
        peer: PeerId,
    },
    /// Close every transport of a peer (and so its producers and consumers).
    ClosePeer {
        /// The room.
        room: RoomId,
        /// The peer.
        peer: PeerId,
    },
}

impl EngineCommand {
    /// The error for a command whose transport, producer or consumer does not exist.
    pub fn not_found(&self) -> EngineError {
        match self {
            EngineCommand::CloseProducer { producer, .. }
            | EngineCommand::SetProducerPaused { producer, .. } => {
                EngineError::ProducerNotFound(*producer)
            }
            EngineCommand::SetConsumerPaused { consumer, .. }
            | EngineCommand::CloseConsumer { consumer, .. } => {
                EngineError::ConsumerNotFound(*consumer)
            }
            EngineCommand::ConnectWebRtcTransport { transport, .. }
            | EngineCommand::RestartIce { transport, .. }
            | EngineCommand::ConnectPlainTransport { transport, .. }
            | EngineCommand::Produce { transport, .. }
            | EngineCommand::Consume { transport, .. } => {
                EngineError::TransportNotFound(*transport)
            }
            _ => EngineError::Refused(Refusal::NothingOfThisPeer),
        }
    }

    /// The tag of a command that expects an answer.
    pub fn tag(&self) -> Option<RequestTag> {
        match self {
            EngineCommand::CreateWebRtcTransport { tag, .. }
            | EngineCommand::ConnectWebRtcTransport { tag, .. }
            | EngineCommand::RestartIce { tag, .. }
            | EngineCommand::CreatePlainTransport { tag, .. }
            | EngineCommand::ConnectPlainTransport { tag, .. }
            | EngineCommand::Produce { tag, .. }
            | EngineCommand::Consume { tag, .. }
            | EngineCommand::CloseProducer { tag, .. }
            | EngineCommand::SetProducerPaused { tag, .. }
            | EngineCommand::SetConsumerPaused { tag, .. } => Some(*tag),
            EngineCommand::CreateRouter { .. }
            | EngineCommand::CloseRouter { .. }
            | EngineCommand::CloseConsumer { .. }
            | EngineCommand::CloseProducersOf { .. }
            | EngineCommand::ClosePeer { .. } => None,
        }
    }
}

/// Something the media engine reports to the control plane.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// The answer to a tagged command.
    Reply {
        /// The command's tag.
        tag: RequestTag,
        /// What was done, or why it failed.
        result: Result<EngineReply, EngineError>,
    },
    /// A consumer closed because its producer closed (`consumerClosed`).
    ConsumerClosed {
        /// The consuming peer.
        peer: PeerId,
        /// The consumer.
        consumer: ConsumerId,
    },
    /// A consumer's producer was paused (`true`) or resumed (`consumerPaused`/`consumerResumed`).
    ConsumerProducerPaused {
        /// The consuming peer.
        peer: PeerId,
        /// The consumer.
        consumer: ConsumerId,
        /// Paused or resumed.
        paused: bool,
    },
    /// `consumerLayersChanged {consumerId, layers}`.
    ConsumerLayersChanged {
        /// The consuming peer.
        peer: PeerId,
        /// The consumer.
        consumer: ConsumerId,
        /// `{spatialLayer, temporalLayer}` or `null`.
        layers: Option<ConsumerLayers>,
    },
    /// `consumerScoreChanged {consumerId, score}`.
    ConsumerScoreChanged {
        /// The consuming peer.
        peer: PeerId,
        /// The consumer.
        consumer: ConsumerId,
        /// The score object.
        score: ConsumerScore,
    },
    /// A transport closed by itself (ICE consent timeout, DTLS failure, never connected),
    /// with the producers and consumers it carried. The consumers of those producers on
    /// other transports are reported closed on their own ([`EngineEvent::ConsumerClosed`]).
    TransportClosed {
        /// The owning peer.
        peer: PeerId,
        /// The transport.
        transport: TransportId,
        /// Its producers, closed with it.
        producers: Vec<ProducerId>,
        /// Its consumers, closed with it.
        consumers: Vec<ConsumerId>,
    },
    /// A media worker failed (its loop panicked or returned an error): every router,
    /// transport, producer and consumer it hosted is gone, and no reply to a command sent
    /// to it will come. Its rooms already have an empty router on the worker replacing it
    /// (commands for them wait until it runs): the control plane restarts their media.
    WorkerFailed {
        /// The worker's index.
        worker: usize,
        /// The rooms it hosted whole (their media start again).
        rooms: Vec<RoomId>,
        /// Rooms spread over several workers (issue 16) that had a router on it, with the
        /// peers that were on that router: only their media start again; the room's
        /// peers on other workers keep theirs (the failed worker's producers close for
        /// them as `consumerClosed`).
        spread_peers: Vec<(RoomId, Vec<PeerId>)>,
        /// Why it failed, for the log.
        reason: String,
    },
    /// The replacement of a failed worker runs (on the same port).
    WorkerRestarted {
        /// The worker's index.
        worker: usize,
        /// Its media port.
        port: u16,
    },
}

/// Whether the media engine can serve every room (`GET /meetmedia/api/health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineHealth {
    /// Every media worker runs.
    Healthy,
    /// Something is wrong (a worker failed and its replacement is not running yet): why.
    Degraded(String),
}

/// A simulcast or SVC consumer's current layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerLayers {
    /// Spatial layer index.
    pub spatial_layer: u8,
    /// Temporal layer index.
    pub temporal_layer: u8,
}

/// `{score, producerScore, producerScores}` of `consumerScoreChanged`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerScore {
    /// Score of the outgoing stream, 0-10.
    pub score: u8,
    /// Score of the producer's current stream, 0-10.
    pub producer_score: u8,
    /// Scores of every stream of the producer.
    pub producer_scores: Vec<u8>,
}

/// A media engine, seen from the control plane.
pub trait MediaEngine: Send {
    /// The RTP capabilities every router offers (contract section 2), in mediasoup v3's
    /// format; the answer to `getRouterRtpCapabilities`.
    fn router_rtp_capabilities(&self) -> &RtpCapabilities;

    /// Queues a command. Never blocks; a command that cannot be queued is answered with
    /// [`EngineError::Busy`] through [`MediaEngine::poll_event`].
    fn submit(&mut self, command: EngineCommand);

    /// The next event, if any. Call until `None` after every `submit` and every wake-up.
    fn poll_event(&mut self) -> Option<EngineEvent>;

    /// Whether the engine serves every room now.
    fn health(&self) -> EngineHealth {
        EngineHealth::Healthy
    }

    /// Every transport's outgoing bandwidth and its consumers' layers, as the media
    /// workers last published them (about once a second).
    fn bandwidth_stats(&self) -> Vec<crate::bandwidth_stats::TransportBandwidthStats> {
        Vec::new()
    }

    /// What every running media worker last published about itself (about once a
    /// second): `/metrics`, `GET /meetmedia/api/stats` and the console's `dumpWorkers`.
    fn worker_stats(&self) -> Vec<crate::worker_stats::WorkerStats> {
        Vec::new()
    }

    /// Events waiting to be polled (`/metrics`: the control loop's input queue).
    fn pending_events(&self) -> usize {
        0
    }
}
