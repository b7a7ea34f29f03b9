//! VP9 payload descriptor (draft-ietf-payload-vp9-16 §4.2).

use super::frame_info::FrameInfo;

/// Key frame: not inter-picture predicted (P=0), start of a frame (B=1), and the base
/// spatial layer when layer indices are present (SID=0). Temporal layer from TID.
pub fn frame_info(p: &[u8]) -> FrameInfo {
    let mut info = FrameInfo::default();
    let Some(&b0) = p.first() else {
        return info;
    };
    let (i, pbit, l, begin) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x08 != 0,
    );
    let mut at = 1;
    if i {
        let Some(&pic) = p.get(at) else {
            return info;
        };
        at += if pic & 0x80 != 0 { 2 } else { 1 };
    }
    let mut base_spatial = true;
    if l {
        let Some(&layers) = p.get(at) else {
            return info;
        };
        info.temporal_layer = Some(layers >> 5);
        base_spatial = (layers >> 1) & 0x07 == 0;
    }
    info.key_frame = !pbit && begin && base_spatial;
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_frames_and_layers() {
        // I=1 P=0 L=1 B=1; 7-bit picture id; TID=1 SID=0.
        assert_eq!(
            frame_info(&[0xa8, 0x05, 0x20, 0x00]),
            FrameInfo {
                key_frame: true,
                temporal_layer: Some(1)
            }
        );
        // Spatial layer 1 of a key picture: not where a consumer may start.
        assert!(!frame_info(&[0xa8, 0x05, 0x02, 0x00]).key_frame);
        // Inter-predicted.
        assert!(!frame_info(&[0xe8, 0x05, 0x20]).key_frame);
        // Not the beginning of a frame.
        assert!(!frame_info(&[0xa0, 0x05, 0x20]).key_frame);
        assert_eq!(frame_info(&[0xa8]), FrameInfo::default());
        assert!(frame_info(&[0x08]).key_frame);
    }
}
