//! `RtpCapabilities` (mediasoup `RtpParameters.ts`): what a router or a device can send
//! and receive.

use serde::{Deserialize, Serialize};

use super::error::{OrtcError, invalid};
use super::values::{MediaKind, Parameters, RtcpFeedback};

/// Direction of a header extension in the router's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Both ways.
    Sendrecv,
    /// Only towards the router.
    Recvonly,
    /// Only from the router.
    Sendonly,
    /// Neither.
    Inactive,
}

/// A codec in capabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCodecCapability {
    /// Audio or video.
    pub kind: MediaKind,
    /// `audio/opus`, `video/VP8`, `video/rtx`, ...
    pub mime_type: String,
    /// The payload type the router or device prefers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_payload_type: Option<u8>,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    /// Codec parameters.
    #[serde(default)]
    pub parameters: Parameters,
    /// RTCP feedback.
    #[serde(default)]
    pub rtcp_feedback: Vec<RtcpFeedback>,
}

/// A header extension in capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtension {
    /// Audio or video.
    pub kind: MediaKind,
    /// The extension's URI (RFC 8285).
    pub uri: String,
    /// The id the router prefers.
    pub preferred_id: u8,
    /// Encrypted (RFC 6904); never used.
    #[serde(default)]
    pub preferred_encrypt: bool,
    /// Direction, absent in a device's capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

/// Capabilities of a router or a device.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCapabilities {
    /// Codecs.
    #[serde(default)]
    pub codecs: Vec<RtpCodecCapability>,
    /// Header extensions.
    #[serde(default)]
    pub header_extensions: Vec<RtpHeaderExtension>,
}

/// Codecs and extensions a device may list (bounds what a client makes us keep).
const MAX_CAPABILITY_ENTRIES: usize = 256;

impl RtpCapabilities {
    /// mediasoup's `validateRtpCapabilities`, on top of what the types already enforce.
    pub fn validate(&self) -> Result<(), OrtcError> {
        if self.codecs.len() > MAX_CAPABILITY_ENTRIES
            || self.header_extensions.len() > MAX_CAPABILITY_ENTRIES
        {
            return Err(invalid("too many codecs or header extensions"));
        }
        for c in &self.codecs {
            let (kind, _) = super::rtp_parameters::split_mime(&c.mime_type)?;
            if kind != c.kind {
                return Err(invalid(format!(
                    "codec {} has kind {:?}",
                    c.mime_type, c.kind
                )));
            }
            if c.clock_rate == 0 {
                return Err(invalid("invalid codec.clockRate"));
            }
            let is_rtx = c.mime_type.eq_ignore_ascii_case("video/rtx")
                || c.mime_type.eq_ignore_ascii_case("audio/rtx");
            if is_rtx && c.parameters.get("apt").and_then(|v| v.as_int()).is_none() {
                return Err(invalid("rtx codec without a numeric apt parameter"));
            }
        }
        for e in &self.header_extensions {
            if e.uri.is_empty() {
                return Err(invalid("missing ext.uri"));
            }
        }
        Ok(())
    }
}
