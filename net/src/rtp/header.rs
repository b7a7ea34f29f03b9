//! The header of an RTP packet read once (RFC 3550 §5.1; header extensions RFC 8285 §4):
//! its fields, where the payload starts, and where each extension element's value lies,
//! indexed by id so that reading an extension no longer walks the block.
//!
//! [`RtpHeader`] borrows nothing. It can be read from an SRTP packet before decryption,
//! since SRTP leaves the header in the clear (RFC 3711 §3.1: only the payload is
//! encrypted, and no header extension is here, RFC 6904 not being used), and kept while the
//! packet is decrypted or rewritten in place: decryption only shortens the packet by its
//! authentication tag, and rewriting payload type, SSRC, sequence number or extension ids
//! moves nothing. The padding (RFC 3550 §5.1, its count in the payload's last byte) can be
//! read only after decryption: [`RtpHeader::payload`].

use std::ops::Range;

use super::error::RtpError;
use super::extensions::{ExtensionForm, ExtensionIter};
use super::packet::FIXED_HEADER_LEN;

/// Extension elements indexed at most; the elements of a longer block after these are
/// ignored (no header WebRTC sends has more than a dozen).
pub const MAX_INDEXED_EXTENSIONS: usize = 16;

/// Where one extension element's value lies in the packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Element {
    id: u8,
    start: u16,
    len: u16,
}

