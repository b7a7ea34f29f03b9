//! Codec matching (mediasoup `ortc.ts` `matchCodecs`, `isRtxCodec`), with the H264
//! profile rules of RFC 6184 §8.1 through the `h264-profile-level-id` crate.

use h264_profile_level_id::{
    ProfileLevelId, generate_profile_level_id_for_answer, is_same_profile,
};

use super::rtp_capabilities::RtpCodecCapability;
use super::rtp_parameters::RtpCodecParameters;
use super::values::{ParamValue, Parameters};

/// The fields of a codec that matching looks at, borrowed from a capability or a
/// parameter codec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CodecKey<'a> {
    pub mime_type: &'a str,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    pub parameters: &'a Parameters,
}

impl<'a> From<&'a RtpCodecCapability> for CodecKey<'a> {
    fn from(c: &'a RtpCodecCapability) -> Self {
        CodecKey {
            mime_type: &c.mime_type,
            clock_rate: c.clock_rate,
            channels: c.channels,
            parameters: &c.parameters,
        }
    }
}

impl<'a> From<&'a RtpCodecParameters> for CodecKey<'a> {
    fn from(c: &'a RtpCodecParameters) -> Self {
        CodecKey {
            mime_type: &c.mime_type,
            clock_rate: c.clock_rate,
            channels: c.channels,
            parameters: &c.parameters,
        }
    }
}

/// What a strict H264 match says `a`'s `profile-level-id` must become (mediasoup's
/// `modify` option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProfileAnswer {
    /// Not an H264 strict match: leave the parameters alone.
    Keep,
    /// Set `profile-level-id` to this value.
    Set(String),
    /// Neither side named a profile: remove `profile-level-id`.
    Remove,
}

/// Whether a MIME type is RTX (`.+/rtx`, any case).
pub(crate) fn is_rtx(mime_type: &str) -> bool {
    mime_type.len() > 4
        && mime_type
            .get(mime_type.len() - 4..)
            .is_some_and(|t| t.eq_ignore_ascii_case("/rtx"))
}

/// A parameter, or JavaScript's `|| 0` default.
fn param_or_zero(p: &Parameters, name: &str) -> ParamValue {
    match p.get(name) {
        None | Some(ParamValue::Int(0)) => ParamValue::Int(0),
        Some(ParamValue::Str(s)) if s.is_empty() => ParamValue::Int(0),
        Some(v) => v.clone(),
    }
}

/// `profile-level-id` as text (sdp-transform may have turned an all-digit one into a
/// number).
fn profile_level_id(p: &Parameters) -> Option<String> {
    match p.get("profile-level-id")? {
        ParamValue::Str(s) => Some(s.clone()),
        ParamValue::Int(i) => Some(i.to_string()),
        ParamValue::Float(_) => Some(String::new()),
    }
}

fn level_asymmetry_allowed(p: &Parameters) -> bool {
    match p.get("level-asymmetry-allowed") {
        Some(ParamValue::Int(1)) => true,
        Some(ParamValue::Str(s)) => s == "1",
        _ => false,
    }
}

/// mediasoup's `generateProfileLevelIdStringForAnswer(a, b)`: `None` when the profiles
/// cannot be answered, `Some(None)` when neither side names one.
fn profile_level_id_for_answer(a: &Parameters, b: &Parameters) -> Option<Option<String>> {
    let (la, lb) = (profile_level_id(a), profile_level_id(b));
    if la.is_none() && lb.is_none() {
        return Some(None);
    }
    let parse = |s: Option<String>| match s {
        None => Some(ProfileLevelId::default()),
        Some(s) => s.parse::<ProfileLevelId>().ok(),
    };
    let (pa, pb) = (parse(la)?, parse(lb)?);
    let answer = generate_profile_level_id_for_answer(
        Some(pa),
        level_asymmetry_allowed(a),
        Some(pb),
        level_asymmetry_allowed(b),
    )
    .ok()?;
    Some(Some(answer.to_string()))
}

