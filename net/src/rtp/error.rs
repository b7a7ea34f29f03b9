//! Why a buffer is not a valid RTP packet (RFC 3550 §5.1, RFC 8285).

/// Why a buffer is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("{0} bytes is shorter than an RTP header")]
    TooShort(usize),
    /// The version field is not 2.
    #[error("RTP version {0} (expected 2)")]
    BadVersion(u8),
    /// A part of the header runs past the end of the buffer.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// The padding count is 0 or larger than what follows the header.
    #[error("bad padding count {0}")]
    BadPadding(usize),
}
