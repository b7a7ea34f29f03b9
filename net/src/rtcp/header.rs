//! The common RTCP header (RFC 3550 §6.4.1) and RTP/RTCP demultiplexing (RFC 5761 §4).

use super::wire::{RtcpError, be16, need};

/// Size of the common header.
pub const HEADER_LEN: usize = 4;

/// Whether a datagram that RFC 7983 classed as RTP or RTCP is RTCP: its second byte, the
/// RTCP packet type, lies in 192..=223, which RTP payload types with the marker bit never
/// reach when payload types 64-95 are left unused (RFC 5761 §4).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && (192..=223).contains(&datagram[1])
}

/// One RTCP packet's header and body (padding removed), validated.
#[derive(Debug, Clone, Copy)]
pub struct RtcpHeader<'a> {
    /// The whole packet, header included, padding excluded.
    packet: &'a [u8],
}

impl<'a> RtcpHeader<'a> {
    /// Splits the first packet off `compound`: checks the version and that the length
    /// field and padding stay inside; returns the packet and what follows it.
    pub fn split(compound: &'a [u8]) -> Result<(Self, &'a [u8]), RtcpError> {
        need("RTCP header", compound, HEADER_LEN)?;
        if compound[0] >> 6 != 2 {
            return Err(RtcpError::BadVersion(compound[0] >> 6));
        }
        let words = usize::from(be16(compound, 2)) + 1;
        let len = 4 * words;
        if len > compound.len() {
            return Err(RtcpError::BadLength {
                words,
                len: compound.len(),
            });
        }
        let (mut packet, rest) = compound.split_at(len);
        if packet[0] & 0x20 != 0 {
            let pad = usize::from(packet[len - 1]);
            if pad == 0 || pad > len - HEADER_LEN {
                return Err(RtcpError::BadPadding(pad));
            }
            packet = &packet[..len - pad];
        }
        Ok((RtcpHeader { packet }, rest))
    }

    /// The count field: report count, source count or feedback message type (5 bits).
    pub fn count(&self) -> u8 {
        self.packet[0] & 0x1f
    }

    /// The packet type.
    pub fn packet_type(&self) -> u8 {
        self.packet[1]
    }

    /// What follows the 4-byte header, padding excluded.
    pub fn body(&self) -> &'a [u8] {
        &self.packet[HEADER_LEN..]
    }

    /// The whole packet, padding excluded.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.packet
    }
}

/// Appends a header with a zero length field; [`finish`] sets it once the body is
/// written. Returns where the packet starts.
pub(crate) fn begin(out: &mut Vec<u8>, count: u8, packet_type: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0x80 | (count & 0x1f), packet_type, 0, 0]);
    start
}

/// Pads the packet that starts at `start` to a 32-bit boundary with zeros (as SDES
/// and BYE need) and writes its length field.
pub(crate) fn finish(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demultiplexes_rtcp_from_rtp() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 206, 0, 2]));
        assert!(!is_rtcp(&[0x80, 96, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0x80 | 111, 0, 1]), "opus with marker");
        assert!(!is_rtcp(&[0x80, 200]));
    }

    #[test]
    fn removes_padding_and_rejects_bad_padding() {
        // RR with one padding word: 0x20 bit, last byte 4.
        let buf = [0xa0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4];
        let (h, rest) = RtcpHeader::split(&buf).unwrap();
        assert_eq!(h.body(), &[0, 0, 0, 9]);
        assert!(rest.is_empty());
        for pad in [0, 9] {
            let buf = [0xa0, 201, 0, 1, 0, 0, 0, pad];
            assert!(matches!(
                RtcpHeader::split(&buf),
                Err(RtcpError::BadPadding(_))
            ));
        }
    }
}
