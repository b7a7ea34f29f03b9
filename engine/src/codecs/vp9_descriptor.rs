//! A read-only view of the VP9 payload descriptor (draft-ietf-payload-vp9-16 §4.2): the
//! flags, the picture id and the layer indices a consumer selects spatial and temporal
//! layers by. Parsed once; a payload too short for what its flags announce is no
//! descriptor (`None`).
//!
//! ```text
//!  |I|P|L|F|B|E|V|Z|      required
//!  |M| PICTURE ID  |      I
//!  | EXTENDED PID  |      M
//!  | TID |U| SID |D|      L
//!  |   TL0PICIDX   |      L and not F (non-flexible mode)
//! ```

/// What one packet's descriptor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp9Descriptor {
    /// P: the picture is predicted from earlier pictures.
    pub inter_picture_predicted: bool,
    /// F: flexible mode.
    pub flexible: bool,
    /// B: the packet starts a (layer) frame.
    pub begins_frame: bool,
    /// E: the packet ends a (layer) frame.
    pub ends_frame: bool,
    /// The picture id (7 or 15 bits), when present (I).
    pub picture_id: Option<u16>,
    /// Temporal layer id (TID), when layer indices are present (L).
    pub temporal_layer: Option<u8>,
    /// U: switching up point (a move up to a higher temporal layer may start here).
    pub switching_up_point: bool,
    /// Spatial layer id (SID), when layer indices are present (L).
    pub spatial_layer: Option<u8>,
    /// D: inter-layer dependency (predicted from the spatial layer below).
    pub inter_layer_dependency: bool,
}

impl Vp9Descriptor {
    /// Reads the descriptor at the start of `payload`.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b0 = *payload.first()?;
        let mut d = Vp9Descriptor {
            inter_picture_predicted: b0 & 0x40 != 0,
            flexible: b0 & 0x10 != 0,
            begins_frame: b0 & 0x08 != 0,
            ends_frame: b0 & 0x04 != 0,
            ..Default::default()
        };
        let mut at = 1;
        if b0 & 0x80 != 0 {
            let pic = *payload.get(at)?;
            if pic & 0x80 != 0 {
                let low = *payload.get(at + 1)?;
                d.picture_id = Some(u16::from_be_bytes([pic & 0x7f, low]));
                at += 2;
            } else {
                d.picture_id = Some(u16::from(pic));
                at += 1;
            }
        }
        if b0 & 0x20 != 0 {
            let layers = *payload.get(at)?;
            d.temporal_layer = Some(layers >> 5);
            d.switching_up_point = layers & 0x10 != 0;
            d.spatial_layer = Some((layers >> 1) & 0x07);
            d.inter_layer_dependency = layers & 0x01 != 0;
            at += 1;
            if !d.flexible {
                payload.get(at)?; // TL0PICIDX
            }
        }
        Some(d)
    }

    /// The packet starts a key picture: not inter-picture predicted, the start of a frame,
    /// and of its base spatial layer (where a receiver can start decoding).
    pub fn key_frame(&self) -> bool {
        !self.inter_picture_predicted && self.begins_frame && self.spatial_layer.unwrap_or(0) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_ids_and_layers() {
        // I=1 P=0 L=1 F=0 B=1 E=0; 15-bit picture id 0x1234; TID=2 U=1 SID=1 D=1; TL0PICIDX.
        let d = Vp9Descriptor::parse(&[0xa8, 0x92, 0x34, 0x53, 0x07]).unwrap();
        assert_eq!(d.picture_id, Some(0x1234));
        assert_eq!(d.temporal_layer, Some(2));
        assert!(d.switching_up_point);
        assert_eq!(d.spatial_layer, Some(1));
        assert!(d.inter_layer_dependency);
        assert!(d.begins_frame && !d.ends_frame && !d.flexible);
        // Spatial layer 1 of a key picture is no place to start decoding.
        assert!(!d.key_frame());
        // 7-bit picture id, SID 0, E set.
        let d = Vp9Descriptor::parse(&[0xac, 0x05, 0x00, 0x01]).unwrap();
        assert_eq!(d.picture_id, Some(5));
        assert!(d.key_frame() && d.ends_frame);
        // Inter-predicted.
        assert!(
            !Vp9Descriptor::parse(&[0xe8, 0x05, 0x00, 0x01])
                .unwrap()
                .key_frame()
        );
        // No layer indices: a key frame by P and B alone.
        assert!(Vp9Descriptor::parse(&[0x08]).unwrap().key_frame());
        // Flexible mode: no TL0PICIDX after the layer byte.
        assert!(Vp9Descriptor::parse(&[0xb8, 0x05, 0x20]).is_some());
    }

    #[test]
    fn short_payloads_are_no_descriptor() {
        assert_eq!(Vp9Descriptor::parse(&[]), None);
        assert_eq!(Vp9Descriptor::parse(&[0x80]), None);
        assert_eq!(Vp9Descriptor::parse(&[0x80, 0x80]), None);
        assert_eq!(Vp9Descriptor::parse(&[0xa0, 0x05]), None);
        // Non-flexible with L: TL0PICIDX missing.
        assert_eq!(Vp9Descriptor::parse(&[0xa0, 0x05, 0x20]), None);
    }
}
