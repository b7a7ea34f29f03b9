//! The router's RTP capabilities: what mediasoup v3's `generateRouterRtpCapabilities`
//! makes of the contract's media codecs (section 2), from the codecs and header
//! extensions mediasoup supports (`supportedRtpCapabilities.ts`). Checked against the
//! output of mediasoup itself by `engine/tests/router_capabilities.rs`.

use std::sync::OnceLock;

use super::error::{OrtcError, invalid};
use super::rtp_capabilities::{Direction, RtpCapabilities, RtpCodecCapability, RtpHeaderExtension};
use super::values::{MediaKind, ParamValue, Parameters, RtcpFeedback};

/// A codec the router is configured to offer.
#[derive(Debug, Clone)]
pub struct RouterCodec {
    /// Audio or video.
    pub kind: MediaKind,
    /// Mime type (any case).
    pub mime_type: &'static str,
    /// Clock rate.
    pub clock_rate: u32,
    /// Audio channels.
    pub channels: Option<u8>,
    /// Parameters.
    pub parameters: Vec<(&'static str, ParamValue)>,
}

/// Payload types handed out in order (mediasoup's `DynamicPayloadTypes`).
const DYNAMIC_PAYLOAD_TYPES: &[u8] = &[
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118,
    119, 120, 121, 122, 123, 124, 125, 126, 127, 96, 97, 98, 99,
];

/// The codecs of contract section 2, in its order.
pub fn contract_media_codecs() -> Vec<RouterCodec> {
    let h264 = |profile: &'static str| RouterCodec {
        kind: MediaKind::Video,
        mime_type: "video/H264",
        clock_rate: 90000,
        channels: None,
        parameters: vec![
            ("packetization-mode", 1.into()),
            ("profile-level-id", profile.into()),
            ("level-asymmetry-allowed", 1.into()),
            ("x-google-start-bitrate", 1000.into()),
        ],
    };
    vec![
        RouterCodec {
            kind: MediaKind::Audio,
            mime_type: "audio/opus",
            clock_rate: 48000,
            channels: Some(2),
            parameters: vec![],
        },
        RouterCodec {
            kind: MediaKind::Video,
            mime_type: "video/VP8",
            clock_rate: 90000,
            channels: None,
            parameters: vec![("x-google-start-bitrate", 1000.into())],
        },
        RouterCodec {
            kind: MediaKind::Video,
            mime_type: "video/VP9",
            clock_rate: 90000,
            channels: None,
            parameters: vec![
                ("profile-id", 2.into()),
                ("x-google-start-bitrate", 1000.into()),
            ],
        },
        h264("4d0032"),
        h264("42e01f"),
    ]
}

/// Supported codecs: canonical mime type, kind, clock rate, and the feedback mediasoup
/// gives them.
fn supported(
    kind: MediaKind,
    mime: &str,
    clock_rate: u32,
) -> Option<(&'static str, Vec<RtcpFeedback>)> {
    let video_fb = || {
        vec![
            RtcpFeedback::new("nack", ""),
            RtcpFeedback::new("nack", "pli"),
            RtcpFeedback::new("ccm", "fir"),
            RtcpFeedback::new("goog-remb", ""),
            RtcpFeedback::new("transport-cc", ""),
        ]
    };
    let audio_fb = || {
        vec![
            RtcpFeedback::new("nack", ""),
            RtcpFeedback::new("transport-cc", ""),
        ]
    };
    let sub = mime.split_once('/').map(|(_, s)| s.to_ascii_lowercase())?;
    match (kind, sub.as_str(), clock_rate) {
        (MediaKind::Audio, "opus", 48000) => Some(("audio/opus", audio_fb())),
        (MediaKind::Video, "vp8", 90000) => Some(("video/VP8", video_fb())),
        (MediaKind::Video, "vp9", 90000) => Some(("video/VP9", video_fb())),
        (MediaKind::Video, "h264", 90000) => Some(("video/H264", video_fb())),
        (MediaKind::Video, "av1", 90000) => Some(("video/AV1", video_fb())),
        _ => None,
    }
}

fn ext(kind: MediaKind, uri: &str, id: u8, direction: Direction) -> RtpHeaderExtension {
    RtpHeaderExtension {
        kind,
        uri: uri.to_owned(),
        preferred_id: id,
        preferred_encrypt: false,
        direction: Some(direction),
    }
}

