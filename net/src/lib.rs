//! Packet views for the media path.
//!
//! This crate will hold the zero-copy views over received datagrams (RTP with RFC 8285
//! header extensions, RTCP compound packets, RFC 7983 demultiplexing, RFC 4571 framing)
//! that the media workers of `kolabmeet-engine` route. The control plane (issue #3) does
//! not touch media packets; so far the crate only provides the RFC 7983 first-byte
//! classifier that every later view starts from.

/// What a datagram received on a shared media port is, by its first byte (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketClass {
    /// STUN (first byte 0..=3).
    Stun,
    /// DTLS record (20..=63).
    Dtls,
    /// RTP or RTCP (128..=191); RFC 5761 §4 tells them apart by the payload type.
    RtpOrRtcp,
    /// Anything else: dropped and counted by the caller.
    Unknown,
}

/// Classifies a datagram by its first byte, as RFC 7983 §7 prescribes.
pub fn classify(datagram: &[u8]) -> PacketClass {
    match datagram.first() {
        Some(0..=3) => PacketClass::Stun,
        Some(20..=63) => PacketClass::Dtls,
        Some(128..=191) => PacketClass::RtpOrRtcp,
        _ => PacketClass::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_first_byte() {
        assert_eq!(classify(&[0, 1]), PacketClass::Stun);
        assert_eq!(classify(&[22, 254, 253]), PacketClass::Dtls);
        assert_eq!(classify(&[0x80, 0x60]), PacketClass::RtpOrRtcp);
        assert_eq!(classify(&[200]), PacketClass::Unknown);
        assert_eq!(classify(&[]), PacketClass::Unknown);
    }
}
