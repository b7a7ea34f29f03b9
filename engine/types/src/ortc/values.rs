//! Small value types shared by capabilities and parameters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Kind of media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

impl MediaKind {
    /// `audio` or `video`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// A codec or header extension parameter: mediasoup keeps numbers as numbers
/// (`"packetization-mode": 1`) and strings as strings (`"profile-level-id": "42e01f"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A non-integer number.
    Float(f64),
    /// A string.
    Str(String),
}

impl ParamValue {
    /// The value as an integer, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            ParamValue::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl From<i64> for ParamValue {
    fn from(v: i64) -> Self {
        ParamValue::Int(v)
    }
}

impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::Str(v.to_owned())
    }
}

/// Codec or header extension parameters, by name.
pub type Parameters = BTreeMap<String, ParamValue>;

/// One RTCP feedback mechanism (`{type, parameter}`), e.g. `nack pli`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcpFeedback {
    /// `nack`, `ccm`, `goog-remb`, `transport-cc`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `""`, `pli`, `fir`.
    #[serde(default)]
    pub parameter: String,
}

impl RtcpFeedback {
    /// A feedback entry.
    pub fn new(kind: &str, parameter: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            parameter: parameter.to_owned(),
        }
    }
}
