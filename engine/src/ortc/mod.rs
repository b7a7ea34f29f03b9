//! PLACEHOLDER (being replaced): mediasoup v3 RTP parameter formats and ortc rules.
use serde::{Deserialize, Serialize};

/// Kind of media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// Router RTP capabilities.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RtpCapabilities {}

/// Producer/consumer RTP parameters.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RtpParameters {}

/// DTLS parameters.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DtlsParameters {}

/// The capabilities of every router (contract section 2).
pub fn router_rtp_capabilities() -> RtpCapabilities {
    RtpCapabilities {}
}
