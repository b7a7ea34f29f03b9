//! What the media engine answers to a command that succeeded, as typed values. Each type's
//! `Serialize` writes mediasoup v3's wire format (`WebRtcTransportTypes.ts`,
//! `ConsumerTypes.ts`), so the signaling edge turns a reply into the client's JSON without
//! patching it or parsing ids back out of it.

use serde::Serialize;

use crate::ids::{ConsumerId, ProducerId, TransportId};
use crate::ortc::{DtlsParameters, MediaKind, RtpParameters};

/// The answer to a command that succeeded.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineReply {
    /// `createWebRtcTransport`.
    WebRtcTransportCreated(WebRtcTransportInfo),
    /// `createPlainTransport`.
    PlainTransportCreated(PlainTransportInfo),
    /// `restartIce`: the new ICE parameters.
    IceRestarted(IceParameters),
    /// `produce`.
    ProducerCreated(ProducerId),
    /// A consumer (sent to its peer as `newConsumer`).
    ConsumerCreated(ConsumerInfo),
    /// Done, nothing to answer (connect, pause, resume, close).
    Done,
}

/// `{id, iceParameters, iceCandidates, dtlsParameters}` of `createWebRtcTransport`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebRtcTransportInfo {
    /// The transport.
    pub id: TransportId,
    /// The server's ICE-lite credentials.
    pub ice_parameters: IceParameters,
    /// The server's host candidates (UDP preferred, then passive TCP).
    pub ice_candidates: Vec<IceCandidate>,
    /// The server's DTLS role (`auto`) and certificate fingerprints.
    pub dtls_parameters: DtlsParameters,
}

/// `{id, ip, port, rtcpPort}` of `createPlainTransport` (contract section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlainTransportInfo {
    /// The transport.
    pub id: TransportId,
    /// The announced address (as for WebRTC candidates).
    pub ip: String,
    /// The RTP port.
    pub port: u16,
    /// The RTCP port (no rtcp-mux).
    pub rtcp_port: u16,
}

/// `iceParameters` (RFC 8445 §5.3 credentials; the server is ICE-lite, RFC 8445 §2.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IceParameters {
    /// ufrag.
    pub username_fragment: String,
    /// pwd.
    pub password: String,
    /// Always `true`: the server only answers checks.
    pub ice_lite: bool,
}

/// The transport protocol of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IceProtocol {
    /// UDP.
    Udp,
    /// TCP (RFC 6544, passive on the server).
    Tcp,
}

/// One `iceCandidates` entry (mediasoup's `IceCandidate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// `udpcandidate` or `tcpcandidate`.
    pub foundation: &'static str,
    /// RFC 8445 §5.1.2 priority.
    pub priority: u32,
    /// The announced address (IP or host name).
    pub address: String,
    /// The same, under mediasoup's older name.
    pub ip: String,
    /// UDP or TCP.
    pub protocol: IceProtocol,
    /// The worker's media port.
    pub port: u16,
    /// Always `host`.
    #[serde(rename = "type")]
    pub candidate_type: &'static str,
    /// `passive` for TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_type: Option<&'static str>,
}

/// How a consumer forwards its producer (`newConsumer`'s `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerType {
    /// One stream.
    Simple,
    /// Several encodings; one is forwarded at a time.
    Simulcast,
    /// One encoding with spatial and temporal layers (VP9 SVC); the layers up to the
    /// chosen ones are forwarded.
    Svc,
}

/// A created consumer: `{id, kind, rtpParameters, type, producerPaused}` of `newConsumer`
/// (the signaling edge adds `peerId`, `producerId` and `appData`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerInfo {
    /// The consumer.
    pub id: ConsumerId,
    /// Audio or video.
    pub kind: MediaKind,
    /// What the consuming client receives.
    pub rtp_parameters: RtpParameters,
    /// Simple, simulcast or SVC.
    #[serde(rename = "type")]
    pub consumer_type: ConsumerType,
    /// Whether its producer is paused.
    pub producer_paused: bool,
}
