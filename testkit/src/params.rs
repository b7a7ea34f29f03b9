//! `rtpParameters` of producers as mediasoup-client sends them for Chrome (VP8 with RTX,
//! simulcast by RID, Opus), with the header extension ids of [`crate::packets::Ext`],
//! and [`Media`], the two kinds of stream the benches send.

use kolabmeet_engine::ortc::{MediaKind, RtpParameters};
use serde_json::{Value, json};

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const ABS_SEND_TIME_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
/// The transport-wide congestion control extension (transport-cc feedback).
pub const TRANSPORT_CC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// VP8 (payload type 96, with NACK, PLI and FIR feedback) and its RTX (97), as Chrome
/// sends them through mediasoup-client.
pub fn vp8_rtx_codecs() -> Value {
    let fb = json!([{ "type": "nack" }, { "type": "nack", "parameter": "pli" }, { "type": "ccm", "parameter": "fir" }]);
    json!([
        { "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "rtcpFeedback": fb },
        { "mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": { "apt": 96 } }
    ])
}

/// The MID, abs-send-time and transport-cc extensions (ids 4, 2, 3), as Chrome signals
/// them for video.
pub fn video_extensions() -> Value {
    json!([
        { "uri": MID_URI, "id": 4 },
        { "uri": ABS_SEND_TIME_URI, "id": 2 },
        { "uri": TRANSPORT_CC_URI, "id": 3 }
    ])
}

fn parse(v: Value) -> RtpParameters {
    serde_json::from_value(v).expect("valid rtpParameters")
}

/// One VP8 encoding at `ssrc` with its RTX stream at `rtx_ssrc`, as Chrome signals a
/// webcam without simulcast (MID 0, CNAME `sender-cname`).
pub fn vp8_params(ssrc: u32, rtx_ssrc: u32) -> RtpParameters {
    parse(json!({
        "mid": "0",
        "codecs": vp8_rtx_codecs(),
        "headerExtensions": video_extensions(),
        "encodings": [{ "ssrc": ssrc, "rtx": { "ssrc": rtx_ssrc } }],
        "rtcp": { "cname": "sender-cname" }
    }))
}

/// VP8 simulcast by RID (`r0`, `r1`, each L1T3; repaired-rid at id 11), MID 0.
pub fn simulcast_params() -> RtpParameters {
    let mut exts = video_extensions();
    if let Some(a) = exts.as_array_mut() {
        a.push(json!({ "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "id": 10 }));
        a.push(
            json!({ "uri": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", "id": 11 }),
        );
    }
    parse(json!({
        "mid": "0",
        "codecs": vp8_rtx_codecs(),
        "headerExtensions": exts,
        "encodings": [
            { "rid": "r0", "scalabilityMode": "L1T3" },
            { "rid": "r1", "scalabilityMode": "L1T3" }
        ],
        "rtcp": { "cname": "sender" }
    }))
}

/// Opus as mediasoup-client sends it for a microphone (audio level at id 1,
/// transport-cc at id 3), one encoding at `ssrc`, with MID `mid`.
pub fn opus_params(ssrc: u32, mid: &str) -> RtpParameters {
    parse(json!({
        "mid": mid,
        "codecs": [{ "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
                     "parameters": { "useinbandfec": 1 }, "rtcpFeedback": [{ "type": "transport-cc" }] }],
        "headerExtensions": [
            { "uri": MID_URI, "id": 4 },
            { "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1 },
            { "uri": TRANSPORT_CC_URI, "id": 3 }
        ],
        "encodings": [{ "ssrc": ssrc }],
        "rtcp": { "cname": "a" }
    }))
}

/// The SSRC of a consumer's first encoding, from its `consume` answer.
pub fn consumer_ssrc(consumed: &Value) -> u32 {
    consumed["rtpParameters"]["encodings"][0]["ssrc"]
        .as_u64()
        .expect("a consumer SSRC") as u32
}

/// The id a consumer's packets carry header extension `uri` with, from its `consume`
/// answer (`None` when it was not negotiated).
pub fn consumer_extension_id(consumed: &Value, uri: &str) -> Option<u8> {
    consumed["rtpParameters"]["headerExtensions"]
        .as_array()?
        .iter()
        .find(|e| e["uri"] == uri)
        .and_then(|e| u8::try_from(e["id"].as_u64()?).ok())
}

/// The media a producer of the benches sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// VP8, one encoding (no simulcast), with RTX at `ssrc + 1` and transport-cc
    /// feedback.
    Vp8,
    /// Opus.
    Opus,
}

impl Media {
    /// The producer's `rtpParameters` for `ssrc` (MID 0).
    pub fn rtp_parameters(self, ssrc: u32) -> RtpParameters {
        match self {
            Media::Vp8 => {
                let mut p = vp8_params(ssrc, ssrc.wrapping_add(1));
                p.codecs[0].rtcp_feedback.push(
                    serde_json::from_value(json!({ "type": "transport-cc" }))
                        .expect("an rtcpFeedback entry"),
                );
                p
            }
            Media::Opus => opus_params(ssrc, "0"),
        }
    }

    /// Audio or video.
    pub fn kind(self) -> MediaKind {
        match self {
            Media::Vp8 => MediaKind::Video,
            Media::Opus => MediaKind::Audio,
        }
    }
}
