//! The RTP fixed header, CSRC list, header extension block, payload and padding
//! (RFC 3550 §5.1, §5.3.1) as a view over a byte buffer.
//!
//! [`RtpPacket::parse`] validates the layout once; afterwards every accessor is infallible
//! and reads the field from the buffer on demand. Over a mutable buffer the same view
//! rewrites fields in place (SSRC, payload type, sequence number, timestamp, marker, header
//! extension ids and values), which is how a forwarded packet is adapted per consumer
//! without copying it.

use super::error::RtpError;
use super::extensions::{ExtensionForm, ExtensionIter};

/// Size of the fixed RTP header (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;

/// Where the parts of a validated packet lie, computed once by [`RtpPacket::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Start of the header extension's data (after its 4-byte header), if any.
    ext_start: usize,
    /// Length of the header extension's data in bytes (a multiple of 4).
    ext_len: usize,
    /// The extension block's profile value (0 when there is none).
    ext_profile: u16,
    /// Start of the payload.
    payload_start: usize,
    /// End of the payload (start of the padding).
    payload_end: usize,
}

/// An RTP packet over a buffer `B`: `&[u8]` to read, `&mut [u8]` (or `Vec<u8>`) to rewrite
/// in place.
#[derive(Debug, Clone)]
pub struct RtpPacket<B> {
    buf: B,
    layout: Layout,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn layout(b: &[u8]) -> Result<Layout, RtpError> {
    if b.len() < FIXED_HEADER_LEN {
        return Err(RtpError::TooShort(b.len()));
    }
    if b[0] >> 6 != 2 {
        return Err(RtpError::BadVersion(b[0] >> 6));
    }
    let csrc_count = usize::from(b[0] & 0x0f);
    let mut at = FIXED_HEADER_LEN + 4 * csrc_count;
    if at > b.len() {
        return Err(RtpError::Truncated("CSRC list"));
    }
    let (mut ext_start, mut ext_len, mut ext_profile) = (at, 0, 0);
    if b[0] & 0x10 != 0 {
        if at + 4 > b.len() {
            return Err(RtpError::Truncated("header extension header"));
        }
        ext_profile = be16(b, at);
        ext_len = 4 * usize::from(be16(b, at + 2));
        ext_start = at + 4;
        at = ext_start + ext_len;
        if at > b.len() {
            return Err(RtpError::Truncated("header extension"));
        }
    }
    let mut payload_end = b.len();
    if b[0] & 0x20 != 0 {
        let pad = usize::from(b[b.len() - 1]);
        if pad == 0 || pad > b.len() - at {
            return Err(RtpError::BadPadding(pad));
        }
        payload_end -= pad;
    }
    Ok(Layout {
        ext_start,
        ext_len,
        ext_profile,
        payload_start: at,
        payload_end,
    })
}

impl<B: AsRef<[u8]>> RtpPacket<B> {
    /// Validates `buf` as an RTP packet (RFC 3550 §5.1): version 2, CSRC list, header
    /// extension and padding all inside the buffer. It does not check that the payload
    /// type is not an RTCP one; the demultiplexer does that (RFC 5761 §4).
    pub fn parse(buf: B) -> Result<Self, RtpError> {
        let layout = layout(buf.as_ref())?;
        Ok(RtpPacket { buf, layout })
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.as_bytes()[1] & 0x80 != 0
    }

    /// The payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        self.as_bytes()[1] & 0x7f
    }