/// The header extensions mediasoup supports, in its order.
fn supported_header_extensions() -> Vec<RtpHeaderExtension> {
    use Direction::{Recvonly, Sendrecv};
    use MediaKind::{Audio, Video};
    const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
    const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
    const TWCC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    const ABS_CAPTURE: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
    const PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
    vec![
        ext(Audio, MID, 1, Sendrecv),
        ext(Video, MID, 1, Sendrecv),
        ext(
            Video,
            "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            2,
            Recvonly,
        ),
        ext(
            Video,
            "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
            3,
            Recvonly,
        ),
        ext(Audio, ABS_SEND_TIME, 4, Sendrecv),
        ext(Video, ABS_SEND_TIME, 4, Sendrecv),
        ext(Audio, TWCC, 5, Recvonly),
        ext(Video, TWCC, 5, Sendrecv),
        ext(
            Video,
            "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
            8,
            Recvonly,
        ),
        ext(
            Audio,
            "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            10,
            Sendrecv,
        ),
        ext(Video, "urn:3gpp:video-orientation", 11, Sendrecv),
        ext(Video, "urn:ietf:params:rtp-hdrext:toffset", 12, Sendrecv),
        ext(Audio, ABS_CAPTURE, 13, Sendrecv),
        ext(Video, ABS_CAPTURE, 13, Sendrecv),
        ext(Audio, PLAYOUT_DELAY, 14, Sendrecv),
        ext(Video, PLAYOUT_DELAY, 14, Sendrecv),
    ]
}

/// `generateRouterRtpCapabilities`: each configured codec matched against the supported
/// ones, given the next dynamic payload type, and (video) followed by its RTX codec.
pub fn generate_router_rtp_capabilities(
    media_codecs: &[RouterCodec],
) -> Result<RtpCapabilities, OrtcError> {
    let mut pts = DYNAMIC_PAYLOAD_TYPES.iter().copied();
    let mut codecs = Vec::new();
    for mc in media_codecs {
        let (mime, feedback) =
            supported(mc.kind, mc.mime_type, mc.clock_rate).ok_or_else(|| {
                invalid(format!(
                    "media codec not supported [mimeType:{}]",
                    mc.mime_type
                ))
            })?;
        let pt = pts
            .next()
            .ok_or_else(|| invalid("cannot allocate more dynamic codec payload types"))?;
        let parameters: Parameters = mc
            .parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        codecs.push(RtpCodecCapability {
            kind: mc.kind,
            mime_type: mime.to_owned(),
            preferred_payload_type: Some(pt),
            clock_rate: mc.clock_rate,
            channels: match mc.kind {
                MediaKind::Audio => Some(mc.channels.unwrap_or(1)),
                MediaKind::Video => None,
            },
            parameters,
            rtcp_feedback: feedback,
        });
        if mc.kind == MediaKind::Video {
            let rtx_pt = pts
                .next()
                .ok_or_else(|| invalid("cannot allocate more dynamic codec payload types"))?;
            let mut parameters = Parameters::new();
            parameters.insert("apt".into(), ParamValue::Int(i64::from(pt)));
            codecs.push(RtpCodecCapability {
                kind: MediaKind::Video,
                mime_type: "video/rtx".into(),
                preferred_payload_type: Some(rtx_pt),
                clock_rate: mc.clock_rate,
                channels: None,
                parameters,
                rtcp_feedback: vec![],
            });
        }
    }
    Ok(RtpCapabilities {
        codecs,
        header_extensions: supported_header_extensions(),
    })
}

/// The capabilities of every router: the contract's codecs (section 2).
pub fn router_rtp_capabilities() -> RtpCapabilities {
    static CAPS: OnceLock<RtpCapabilities> = OnceLock::new();
    CAPS.get_or_init(|| {
        // The contract's codec list is fixed and supported: this cannot fail.
        generate_router_rtp_capabilities(&contract_media_codecs())
            .expect("the contract's codecs are supported")
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_codec_is_refused() {
        let codecs = vec![RouterCodec {
            kind: MediaKind::Audio,
            mime_type: "audio/speex",
            clock_rate: 8000,
            channels: None,
            parameters: vec![],
        }];
        assert!(generate_router_rtp_capabilities(&codecs).is_err());
    }

    #[test]
    fn rtx_follows_each_video_codec() {
        let caps = router_rtp_capabilities();
        let pts: Vec<_> = caps
            .codecs
            .iter()
            .map(|c| (c.mime_type.as_str(), c.preferred_payload_type))
            .collect();
        assert_eq!(pts[0], ("audio/opus", Some(100)));
        assert_eq!(pts[1], ("video/VP8", Some(101)));
        assert_eq!(pts[2], ("video/rtx", Some(102)));
        assert_eq!(caps.codecs[2].parameters["apt"], ParamValue::Int(101));
        assert_eq!(caps.codecs.len(), 9);
    }
}
