//! VP8 payload descriptor (RFC 7741 §4.2) and payload header (§4.3).

use super::frame_info::FrameInfo;

/// Key frame: start of partition 0 (S=1, PID=0) whose VP8 payload header has P=0
/// (RFC 7741 §4.3); the temporal layer is TID when the T bit says it is present.
pub fn frame_info(p: &[u8]) -> FrameInfo {
    let mut info = FrameInfo::default();
    let Some(&b0) = p.first() else {
        return info;
    };
    let start = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(at) else {
            return info;
        };
        at += 1;
        if x & 0x80 != 0 {
            // Picture id: 15 bits when M is set, else 7.
            let Some(&pic) = p.get(at) else {
                return info;
            };
            at += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            let Some(&tk) = p.get(at) else {
                return info;
            };
            if x & 0x20 != 0 {
                info.temporal_layer = Some(tk >> 6);
            }
            at += 1;
        }
    }
    if start
        && pid == 0
        && let Some(&header) = p.get(at)
    {
        info.key_frame = header & 0x01 == 0;
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_delta_frames() {
        // X=1 S=1 PID=0; I=1 L=1 T=1; 15-bit picture id; TL0PICIDX; TID=2; header P=0.
        let key = [0x90, 0xe0, 0x81, 0x23, 0x05, 0x80, 0x10, 0x02, 0x00];
        assert_eq!(
            frame_info(&key),
            FrameInfo {
                key_frame: true,
                temporal_layer: Some(2),
                spatial_layer: None,
            }
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
        assert_eq!(frame_info(&[0x10]), FrameInfo::default());
        assert_eq!(frame_info(&[0x90, 0x80]), FrameInfo::default());
    }
}
