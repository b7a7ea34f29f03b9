//! What a producer's RTP becomes inside the router (mediasoup `ortc.ts`
//! `getProducerRtpParametersMapping`, `getConsumableRtpParameters`, `canConsume`).
//!
//! Every producer's codecs are mapped to the router's payload types and every encoding
//! to a router-side SSRC; the "consumable" parameters describe the producer's streams in
//! those router terms, and each consumer's parameters are cut from them.

use serde::{Deserialize, Serialize};

use super::codec_match::{CodecKey, ProfileAnswer, is_rtx, match_codecs};
use super::error::{OrtcError, invalid, unsupported};
use super::rtp_capabilities::{Direction, RtpCapabilities};
use super::rtp_parameters::{
    RtcpParameters, RtpCodecParameters, RtpHeaderExtensionParameters, RtpParameters,
};
use super::values::{MediaKind, ParamValue};

/// A producer payload type and the router's payload type it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodecMapping {
    /// The producer's payload type.
    pub payload_type: u8,
    /// The router's.
    pub mapped_payload_type: u8,
}

/// A producer encoding and the router-side SSRC its packets get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncodingMapping {
    /// The encoding's SSRC, when it is signalled by SSRC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    /// The encoding's RID, when it is signalled by RID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// Its scalability mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalability_mode: Option<String>,
    /// The router-side SSRC.
    pub mapped_ssrc: u32,
}

/// mediasoup's `RtpMapping`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RtpMapping {
    /// Media and RTX codecs.
    pub codecs: Vec<CodecMapping>,
    /// One per encoding, in order.
    pub encodings: Vec<EncodingMapping>,
}

impl RtpMapping {
    /// The router payload type of a producer payload type.
    pub fn mapped_payload_type(&self, payload_type: u8) -> Option<u8> {
        self.codecs
            .iter()
            .find(|c| c.payload_type == payload_type)
            .map(|c| c.mapped_payload_type)
    }
}

fn apt(codec: &RtpCodecParameters) -> Option<i64> {
    codec.parameters.get("apt").and_then(ParamValue::as_int)
}

/// `getProducerRtpParametersMapping`: maps the producer's codecs onto the router's
/// (strict matching; an H264 codec's `profile-level-id` is rewritten to the answer
/// level, as mediasoup does) and gives every encoding a router SSRC, consecutive from
/// `first_ssrc`.
pub fn producer_rtp_mapping(
    params: &mut RtpParameters,
    caps: &RtpCapabilities,
    first_ssrc: u32,
) -> Result<RtpMapping, OrtcError> {
    // (index into params.codecs, index into caps.codecs), media codecs first.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, codec) in params.codecs.iter_mut().enumerate() {
        if is_rtx(&codec.mime_type) {
            continue;
        }
        let found = caps.codecs.iter().enumerate().find_map(|(j, cap)| {
            match_codecs(CodecKey::from(&*codec), CodecKey::from(cap), true).map(|a| (j, a))
        });
        let Some((j, answer)) = found else {
            return Err(unsupported(format!(
                "unsupported codec [mimeType:{}, payloadType:{}]",
                codec.mime_type, codec.payload_type
            )));
        };
        match answer {
            ProfileAnswer::Keep => {}
            ProfileAnswer::Set(id) => {
                codec
                    .parameters
                    .insert("profile-level-id".into(), ParamValue::Str(id));
            }
            ProfileAnswer::Remove => {
                codec.parameters.remove("profile-level-id");
            }
        }
        pairs.push((i, j));
    }
    for (i, codec) in params.codecs.iter().enumerate() {
        if !is_rtx(&codec.mime_type) {
            continue;
        }
        let media = params
            .codecs
            .iter()
            .position(|m| Some(i64::from(m.payload_type)) == apt(codec));
        let Some(media) = media else {
            return Err(invalid(format!(
                "missing media codec found for RTX PT {}",
                codec.payload_type
            )));
        };
        let cap_media = pairs
            .iter()
            .find(|(p, _)| *p == media)
            .map(|(_, c)| &caps.codecs[*c])
            .ok_or_else(|| {
                invalid(format!(
                    "RTX PT {} points to an RTX codec",
                    codec.payload_type
                ))
            })?;
        let cap_pt = cap_media.preferred_payload_type.map(i64::from);
        let cap_rtx = caps.codecs.iter().position(|c| {
            is_rtx(&c.mime_type) && c.parameters.get("apt").and_then(ParamValue::as_int) == cap_pt
        });
        let Some(cap_rtx) = cap_rtx else {
            return Err(unsupported(format!(
                "no RTX codec for capability codec PT {}",
                cap_pt.unwrap_or(-1)
            )));
        };
        pairs.push((i, cap_rtx));
    }
    let mut codecs = Vec::with_capacity(pairs.len());
    for (p, c) in pairs {
        let mapped = caps.codecs[c]
            .preferred_payload_type
            .ok_or_else(|| invalid("router codec without a payload type"))?;
        codecs.push(CodecMapping {
            payload_type: params.codecs[p].payload_type,
            mapped_payload_type: mapped,
        });
    }
    let encodings = params
        .encodings
        .iter()
        .enumerate()
        .map(|(i, e)| EncodingMapping {
            ssrc: e.ssrc,
            rid: e.rid.clone(),
            scalability_mode: e.scalability_mode.clone(),
            mapped_ssrc: first_ssrc.wrapping_add(i as u32),
        })
        .collect();
    Ok(RtpMapping { codecs, encodings })
}

