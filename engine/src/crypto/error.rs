//! Errors of the DTLS endpoint and of the SRTP sessions.

use thiserror::Error;

/// Errors of [`DtlsCertificate`](super::DtlsCertificate) generation and of a
/// [`DtlsSession`](super::DtlsSession).
///
/// [`DtlsError::is_fatal`] tells a caller whether the session is finished: a non-fatal error
/// (a malformed or out-of-place datagram, RFC 6347 §4.1.2.7) only means "drop and count it".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtlsError {
    /// The role must be `client` or `server` (`auto` has to be resolved by the caller).
    #[error("DTLS role must be client or server")]
    InvalidRole,
    /// A signalled remote fingerprint is malformed (RFC 8122 §5).
    #[error("invalid remote fingerprint: {0}")]
    InvalidFingerprint(String),
    /// None of the signalled remote fingerprints uses a hash function we support.
    #[error("no remote fingerprint with a supported hash function")]
    NoUsableFingerprint,
    /// No SRTP protection profile to offer.
    #[error("no SRTP protection profile configured")]
    NoSrtpProfiles,
    /// Generating or importing the local certificate failed.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// The DTLS stack rejected its configuration.
    #[error("DTLS configuration rejected: {0}")]
    Config(String),
    /// A datagram that is not a well-formed sequence of DTLS records, or one the stack
    /// discarded. Not fatal.
    #[error("invalid DTLS datagram: {0}")]
    InvalidRecord(String),
    /// The session is failed or closed and takes no more input. Not fatal in itself.
    #[error("DTLS session is not active")]
    NotActive,
    /// Application data written before the handshake completed. Not fatal.
    #[error("DTLS session is not connected yet")]
    NotConnected,
    /// The peer certificate matches none of the signalled fingerprints (RFC 5763 §5).
    #[error("remote certificate does not match the signalled fingerprint")]
    FingerprintMismatch,
    /// The handshake failed: a fatal alert was sent or received (RFC 5246 §7.2.2).
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// The peer stopped answering; retransmissions are exhausted (RFC 6347 §4.2.4.1).
    #[error("DTLS handshake timed out")]
    Timeout,
    /// The handshake completed without a `use_srtp` agreement (RFC 5764 §4.1.1).
    #[error("no SRTP protection profile negotiated")]
    NoSrtpProfile,
    /// Exporting the SRTP keying material failed (RFC 5705, RFC 5764 §4.2).
    #[error("keying material export failed: {0}")]
    KeyExport(String),
}

impl DtlsError {
    /// Whether this error ended the session (it is then `Failed`).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::FingerprintMismatch
                | Self::Handshake(_)
                | Self::Timeout
                | Self::NoSrtpProfile
                | Self::KeyExport(_)
        )
    }
}

/// Errors of an [`SrtpSession`](super::SrtpSession).
///
/// Every error on a packet means "drop it": libsrtp leaves the buffer emptied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SrtpError {
    /// The authentication tag did not verify (RFC 3711 §3.3, RFC 7714 §9.3).
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// The packet index was seen before or is behind the replay window (RFC 3711 §3.3.2).
    #[error("SRTP replayed packet")]
    Replay,
    /// Key material of the wrong length for the profile.
    #[error("SRTP key material has the wrong length")]
    BadKeyLength,
    /// A transport would send more SSRCs than
    /// [`MAX_OUTBOUND_SSRCS`](super::MAX_OUTBOUND_SSRCS).
    #[error("too many outbound SRTP streams")]
    TooManyStreams,
    /// Any other libsrtp status: a malformed packet, an expired key, ...
    #[error("libsrtp error: {0}")]
    Libsrtp(&'static str),
}

impl SrtpError {
    pub(crate) fn from_libsrtp(error: srtp::Error) -> Self {
        match error {
            srtp::Error::AUTH_FAIL => Self::AuthFailed,
            srtp::Error::REPLAY_FAIL | srtp::Error::REPLAY_OLD => Self::Replay,
            srtp::Error::BAD_PARAM => Self::Libsrtp("BAD_PARAM"),
            srtp::Error::PARSE_ERR => Self::Libsrtp("PARSE_ERR"),
            srtp::Error::CIPHER_FAIL => Self::Libsrtp("CIPHER_FAIL"),
            srtp::Error::KEY_EXPIRED => Self::Libsrtp("KEY_EXPIRED"),
            srtp::Error::NO_CTX => Self::Libsrtp("NO_CTX"),
            srtp::Error::ALLOC_FAIL => Self::Libsrtp("ALLOC_FAIL"),
            srtp::Error::INIT_FAIL => Self::Libsrtp("INIT_FAIL"),
            _ => Self::Libsrtp("FAIL"),
        }
    }
}