    /// The sequence number.
    pub fn sequence_number(&self) -> u16 {
        be16(self.as_bytes(), 2)
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.as_bytes(), 4)
    }

    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        be32(self.as_bytes(), 8)
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + '_ {
        let n = usize::from(self.as_bytes()[0] & 0x0f);
        (0..n).map(move |i| be32(self.as_bytes(), FIXED_HEADER_LEN + 4 * i))
    }

    /// Whether the packet has padding (the P bit).
    pub fn has_padding(&self) -> bool {
        self.as_bytes()[0] & 0x20 != 0
    }

    /// Length of the header: fixed part, CSRCs and the extension block.
    pub fn header_len(&self) -> usize {
        self.layout.payload_start
    }

    /// The payload, without padding.
    pub fn payload(&self) -> &[u8] {
        &self.as_bytes()[self.layout.payload_start..self.layout.payload_end]
    }

    /// Number of padding bytes at the end (0 without the P bit).
    pub fn padding_len(&self) -> usize {
        self.as_bytes().len() - self.layout.payload_end
    }

    /// The form of the header extension block, if the packet has one.
    pub fn extension_form(&self) -> Option<ExtensionForm> {
        if self.as_bytes()[0] & 0x10 == 0 {
            return None;
        }
        Some(ExtensionForm::from_profile(self.layout.ext_profile))
    }

    /// The RFC 8285 elements of the extension block (nothing for other profiles).
    pub fn extensions(&self) -> ExtensionIter<'_> {
        let data = &self.as_bytes()[self.layout.ext_start..][..self.layout.ext_len];
        ExtensionIter::new(self.extension_form(), data)
    }

    /// The value of the extension element with local id `id`, if present.
    pub fn extension(&self, id: u8) -> Option<&[u8]> {
        let (start, len) = self.find_extension(id)?;
        Some(&self.as_bytes()[start..start + len])
    }

    /// Absolute (start, len) of the value of extension `id` in the buffer.
    fn find_extension(&self, id: u8) -> Option<(usize, usize)> {
        if id == 0 {
            return None;
        }
        self.extensions()
            .find(|e| e.id == id)
            .map(|e| (self.layout.ext_start + e.offset, e.value_len))
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<B> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// Sets the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        let b = self.bytes_mut();
        b[1] = (b[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Sets the payload type; only the low 7 bits of `pt` are used.
    pub fn set_payload_type(&mut self, pt: u8) {
        let b = self.bytes_mut();
        b[1] = (b[1] & 0x80) | (pt & 0x7f);
    }

    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.bytes_mut()[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    /// Sets the RTP timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.bytes_mut()[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.bytes_mut()[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    /// The payload, writable (for codec-level rewrites such as a VP8 picture id).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (s, e) = (self.layout.payload_start, self.layout.payload_end);
        &mut self.bytes_mut()[s..e]
    }

    /// The value of extension `id`, writable in place (its length cannot change).
    pub fn extension_mut(&mut self, id: u8) -> Option<&mut [u8]> {
        let (start, len) = self.find_extension(id)?;
        Some(&mut self.bytes_mut()[start..start + len])
    }

    /// Rewrites the local ids of the extension elements in place (RFC 8285 §5): `map`
    /// gives each element's new id, or `None` to remove it. A removed element is
    /// overwritten with padding bytes (zero), which both forms skip (RFC 8285 §4.2, §4.3),
    /// and so is one whose new id does not fit the block's form (over 14 in the one-byte
    /// form). Returns the number of elements kept.
    pub fn remap_extension_ids(&mut self, mut map: impl FnMut(u8) -> Option<u8>) -> usize {
        let Some(form) = self.extension_form() else {
            return 0;
        };
        if form == ExtensionForm::Other {
            return 0;
        }
        let ext_start = self.layout.ext_start;
        // Element positions are collected first: the iterator borrows the buffer.
        let mut elems = [(0usize, 0usize, 0u8); 32];
        let mut n = 0;
        for e in self.extensions() {
            if n == elems.len() {
                break;
            }
            elems[n] = (e.offset, e.value_len, e.id);
            n += 1;
        }
        let mut kept = 0;
        for &(offset, len, id) in &elems[..n] {
            let header_len = if form == ExtensionForm::OneByte { 1 } else { 2 };
            let head = ext_start + offset - header_len;
            let new =
                map(id).filter(|&new| new != 0 && (form == ExtensionForm::TwoByte || new <= 14));
            let b = self.bytes_mut();
            match new {
                Some(new) if form == ExtensionForm::OneByte => {
                    b[head] = (new << 4) | (b[head] & 0x0f);
                    kept += 1;
                }
                Some(new) => {
                    b[head] = new;
                    kept += 1;
                }
                None => b[head..head + header_len + len].fill(0),
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::extensions::ExtensionElement;

    /// V=2, X=1, PT 96, seq 0x1234, ts 0xdeadbeef, ssrc 0x11223344, one-byte extensions:
    /// id 1 (mid "0"), id 3 (3-byte abs-send-time), then a padding byte; payload 4 bytes.
    fn sample() -> Vec<u8> {
        vec![
            0x90, 0x60, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x22, 0x33, 0x44, // fixed
            0xbe, 0xde, 0x00, 0x02, // one-byte form, 2 words
            0x10, b'0', // id 1, len 1
            0x32, 0xaa, 0xbb, 0xcc, // id 3, len 3
            0x00, 0x00, // padding
            1, 2, 3, 4, // payload
        ]
    }

    #[test]
    fn reads_every_field() {
        let b = sample();
        let p = RtpPacket::parse(&b[..]).unwrap();
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 96);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x1122_3344);
        assert_eq!(p.csrcs().count(), 0);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(p.extension_form(), Some(ExtensionForm::OneByte));
        let ext: Vec<ExtensionElement> = p.extensions().collect();
        assert_eq!(ext.len(), 2);
        assert_eq!(p.extension(1), Some(&b"0"[..]));
        assert_eq!(p.extension(3), Some(&[0xaa, 0xbb, 0xcc][..]));
        assert_eq!(p.extension(2), None);
        assert_eq!(p.extension(0), None);
    }

    #[test]
    fn csrcs_and_padding() {
        let mut b = vec![0xa2, 0xe0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 8]); // two CSRCs
        b.extend_from_slice(&[9, 9, 0, 0, 3]); // payload 9 9, 3 bytes padding
        let p = RtpPacket::parse(&b[..]).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 0x60);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(p.payload(), &[9, 9]);
        assert_eq!(p.padding_len(), 3);
        assert_eq!(p.extension_form(), None);
        assert_eq!(p.extensions().count(), 0);
    }

    #[test]
    fn rewrites_in_place() {
        let mut b = sample();
        let mut p = RtpPacket::parse(&mut b[..]).unwrap();
        p.set_marker(true);
        p.set_payload_type(101);
        p.set_sequence_number(7);
        p.set_timestamp(90_000);
        p.set_ssrc(0xcafe_babe);
        p.extension_mut(3).unwrap().copy_from_slice(&[1, 2, 3]);
        p.payload_mut()[0] = 0xff;
        let p = RtpPacket::parse(&b[..]).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 101);
        assert_eq!(p.sequence_number(), 7);
        assert_eq!(p.timestamp(), 90_000);
        assert_eq!(p.ssrc(), 0xcafe_babe);
        assert_eq!(p.extension(3), Some(&[1, 2, 3][..]));
        assert_eq!(p.extension(1), Some(&b"0"[..]));
        assert_eq!(p.payload(), &[0xff, 2, 3, 4]);
    }

    #[test]
    fn remaps_and_removes_extensions() {
        let mut b = sample();
        let mut p = RtpPacket::parse(&mut b[..]).unwrap();
        // 1 -> 5, 3 removed.
        let kept = p.remap_extension_ids(|id| (id == 1).then_some(5));
        assert_eq!(kept, 1);
        let p = RtpPacket::parse(&b[..]).unwrap();
        assert_eq!(p.extension(5), Some(&b"0"[..]));
        assert_eq!(p.extension(1), None);
        assert_eq!(p.extension(3), None);
        assert_eq!(p.extensions().count(), 1);
        // An id that does not fit the one-byte form is removed too.
        let mut b = sample();
        let mut p = RtpPacket::parse(&mut b[..]).unwrap();
        assert_eq!(p.remap_extension_ids(|id| Some(id + 14)), 0);
        assert_eq!(p.extensions().count(), 0);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn two_byte_form() {
        let mut b = vec![0x90, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend_from_slice(&[0x10, 0x00, 0x00, 0x02]); // two-byte form, 2 words
        b.extend_from_slice(&[20, 3, 7, 8, 9, 0, 0, 0]); // id 20 len 3, id 0 (empty)
        b.push(0x55);
        let mut p = RtpPacket::parse(&mut b[..]).unwrap();
        assert_eq!(p.extension_form(), Some(ExtensionForm::TwoByte));
        assert_eq!(p.extension(20), Some(&[7, 8, 9][..]));
        assert_eq!(p.remap_extension_ids(|_| Some(200)), 1);
        assert_eq!(p.extension(200), Some(&[7, 8, 9][..]));
        assert_eq!(p.payload(), &[0x55]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            RtpPacket::parse(&[0x80u8; 11][..]).unwrap_err(),
            RtpError::TooShort(11)
        );
        let mut b = sample();
        b[0] = 0x50;
        assert!(matches!(
            RtpPacket::parse(&b[..]),
            Err(RtpError::BadVersion(1))
        ));
        let mut b = sample();
        b[0] |= 0x0f; // 15 CSRCs
        assert!(matches!(
            RtpPacket::parse(&b[..]),
            Err(RtpError::Truncated(_))
        ));
        let mut b = sample();
        b[15] = 0x40; // extension of 64 words
        assert!(matches!(
            RtpPacket::parse(&b[..]),
            Err(RtpError::Truncated(_))
        ));
        let mut b = sample();
        b[0] |= 0x20;
        *b.last_mut().unwrap() = 0; // padding count 0
        assert!(matches!(
            RtpPacket::parse(&b[..]),
            Err(RtpError::BadPadding(0))
        ));
        *b.last_mut().unwrap() = 5; // more padding than payload
        assert!(matches!(
            RtpPacket::parse(&b[..]),
            Err(RtpError::BadPadding(5))
        ));
        let b = &sample()[..14]; // cut inside the extension header
        assert!(matches!(RtpPacket::parse(b), Err(RtpError::Truncated(_))));
    }

    #[test]
    fn random_buffers_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = [0u8; 64];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            for (i, byte) in buf.iter_mut().enumerate() {
                *byte = (x >> (i % 8 * 8)) as u8 ^ i as u8;
            }
            buf[0] = 0x80 | (buf[0] & 0x3f);
            if let Ok(mut p) = RtpPacket::parse(&mut buf[..len]) {
                let _ = (p.payload().len(), p.extensions().count(), p.extension(1));
                p.remap_extension_ids(|id| Some(id ^ 1));
                let _ = p.extensions().count();
            }
        }
    }
}
