//! The RTP parameters of one consumer (mediasoup `ortc.ts` `getConsumerRtpParameters`,
//! `scalabilityModesUtils.ts`).

use super::codec_match::{CodecKey, is_rtx, match_codecs};
use super::error::{OrtcError, unsupported};
use super::rtp_capabilities::RtpCapabilities;
use super::rtp_parameters::{RtpEncodingParameters, RtpParameters, RtxParameters};
use super::values::ParamValue;

/// The transport-wide congestion control extension (draft-holmer-rmcat-transport-wide-cc).
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// The absolute send time extension (REMB's companion).
pub const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";

/// Spatial and temporal layer counts of a `scalabilityMode` (`L1T3`, `S3T3_KEY`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalabilityMode {
    /// Spatial layers.
    pub spatial_layers: u8,
    /// Temporal layers.
    pub temporal_layers: u8,
    /// K-SVC (`_KEY`).
    pub ksvc: bool,
}

impl ScalabilityMode {
    /// mediasoup's `parseScalabilityMode` (`^[LS]([1-9]\d?)T([1-9]\d?)(_KEY)?`), 1x1 for
    /// anything else.
    pub fn parse(mode: Option<&str>) -> Self {
        Self::try_parse(mode.unwrap_or("")).unwrap_or(ScalabilityMode {
            spatial_layers: 1,
            temporal_layers: 1,
            ksvc: false,
        })
    }

    fn try_parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix(['L', 'S'])?;
        let number = |s: &str| -> Option<(u8, usize)> {
            let n = s.bytes().take(2).take_while(u8::is_ascii_digit).count();
            if n == 0 || s.as_bytes()[0] == b'0' {
                return None;
            }
            Some((s[..n].parse().ok()?, n))
        };
        let (spatial_layers, n) = number(rest)?;
        let rest = rest[n..].strip_prefix('T')?;
        let (temporal_layers, n) = number(rest)?;
        Some(ScalabilityMode {
            spatial_layers,
            temporal_layers,
            ksvc: rest[n..].starts_with("_KEY"),
        })
    }
}

/// `getConsumerRtpParameters` for a non-pipe consumer: the consumable codecs that the
/// device supports (RTX only when `enable_rtx` and its media codec is kept), their
/// feedback as the device lists it (plain NACK dropped without RTX), the header
/// extensions both share, feedback reduced to transport-cc or REMB by which extension is
/// present, and a single encoding with a fresh SSRC (`ssrc`, its RTX at `ssrc + 1`), the
/// producer's layers as `L<encodings>T<temporal>`, and the largest `maxBitrate`.
pub fn consumer_rtp_parameters(
    consumable: &RtpParameters,
    remote: &RtpCapabilities,
    enable_rtx: bool,
    ssrc: u32,
) -> Result<RtpParameters, OrtcError> {
    remote.validate()?;
    let mut codecs = Vec::new();
    for codec in &consumable.codecs {
        if !enable_rtx && is_rtx(&codec.mime_type) {
            continue;
        }
        let Some(cap) = remote
            .codecs
            .iter()
            .find(|cap| match_codecs(CodecKey::from(*cap), CodecKey::from(codec), true).is_some())
        else {
            continue;
        };
        let mut codec = codec.clone();
        codec.rtcp_feedback = cap
            .rtcp_feedback
            .iter()
            .filter(|fb| enable_rtx || fb.kind != "nack" || !fb.parameter.is_empty())
            .cloned()
            .collect();
        codecs.push(codec);
    }
    // Drop RTX codecs whose media codec did not survive.
    let media_pts: Vec<i64> = codecs
        .iter()
        .filter(|c| !is_rtx(&c.mime_type))
        .map(|c| i64::from(c.payload_type))
        .collect();
    codecs.retain(|c| {
        !is_rtx(&c.mime_type)
            || c.parameters
                .get("apt")
                .and_then(ParamValue::as_int)
                .is_some_and(|apt| media_pts.contains(&apt))
    });
    let rtx_supported = codecs.iter().any(|c| is_rtx(&c.mime_type));
    if codecs.first().is_none_or(|c| is_rtx(&c.mime_type)) {
        return Err(unsupported("no compatible media codecs"));
    }
    let header_extensions: Vec<_> = consumable
        .header_extensions
        .iter()
        .filter(|ext| {
            remote
                .header_extensions
                .iter()
                .any(|cap| cap.preferred_id == ext.id && cap.uri == ext.uri)
        })
        .cloned()
        .collect();
    let has = |uri: &str| header_extensions.iter().any(|e| e.uri == uri);
    let drop: &[&str] = if has(TRANSPORT_CC_URI) {
        &["goog-remb"]
    } else if has(ABS_SEND_TIME_URI) {
        &["transport-cc"]
    } else {
        &["transport-cc", "goog-remb"]
    };
    for codec in &mut codecs {
        codec
            .rtcp_feedback
            .retain(|fb| !drop.contains(&fb.kind.as_str()));
    }
    let mut encoding = RtpEncodingParameters {
        ssrc: Some(ssrc),
        rtx: rtx_supported.then(|| RtxParameters {
            ssrc: ssrc.wrapping_add(1),
        }),
        ..Default::default()
    };
    let mut mode = consumable
        .encodings
        .iter()
        .find_map(|e| e.scalability_mode.clone().filter(|m| !m.is_empty()));
    if consumable.encodings.len() > 1 {
        let temporal = ScalabilityMode::parse(mode.as_deref()).temporal_layers;
        mode = Some(format!("L{}T{}", consumable.encodings.len(), temporal));
    }
    encoding.scalability_mode = mode;
    let max_bitrate = consumable
        .encodings
        .iter()
        .filter_map(|e| e.max_bitrate)
        .fold(0.0, f64::max);
    if max_bitrate > 0.0 {
        encoding.max_bitrate = Some(max_bitrate);
    }
    Ok(RtpParameters {
        mid: None,
        codecs,
        header_extensions,
        encodings: vec![encoding],
        rtcp: consumable.rtcp.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scalability_modes() {
        let p = |s| {
            let m = ScalabilityMode::parse(Some(s));
            (m.spatial_layers, m.temporal_layers, m.ksvc)
        };
        assert_eq!(p("L1T3"), (1, 3, false));
        assert_eq!(p("S3T3"), (3, 3, false));
        assert_eq!(p("L3T3_KEY"), (3, 3, true));
        assert_eq!(p("L12T10"), (12, 10, false));
        assert_eq!(p("L0T3"), (1, 1, false));
        assert_eq!(p("X1T3"), (1, 1, false));
        assert_eq!(p("L1T"), (1, 1, false));
        assert_eq!(p(""), (1, 1, false));
        assert_eq!(ScalabilityMode::parse(None).temporal_layers, 1);
    }
}
