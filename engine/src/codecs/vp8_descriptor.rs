//! A mutable view of the VP8 payload descriptor (RFC 7741 §4.2): the picture id, TL0PICIDX,
//! temporal layer id, layer-sync bit and key index, read and rewritten in place. Parsed once;
//! a payload too short for what its flags announce is no descriptor (`None`).

/// Where the optional fields of one descriptor lie (offsets into the payload; a
/// descriptor is at most 6 bytes long). The producer parses it once per packet and every
/// consumer reads it from there (`FrameInfo::descriptor`): the offsets hold in each
/// consumer's copy, whose payload is the producer's unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// Offset and width (7 or 15 bits) of the picture id.
    picture_id: Option<(u8, u32)>,
    /// Offset of TL0PICIDX.
    tl0_pic_idx: Option<u8>,
    /// Offset of the TID/Y/KEYIDX byte, and whether TID is present (T bit).
    tid_byte: Option<(u8, bool)>,
    /// Start of the partition with index 0 (S=1, PID=0).
    partition_start: bool,
    /// Offset of the VP8 payload header, after the descriptor.
    header_at: u8,
}

impl Vp8Descriptor {
    /// Reads the descriptor at the start of `payload`.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b0 = *payload.first()?;
        let mut d = Vp8Descriptor {
            picture_id: None,
            tl0_pic_idx: None,
            tid_byte: None,
            partition_start: b0 & 0x10 != 0 && b0 & 0x07 == 0,
            header_at: 1,
        };
        if b0 & 0x80 == 0 {
            return Some(d);
        }
        let x = *payload.get(1)?;
        let mut at: u8 = 2;
        if x & 0x80 != 0 {
            let m = *payload.get(usize::from(at))? & 0x80 != 0;
            d.picture_id = Some((at, if m { 15 } else { 7 }));
            at += if m { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            d.tl0_pic_idx = Some(at);
            at += 1;
        }
        if x & 0x30 != 0 {
            d.tid_byte = Some((at, x & 0x20 != 0));
            at += 1;
        }
        if payload.len() < usize::from(at) {
            return None;
        }
        d.header_at = at;
        Some(d)
    }

    /// The picture id and its width in bits.
    pub fn picture_id(&self, payload: &[u8]) -> Option<(u16, u32)> {
        let (at, bits) = self.picture_id?;
        let at = usize::from(at);
        Some(if bits == 15 {
            (
                u16::from_be_bytes([payload[at], payload[at + 1]]) & 0x7fff,
                15,
            )
        } else {
            (u16::from(payload[at] & 0x7f), 7)
        })
    }

    /// Writes the picture id (in the width the packet has).
    pub fn set_picture_id(&self, payload: &mut [u8], id: u16) {
        if let Some((at, bits)) = self.picture_id {
            let at = usize::from(at);
            if bits == 15 {
                let v = 0x8000 | (id & 0x7fff);
                payload[at..at + 2].copy_from_slice(&v.to_be_bytes());
            } else {
                payload[at] = (id & 0x7f) as u8;
            }
        }
    }

    /// TL0PICIDX.
    pub fn tl0_pic_idx(&self, payload: &[u8]) -> Option<u8> {
        self.tl0_pic_idx.map(|at| payload[usize::from(at)])
    }

    /// Writes TL0PICIDX.
    pub fn set_tl0_pic_idx(&self, payload: &mut [u8], v: u8) {
        if let Some(at) = self.tl0_pic_idx {
            payload[usize::from(at)] = v;
        }
    }

    /// The temporal layer id, when present.
    pub fn tid(&self, payload: &[u8]) -> Option<u8> {
        match self.tid_byte {
            Some((at, true)) => Some(payload[usize::from(at)] >> 6),
            _ => None,
        }
    }

    /// The layer-sync bit (Y): this frame depends only on base-layer frames.
    pub fn layer_sync(&self, payload: &[u8]) -> bool {
        matches!(self.tid_byte, Some((at, true)) if payload[usize::from(at)] & 0x20 != 0)
    }

    /// Whether the packet starts a key frame (RFC 7741 §4.3: P=0 at the partition start).
    pub fn key_frame(&self, payload: &[u8]) -> bool {
        self.partition_start
            && payload
                .get(usize::from(self.header_at))
                .is_some_and(|h| h & 0x01 == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_rewrites_in_place() {
        // X S; I L T; M + 15-bit picture id 0x0123; TL0PICIDX 5; TID 2, Y; header P=0.
        let mut p = [0x90, 0xe0, 0x81, 0x23, 0x05, 0xa0, 0x10, 0x02, 0x00];
        let d = Vp8Descriptor::parse(&p).unwrap();
        assert_eq!(d.picture_id(&p), Some((0x0123, 15)));
        assert_eq!(d.tl0_pic_idx(&p), Some(5));
        assert_eq!(d.tid(&p), Some(2));
        assert!(d.layer_sync(&p));
        assert!(d.key_frame(&p));
        d.set_picture_id(&mut p, 0x7fff);
        d.set_tl0_pic_idx(&mut p, 9);
        assert_eq!(d.picture_id(&p), Some((0x7fff, 15)));
        assert_eq!(d.tl0_pic_idx(&p), Some(9));
        assert_eq!(p[5], 0xa0, "the TID byte untouched");
        // Every truncation parses to None or to a descriptor that fits.
        for n in 0..p.len() {
            if let Some(d) = Vp8Descriptor::parse(&p[..n]) {
                let _ = (d.picture_id(&p[..n]), d.tid(&p[..n]), d.key_frame(&p[..n]));
            }
        }
        // 7-bit picture id.
        let p7 = [0x90, 0x80, 0x05, 0x00];
        let d = Vp8Descriptor::parse(&p7).unwrap();
        assert_eq!(d.picture_id(&p7), Some((5, 7)));
        assert_eq!(d.tid(&p7), None);
    }
}
