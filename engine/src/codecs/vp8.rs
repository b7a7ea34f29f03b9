//! VP8 frame information (RFC 7741 §4.2, §4.3), from the payload descriptor's one parser
//! ([`Vp8Descriptor`]).

use super::frame_info::{FrameInfo, PayloadDescriptor};
use super::vp8_descriptor::Vp8Descriptor;

/// Key frame: start of partition 0 (S=1, PID=0) whose VP8 payload header has P=0
/// (RFC 7741 §4.3); the temporal layer is TID when the T bit says it is present.
pub fn frame_info(p: &[u8]) -> FrameInfo {
    let Some(d) = Vp8Descriptor::parse(p) else {
        return FrameInfo::default();
    };
    FrameInfo {
        key_frame: d.key_frame(p),
        temporal_layer: d.tid(p),
        spatial_layer: None,
        descriptor: Some(PayloadDescriptor::Vp8(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_delta_frames() {
        // X=1 S=1 PID=0; I=1 L=1 T=1; 15-bit picture id; TL0PICIDX; TID=2; header P=0.
        let key = [0x90, 0xe0, 0x81, 0x23, 0x05, 0x80, 0x10, 0x02, 0x00];
        let info = frame_info(&key);
        assert!(info.key_frame);
        assert_eq!(info.temporal_layer, Some(2));
        assert_eq!(info.spatial_layer, None);
        assert_eq!(
            info.vp8().and_then(|d| d.picture_id(&key)),
            Some((0x0123, 15))
        );
        let mut delta = key;
        delta[6] = 0x11; // P=1
        assert!(!frame_info(&delta).key_frame);
        // Not the start of the partition: never a key frame.
        let mut cont = key;
        cont[0] = 0x80;
        assert!(!frame_info(&cont).key_frame);
        // Minimal descriptor without extensions.
        assert!(frame_info(&[0x10, 0x00]).key_frame);
        assert!(!frame_info(&[0x10, 0x01]).key_frame);
        // A descriptor without the payload header after it: parsed, not a key frame.
        let bare = frame_info(&[0x10]);
        assert!(!bare.key_frame && bare.temporal_layer.is_none());
        // Truncated: no descriptor at all.
        assert_eq!(frame_info(&[0x90, 0x80]), FrameInfo::default());
    }
}
