//! Packet views for the media path.
//!
//! Zero-copy views over received datagrams that the media workers of `kolabmeet-engine`
//! route: RTP with RFC 8285 header extensions ([`rtp`]), RTCP compound packets ([`rtcp`]),
//! RFC 7983 demultiplexing (this file) and RFC 4571 framing ([`tcp_framing`]). Views borrow
//! the datagram; mutable views rewrite it in place.

pub mod rtcp;
pub mod rtp;
pub mod tcp_framing;

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
