//! `RtpParameters` (mediasoup `RtpParameters.ts`): what a producer sends or a consumer
//! receives, and mediasoup's `validateRtpParameters` rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::{OrtcError, invalid};
use super::values::{MediaKind, ParamValue, Parameters, RtcpFeedback};

/// A negotiated codec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCodecParameters {
    /// `audio/opus`, `video/VP8`, `video/rtx`, ...
    pub mime_type: String,
    /// Payload type.
    pub payload_type: u8,
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

/// A negotiated header extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtensionParameters {
    /// The extension's URI.
    pub uri: String,
    /// Its id in packets (1-14 one-byte, up to 255 two-byte, RFC 8285).
    pub id: u8,
    /// Encrypted (RFC 6904).
    #[serde(default)]
    pub encrypt: bool,
    /// Parameters.
    #[serde(default)]
    pub parameters: Parameters,
}

/// The RTX stream of an encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtxParameters {
    /// Its SSRC.
    pub ssrc: u32,
}

/// One encoding (a simulcast layer, or the single stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RtpEncodingParameters {
    /// SSRC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    /// RID (RFC 8851).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Codec of this encoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec_payload_type: Option<u8>,
    /// Its RTX stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtx: Option<RtxParameters>,
    /// Discontinuous transmission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtx: Option<bool>,
    /// `L1T3`, `S3T3`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalability_mode: Option<String>,
    /// Resolution divider of a simulcast layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_resolution_down_by: Option<f64>,
    /// Bitrate cap in bit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<f64>,
    /// Other fields a client sends (`active`, `maxFramerate`, `priority`, ...), kept as
    /// they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// RTCP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RtcpParameters {
    /// CNAME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    /// Reduced-size RTCP (RFC 5506).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduced_size: Option<bool>,
    /// RTCP multiplexed with RTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mux: Option<bool>,
}

/// The RTP parameters of a producer or consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RtpParameters {
    /// The MID (BUNDLE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    /// Codecs, the media codec first.
    pub codecs: Vec<RtpCodecParameters>,
    /// Header extensions.
    #[serde(default)]
    pub header_extensions: Vec<RtpHeaderExtensionParameters>,
    /// Encodings.
    #[serde(default)]
    pub encodings: Vec<RtpEncodingParameters>,
    /// RTCP.
    #[serde(default)]
    pub rtcp: RtcpParameters,
}

/// Entries a client may send in one list (codecs, extensions, encodings).
const MAX_ENTRIES: usize = 64;
/// Longest MID, RID or CNAME accepted.
const MAX_ID_LEN: usize = 256;

/// Splits `audio/opus` into its kind and subtype (`^(audio|video)/(.+)`, any case).
pub(crate) fn split_mime(mime: &str) -> Result<(MediaKind, &str), OrtcError> {
    let (kind, sub) = mime
        .split_once('/')
        .ok_or_else(|| invalid(format!("invalid codec.mimeType {mime:?}")))?;
    let kind = if kind.eq_ignore_ascii_case("audio") {
        MediaKind::Audio
    } else if kind.eq_ignore_ascii_case("video") {
        MediaKind::Video
    } else {
        return Err(invalid(format!("invalid codec.mimeType {mime:?}")));
    };
    if sub.is_empty() {
        return Err(invalid(format!("invalid codec.mimeType {mime:?}")));
    }
    Ok((kind, sub))
}

impl RtpCodecParameters {
    /// Whether it negotiated generic NACK (`{type: "nack"}` without a parameter, RFC 4585
    /// §4.2): retransmissions may be asked for.
    pub fn has_nack(&self) -> bool {
        self.rtcp_feedback
            .iter()
            .any(|f| f.kind == "nack" && f.parameter.is_empty())
    }

    /// Whether the sender's Opus may add in-band FEC (`useinbandfec=1`, RFC 7587 §6.1):
    /// the loss it is told about turns it on, so its receivers' loss is worth reporting.
    pub fn opus_in_band_fec(&self) -> bool {
        self.mime_type.eq_ignore_ascii_case("audio/opus")
            && self
                .parameters
                .get("useinbandfec")
                .and_then(ParamValue::as_int)
                == Some(1)
    }

    /// Whether this is an RTX codec.
    pub fn is_rtx(&self) -> bool {
        self.mime_type
            .split_once('/')
            .is_some_and(|(_, s)| s.eq_ignore_ascii_case("rtx"))
    }
}

impl RtpParameters {
    /// The id of the header extension `uri`, when negotiated.
    pub fn header_extension_id(&self, uri: &str) -> Option<u8> {
        self.header_extensions
            .iter()
            .find(|e| e.uri == uri)
            .map(|e| e.id)
    }

    /// mediasoup's `validateRtpParameters`, on top of what the types enforce (numbers,
    /// strings and booleans where they belong), plus bounds.
    pub fn validate(&self) -> Result<(), OrtcError> {
        if self.mid.as_ref().is_some_and(|m| m.len() > MAX_ID_LEN) {
            return Err(invalid("params.mid is too long"));
        }
        if self.codecs.len() > MAX_ENTRIES
            || self.header_extensions.len() > MAX_ENTRIES
            || self.encodings.len() > MAX_ENTRIES
        {
            return Err(invalid("too many codecs, header extensions or encodings"));
        }
        let mut pts = std::collections::HashSet::new();
        for c in &self.codecs {
            split_mime(&c.mime_type)?;
            if c.payload_type > 127 {
                return Err(invalid(format!(
                    "invalid codec.payloadType {}",
                    c.payload_type
                )));
            }
            if !pts.insert(c.payload_type) {
                return Err(invalid(format!(
                    "duplicated codec.payloadType {}",
                    c.payload_type
                )));
            }
            if c.clock_rate == 0 {
                return Err(invalid("invalid codec.clockRate"));
            }
            if c.is_rtx() {
                let apt = c
                    .parameters
                    .get("apt")
                    .ok_or_else(|| invalid("rtx codec without an apt parameter"))?;
                if apt.as_int().is_none() {
                    return Err(invalid("invalid codec apt parameter"));
                }
            }
        }
        for e in &self.header_extensions {
            if e.uri.is_empty() {
                return Err(invalid("missing ext.uri"));
            }
            if e.id == 0 {
                return Err(invalid("invalid ext.id 0"));
            }
        }
        for enc in &self.encodings {
            if enc
                .rid
                .as_ref()
                .is_some_and(|r| r.is_empty() || r.len() > MAX_ID_LEN)
            {
                return Err(invalid("invalid encoding.rid"));
            }
            if enc.scalability_mode.as_ref().is_some_and(|s| s.len() > 16) {
                return Err(invalid("invalid encoding.scalabilityMode"));
            }
        }
        if self
            .rtcp
            .cname
            .as_ref()
            .is_some_and(|c| c.len() > MAX_ID_LEN)
        {
            return Err(invalid("invalid rtcp.cname"));
        }
        Ok(())
    }
}