/// mediasoup's `matchCodecs(a, b, {strict})`: `None` when they do not match, otherwise
/// what a `modify` caller must do to `a`'s `profile-level-id`.
pub(crate) fn match_codecs(a: CodecKey, b: CodecKey, strict: bool) -> Option<ProfileAnswer> {
    let mime = a.mime_type.to_ascii_lowercase();
    if mime != b.mime_type.to_ascii_lowercase()
        || a.clock_rate != b.clock_rate
        || a.channels != b.channels
    {
        return None;
    }
    match mime.as_str() {
        "audio/multiopus" => {
            for p in ["num_streams", "coupled_streams"] {
                if a.parameters.get(p) != b.parameters.get(p) {
                    return None;
                }
            }
            Some(ProfileAnswer::Keep)
        }
        "video/h264" if strict => {
            if param_or_zero(a.parameters, "packetization-mode")
                != param_or_zero(b.parameters, "packetization-mode")
            {
                return None;
            }
            let (pa, pb) = (
                profile_level_id(a.parameters),
                profile_level_id(b.parameters),
            );
            is_same_profile(pa.as_deref(), pb.as_deref())?;
            match profile_level_id_for_answer(a.parameters, b.parameters)? {
                Some(id) => Some(ProfileAnswer::Set(id)),
                None => Some(ProfileAnswer::Remove),
            }
        }
        "video/vp9" if strict => (param_or_zero(a.parameters, "profile-id")
            == param_or_zero(b.parameters, "profile-id"))
        .then_some(ProfileAnswer::Keep),
        _ => Some(ProfileAnswer::Keep),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, ParamValue)]) -> Parameters {
        kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn key<'a>(mime: &'a str, p: &'a Parameters) -> CodecKey<'a> {
        CodecKey {
            mime_type: mime,
            clock_rate: 90000,
            channels: None,
            parameters: p,
        }
    }

    #[test]
    fn rtx_detection() {
        assert!(is_rtx("video/rtx") && is_rtx("audio/RTX"));
        assert!(!is_rtx("/rtx") && !is_rtx("video/vp8") && !is_rtx("rtx"));
    }

    #[test]
    fn h264_profiles_and_levels() {
        let high_asym = params(&[
            ("packetization-mode", 1.into()),
            ("profile-level-id", "4d0032".into()),
            ("level-asymmetry-allowed", 1.into()),
        ]);
        let main_31 = params(&[
            ("packetization-mode", 1.into()),
            ("profile-level-id", "4d001f".into()),
            ("level-asymmetry-allowed", 1.into()),
        ]);
        let base = params(&[
            ("packetization-mode", 1.into()),
            ("profile-level-id", "42e01f".into()),
        ]);
        let mode0 = params(&[("profile-level-id", "4d0032".into())]);
        // Same profile, both allow asymmetry: a's level.
        assert_eq!(
            match_codecs(
                key("video/H264", &high_asym),
                key("video/h264", &main_31),
                true
            ),
            Some(ProfileAnswer::Set("4d0032".into()))
        );
        // Asymmetry not allowed on one side: the lower level.
        let main_31_no = params(&[
            ("packetization-mode", 1.into()),
            ("profile-level-id", "4d001f".into()),
        ]);
        assert_eq!(
            match_codecs(
                key("video/H264", &high_asym),
                key("video/H264", &main_31_no),
                true
            ),
            Some(ProfileAnswer::Set("4d001f".into()))
        );
        assert_eq!(
            match_codecs(
                key("video/H264", &high_asym),
                key("video/H264", &base),
                true
            ),
            None
        );
        assert_eq!(
            match_codecs(
                key("video/H264", &high_asym),
                key("video/H264", &mode0),
                true
            ),
            None
        );
        // Not strict: profiles are not looked at.
        assert_eq!(
            match_codecs(
                key("video/H264", &high_asym),
                key("video/H264", &base),
                false
            ),
            Some(ProfileAnswer::Keep)
        );
        let none = Parameters::new();
        assert_eq!(
            match_codecs(key("video/H264", &none), key("video/H264", &none), true),
            Some(ProfileAnswer::Remove)
        );
    }

    #[test]
    fn vp9_profile_and_basic_fields() {
        let p2 = params(&[("profile-id", 2.into())]);
        let p0 = Parameters::new();
        assert!(match_codecs(key("video/VP9", &p2), key("video/vp9", &p2), true).is_some());
        assert!(match_codecs(key("video/VP9", &p2), key("video/VP9", &p0), true).is_none());
        assert!(match_codecs(key("video/VP9", &p2), key("video/VP9", &p0), false).is_some());
        assert!(match_codecs(key("video/VP8", &p0), key("video/VP9", &p0), false).is_none());
        let mut k = key("video/VP8", &p0);
        k.clock_rate = 48000;
        assert!(match_codecs(k, key("video/VP8", &p0), false).is_none());
    }
}
