//! Why client parameters were refused (the messages of mediasoup's `ortc.ts` checks).

/// A refused parameter object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrtcError {
    /// A field is missing or invalid; the text says which and why.
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn invalid(msg: impl Into<String>) -> OrtcError {
    OrtcError::Invalid(msg.into())
}