/// `getConsumableRtpParameters`: the producer's streams in router terms — router codecs
/// (keeping the producer's codec parameters) each followed by its RTX codec, the router's
/// header extensions of this kind that can be sent, the encodings with their mapped
/// SSRCs, and the transport's CNAME with reduced-size RTCP.
pub fn consumable_rtp_parameters(
    kind: MediaKind,
    params: &RtpParameters,
    caps: &RtpCapabilities,
    mapping: &RtpMapping,
) -> Result<RtpParameters, OrtcError> {
    let mut codecs = Vec::new();
    for codec in params.codecs.iter().filter(|c| !is_rtx(&c.mime_type)) {
        let pt = mapping
            .mapped_payload_type(codec.payload_type)
            .ok_or_else(|| invalid(format!("codec PT {} is not mapped", codec.payload_type)))?;
        let cap = caps
            .codecs
            .iter()
            .find(|c| c.preferred_payload_type == Some(pt))
            .ok_or_else(|| invalid(format!("router has no codec PT {pt}")))?;
        codecs.push(RtpCodecParameters {
            mime_type: cap.mime_type.clone(),
            payload_type: pt,
            clock_rate: cap.clock_rate,
            channels: cap.channels,
            parameters: codec.parameters.clone(),
            rtcp_feedback: cap.rtcp_feedback.clone(),
        });
        if let Some(rtx) = caps.codecs.iter().find(|c| {
            is_rtx(&c.mime_type)
                && c.parameters.get("apt").and_then(ParamValue::as_int) == Some(i64::from(pt))
        }) {
            codecs.push(RtpCodecParameters {
                mime_type: rtx.mime_type.clone(),
                payload_type: rtx.preferred_payload_type.unwrap_or_default(),
                clock_rate: rtx.clock_rate,
                channels: None,
                parameters: rtx.parameters.clone(),
                rtcp_feedback: rtx.rtcp_feedback.clone(),
            });
        }
    }
    let header_extensions = caps
        .header_extensions
        .iter()
        .filter(|e| {
            e.kind == kind && matches!(e.direction, Some(Direction::Sendrecv | Direction::Sendonly))
        })
        .map(|e| RtpHeaderExtensionParameters {
            uri: e.uri.clone(),
            id: e.preferred_id,
            encrypt: e.preferred_encrypt,
            parameters: Default::default(),
        })
        .collect();
    let encodings = params
        .encodings
        .iter()
        .zip(&mapping.encodings)
        .map(|(e, m)| {
            let mut e = e.clone();
            e.rid = None;
            e.rtx = None;
            e.codec_payload_type = None;
            e.ssrc = Some(m.mapped_ssrc);
            e
        })
        .collect();
    Ok(RtpParameters {
        mid: None,
        codecs,
        header_extensions,
        encodings,
        rtcp: RtcpParameters {
            cname: params.rtcp.cname.clone(),
            reduced_size: Some(true),
            mux: None,
        },
    })
}

/// `canConsume`: whether a device with `caps` can receive at least one media codec of
/// the consumable parameters.
pub fn can_consume(consumable: &RtpParameters, caps: &RtpCapabilities) -> Result<bool, OrtcError> {
    caps.validate()?;
    let first = consumable.codecs.iter().find(|codec| {
        caps.codecs
            .iter()
            .any(|cap| match_codecs(CodecKey::from(cap), CodecKey::from(*codec), true).is_some())
    });
    Ok(first.is_some_and(|c| !is_rtx(&c.mime_type)))
}
