//! Why client parameters were refused (the messages of mediasoup's `ortc.ts` checks).

/// A refused parameter object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrtcError {
    /// A field is missing or invalid; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// Valid, but nothing the router (or the device) supports: mediasoup's
    /// `UnsupportedError`.
    #[error("{0}")]
    Unsupported(String),
}

pub(crate) fn invalid(msg: impl Into<String>) -> OrtcError {
    OrtcError::Invalid(msg.into())
}

pub(crate) fn unsupported(msg: impl Into<String>) -> OrtcError {
    OrtcError::Unsupported(msg.into())
}
