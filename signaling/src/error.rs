//! Why a client request failed: turned into the failure ack `(code, message)` of
//! contract section 4 ("improvement: say why in the message").

use kolabmeet_media_types::EngineError;

/// A request failure. [`RequestError::code`] is the number in the failure ack and the
/// `Display` text its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The method is not one of section 5 (the message is the contract's exact text).
    #[error("unknown request.method \"{0}\"")]
    UnknownMethod(String),
    /// The request envelope is not `{method, data}`.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// A field of `data` is missing or has the wrong type or value.
    #[error("invalid data for {method}: {field} {problem}")]
    InvalidField {
        /// The request method.
        method: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The peer has to `join` first.
    #[error("{0}: peer not joined yet")]
    NotJoined(&'static str),
    /// `join` twice.
    #[error("peer already joined")]
    AlreadyJoined,
    /// The peer lacks a role.
    #[error("{method} not allowed: {reason}")]
    Forbidden {
        /// The request method.
        method: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A target peer is not in the room.
    #[error("peer {0} not found in this room")]
    PeerNotFound(String),
    /// The peer owns as many media objects as it may.
    #[error("too many {0} for this peer")]
    TooMany(&'static str),
    /// Too many requests in a short time.
    #[error("too many requests, slow down")]
    RateLimited,
    /// The media engine refused or failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The media engine did not answer in time.
    #[error("media engine did not answer in time")]
    EngineTimeout,
}

impl RequestError {
    /// The error code of the failure ack.
    pub fn code(&self) -> u16 {
        match self {
            Self::UnknownMethod(_) | Self::Malformed(_) | Self::InvalidField { .. } => 400,
            Self::NotJoined(_) | Self::AlreadyJoined => 409,
            Self::Forbidden { .. } => 403,
            Self::PeerNotFound(_) => 404,
            Self::RateLimited | Self::TooMany(_) => 429,
            Self::Engine(e) => match e {
                EngineError::Unavailable
                | EngineError::Busy
                | EngineError::PlainTransportUnavailable
                | EngineError::WorkerFailed => 503,
                EngineError::TransportNotFound(_)
                | EngineError::ProducerNotFound(_)
                | EngineError::ConsumerNotFound(_) => 404,
                EngineError::InvalidParameters(_)
                | EngineError::Refused(_)
                | EngineError::Transport(_) => 400,
            },
            Self::EngineTimeout => 504,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = RequestError::UnknownMethod("foo".into());
        assert_eq!(e.code(), 400);
        assert_eq!(e.to_string(), "unknown request.method \"foo\"");
        let e = RequestError::Engine(EngineError::Unavailable);
        assert_eq!(e.code(), 503);
        assert!(e.to_string().contains("media is not available yet"));
        assert_eq!(RequestError::NotJoined("chatMessage").code(), 409);
        assert!(
            RequestError::NotJoined("chatMessage")
                .to_string()
                .contains("not joined")
        );
    }
}
