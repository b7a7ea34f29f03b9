//! The RTCP wire basics every packet type's view shares (RFC 3550 §6.4, RFC 4585 §6.1):
//! packet and feedback types, the parse error, big-endian reads with bounds checked by the
//! caller or by [`need`].

/// Packet types (RFC 3550 §12.1, RFC 4585 §6.1).
pub mod pt {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
    /// Transport-layer feedback (RFC 4585 §6.2).
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback (RFC 4585 §6.3).
    pub const PSFB: u8 = 206;
    /// Extended reports (RFC 3611).
    pub const XR: u8 = 207;
}

/// Feedback message types (the header's count field of RTPFB and PSFB).
pub mod fmt {
    /// RTPFB: generic NACK (RFC 4585 §6.2.1).
    pub const NACK: u8 = 1;
    /// RTPFB: transport-wide congestion control feedback
    /// (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
    pub const TRANSPORT_CC: u8 = 15;
    /// PSFB: picture loss indication (RFC 4585 §6.3.1).
    pub const PLI: u8 = 1;
    /// PSFB: full intra request (RFC 5104 §4.3.1).
    pub const FIR: u8 = 4;
    /// PSFB: application layer feedback, REMB when it says so
    /// (draft-alvestrand-rmcat-remb-03 §2.2).
    pub const AFB: u8 = 15;
}

/// Why a buffer is not valid RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Shorter than the part being read.
    #[error("{what}: {len} bytes, at least {need} needed")]
    TooShort {
        /// What was being read.
        what: &'static str,
        /// Bytes there.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The version field is not 2.
    #[error("RTCP version {0} (expected 2)")]
    BadVersion(u8),
    /// The length field points past the end of the compound packet.
    #[error("length field of {words} words runs past the {len} bytes left")]
    BadLength {
        /// The header's length field plus one, in 32-bit words.
        words: usize,
        /// Bytes left in the compound packet.
        len: usize,
    },
    /// The padding count is 0 or larger than the packet's body.
    #[error("bad padding count {0}")]
    BadPadding(usize),
    /// A packet's content contradicts its own counts or lengths.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// Big-endian u16 at `at` (the caller checked the bounds).
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Big-endian u32 at `at` (the caller checked the bounds).
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks that `body` holds at least `need` bytes.
pub(crate) fn need(what: &'static str, body: &[u8], need: usize) -> Result<(), RtcpError> {
    if body.len() < need {
        return Err(RtcpError::TooShort {
            what,
            len: body.len(),
            need,
        });
    }
    Ok(())
}