/// An RTP header read in one pass; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The marker bit.
    pub marker: bool,
    /// The payload type.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The SSRC.
    pub ssrc: u32,
    /// The padding bit: the payload's last byte counts the padding bytes.
    pub padding: bool,
    /// The header's length: the payload starts here, after the CSRCs and extensions.
    pub header_len: usize,
    form: Option<ExtensionForm>,
    elements: [Element; MAX_INDEXED_EXTENSIONS],
    count: u8,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl RtpHeader {
    /// Reads the header of `packet` (RTP, or SRTP still encrypted): version 2, and the
    /// CSRC list and extension block inside the buffer. The padding is not checked here
    /// (see [`RtpHeader::payload`]).
    pub fn parse(packet: &[u8]) -> Result<Self, RtpError> {
        let b = packet;
        if b.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort(b.len()));
        }
        if b[0] >> 6 != 2 {
            return Err(RtpError::BadVersion(b[0] >> 6));
        }
        let mut at = FIXED_HEADER_LEN + 4 * usize::from(b[0] & 0x0f);
        if at > b.len() {
            return Err(RtpError::Truncated("CSRC list"));
        }
        let mut header = RtpHeader {
            marker: b[1] & 0x80 != 0,
            payload_type: b[1] & 0x7f,
            sequence_number: be16(b, 2),
            timestamp: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            padding: b[0] & 0x20 != 0,
            header_len: at,
            form: None,
            elements: [Element::default(); MAX_INDEXED_EXTENSIONS],
            count: 0,
        };
        if b[0] & 0x10 != 0 {
            if at + 4 > b.len() {
                return Err(RtpError::Truncated("header extension header"));
            }
            let form = ExtensionForm::from_profile(be16(b, at));
            let data_start = at + 4;
            at = data_start + 4 * usize::from(be16(b, at + 2));
            if at > b.len() {
                return Err(RtpError::Truncated("header extension"));
            }
            header.form = Some(form);
            header.header_len = at;
            let mut n = 0;
            for e in ExtensionIter::new(Some(form), &b[data_start..at]) {
                if n == MAX_INDEXED_EXTENSIONS {
                    break;
                }
                // Packets are far shorter than 64 KiB: offsets fit.
                header.elements[n] = Element {
                    id: e.id,
                    start: (data_start + e.offset) as u16,
                    len: e.value_len as u16,
                };
                n += 1;
            }
            header.count = n as u8;
        }
        Ok(header)
    }

    /// The value of extension `id` in `packet` (the packet this header was read from).
    pub fn extension<'a>(&self, packet: &'a [u8], id: u8) -> Option<&'a [u8]> {
        self.range_of(id).and_then(|r| packet.get(r))
    }

    /// Where the value of extension `id` lies in the packet.
    pub fn range_of(&self, id: u8) -> Option<Range<usize>> {
        if id == 0 {
            return None;
        }
        self.elements[..usize::from(self.count)]
            .iter()
            .find(|e| e.id == id)
            .map(|e| usize::from(e.start)..usize::from(e.start) + usize::from(e.len))
    }

    /// Every indexed extension element: its id and where its value lies.
    pub fn extensions(&self) -> impl Iterator<Item = (u8, Range<usize>)> + '_ {
        self.elements[..usize::from(self.count)].iter().map(|e| {
            (
                e.id,
                usize::from(e.start)..usize::from(e.start) + usize::from(e.len),
            )
        })
    }

    /// The payload of `packet` once it is plain RTP (decrypted): from the end of the
    /// header to the padding. An error when the padding count is 0 or runs into the header.
    pub fn payload<'a>(&self, packet: &'a [u8]) -> Result<&'a [u8], RtpError> {
        let range = self.payload_range(packet)?;
        Ok(&packet[range])
    }

    /// Where the payload of `packet` (plain RTP) lies; see [`RtpHeader::payload`].
    pub fn payload_range(&self, packet: &[u8]) -> Result<Range<usize>, RtpError> {
        if packet.len() < self.header_len {
            return Err(RtpError::Truncated("payload"));
        }
        let mut end = packet.len();
        if self.padding {
            let pad = usize::from(packet[end - 1]);
            if pad == 0 || pad > end - self.header_len {
                return Err(RtpError::BadPadding(pad));
            }
            end -= pad;
        }
        Ok(self.header_len..end)
    }

    /// Sets the payload type, here and in `packet`.
    pub fn set_payload_type(&mut self, packet: &mut [u8], pt: u8) {
        self.payload_type = pt & 0x7f;
        packet[1] = (packet[1] & 0x80) | self.payload_type;
    }

    /// Sets the sequence number, here and in `packet`.
    pub fn set_sequence_number(&mut self, packet: &mut [u8], seq: u16) {
        self.sequence_number = seq;
        packet[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Sets the SSRC, here and in `packet`.
    pub fn set_ssrc(&mut self, packet: &mut [u8], ssrc: u32) {
        self.ssrc = ssrc;
        packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// Rewrites the ids of the extension elements, here and in `packet` (RFC 8285 §5):
    /// `map` gives each element's new id, or `None` to remove it. A removed element, or
    /// one whose new id does not fit the one-byte form (over 14), is overwritten with
    /// padding bytes (zero), which both forms skip. Elements past the indexed ones are
    /// left as they are.
    pub fn remap_extension_ids(
        &mut self,
        packet: &mut [u8],
        mut map: impl FnMut(u8) -> Option<u8>,
    ) {
        let one_byte = match self.form {
            Some(ExtensionForm::OneByte) => true,
            Some(ExtensionForm::TwoByte) => false,
            _ => return,
        };
        let header_len = if one_byte { 1 } else { 2 };
        let mut kept = 0;
        for i in 0..usize::from(self.count) {
            let e = self.elements[i];
            let start = usize::from(e.start);
            let head = start - header_len;
            let new = map(e.id).filter(|&new| new != 0 && (!one_byte || new <= 14));
            match new {
                Some(new) => {
                    if one_byte {
                        packet[head] = (new << 4) | (packet[head] & 0x0f);
                    } else {
                        packet[head] = new;
                    }
                    self.elements[kept] = Element { id: new, ..e };
                    kept += 1;
                }
                None => packet[head..start + usize::from(e.len)].fill(0),
            }
        }
        self.elements[kept..].fill(Element::default());
        self.count = kept as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpPacket;

    /// V=2, P=1, X=1, PT 96, one-byte extensions id 1 (mid "0"), id 3 (3 bytes), then
    /// payload 4 bytes and 2 bytes of padding.
    fn sample() -> Vec<u8> {
        vec![
            0xb0, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22, 0x33, 0x44, //
            0xbe, 0xde, 0x00, 0x02, //
            0x10, b'0', //
            0x32, 0xaa, 0xbb, 0xcc, //
            0x00, 0x00, //
            1, 2, 3, 4, 0, 2,
        ]
    }

    #[test]
    fn reads_what_the_packet_view_reads() {
        let p = sample();
        let h = RtpHeader::parse(&p).unwrap();
        let v = RtpPacket::parse(&p[..]).unwrap();
        assert_eq!(
            (
                h.marker,
                h.payload_type,
                h.sequence_number,
                h.timestamp,
                h.ssrc
            ),
            (
                v.marker(),
                v.payload_type(),
                v.sequence_number(),
                v.timestamp(),
                v.ssrc()
            )
        );
        assert_eq!(h.header_len, v.header_len());
        assert_eq!(h.payload(&p).unwrap(), v.payload());
        for id in 0..16 {
            assert_eq!(h.extension(&p, id), v.extension(id), "id {id}");
        }
        assert_eq!(h.extensions().count(), 2);
    }

    #[test]
    fn padding_is_read_after_decryption_only() {
        let mut p = sample();
        // An SRTP tag whose last byte would be a nonsense padding count.
        p.extend_from_slice(&[0xff; 10]);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(RtpPacket::parse(&p[..]).is_err());
        assert_eq!(h.extension(&p, 1), Some(&b"0"[..]));
        p.truncate(p.len() - 10);
        assert_eq!(h.payload(&p).unwrap(), &[1, 2, 3, 4]);
        let bad = [0xa0, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        let h = RtpHeader::parse(&bad).unwrap();
        assert_eq!(h.payload(&bad), Err(RtpError::BadPadding(9)));
    }

    #[test]
    fn rewrites_in_place_and_keeps_the_index() {
        let mut p = sample();
        let mut h = RtpHeader::parse(&p).unwrap();
        h.set_payload_type(&mut p, 100);
        h.set_ssrc(&mut p, 7);
        h.set_sequence_number(&mut p, 9);
        // id 1 becomes 4, id 3 is removed.
        h.remap_extension_ids(&mut p, |id| (id == 1).then_some(4));
        let v = RtpPacket::parse(&p[..]).unwrap();
        assert_eq!(
            (v.payload_type(), v.ssrc(), v.sequence_number()),
            (100, 7, 9)
        );
        assert_eq!(v.extension(4), Some(&b"0"[..]));
        assert_eq!(v.extension(3), None);
        assert_eq!(h.extension(&p, 4), Some(&b"0"[..]));
        assert_eq!(h.extension(&p, 3), None);
        assert_eq!(h, RtpHeader::parse(&p).unwrap());
    }

    #[test]
    fn malformed_headers_are_errors_and_never_panic() {
        assert_eq!(RtpHeader::parse(&[0x80; 11]), Err(RtpError::TooShort(11)));
        assert!(RtpHeader::parse(&[0x40; 12]).is_err());
        assert!(RtpHeader::parse(&[0x8f; 20]).is_err());
        let mut x: u32 = 7;
        for _ in 0..20_000 {
            let len = (x % 64) as usize;
            let mut b = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b.push(x as u8);
            }
            if let Some(f) = b.first_mut() {
                *f = 0x80 | (*f & 0x3f);
            }
            if let Ok(mut h) = RtpHeader::parse(&b) {
                let _ = h.payload(&b);
                for id in 0..=255 {
                    let _ = h.extension(&b, id);
                }
                h.remap_extension_ids(&mut b, |id| Some(id.wrapping_add(1)));
            }
        }
    }
}
