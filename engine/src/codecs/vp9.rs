//! VP9 frame information (draft-ietf-payload-vp9-16 §4.2), from the payload descriptor.

use super::frame_info::{FrameInfo, PayloadDescriptor};
use super::vp9_descriptor::Vp9Descriptor;

/// Key frame: not inter-picture predicted (P=0), start of a frame (B=1), and the base
/// spatial layer when layer indices are present (SID=0). Layers from TID and SID.
pub fn frame_info(p: &[u8]) -> FrameInfo {
    let Some(d) = Vp9Descriptor::parse(p) else {
        return FrameInfo::default();
    };
    FrameInfo {
        key_frame: d.key_frame(),
        temporal_layer: d.temporal_layer,
        spatial_layer: d.spatial_layer,
        descriptor: Some(PayloadDescriptor::Vp9(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_frames_and_layers() {
        // I=1 P=0 L=1 B=1; 7-bit picture id; TID=1 SID=0; TL0PICIDX.
        let info = frame_info(&[0xa8, 0x05, 0x20, 0x00]);
        assert!(info.key_frame);
        assert_eq!(info.temporal_layer, Some(1));
        assert_eq!(info.spatial_layer, Some(0));
        assert_eq!(info.vp9().and_then(|d| d.picture_id), Some(5));
        // Spatial layer 1 of a key picture: not where a consumer may start.
        let upper = frame_info(&[0xa8, 0x05, 0x02, 0x00]);
        assert!(!upper.key_frame);
        assert_eq!(upper.spatial_layer, Some(1));
        // Inter-predicted.
        assert!(!frame_info(&[0xe8, 0x05, 0x20, 0x00]).key_frame);
        // Not the beginning of a frame.
        assert!(!frame_info(&[0xa0, 0x05, 0x20, 0x00]).key_frame);
        assert_eq!(frame_info(&[0xa8]), FrameInfo::default());
        assert!(frame_info(&[0x08]).key_frame);
    }
}
