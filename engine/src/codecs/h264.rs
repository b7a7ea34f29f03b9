//! H264 RTP payloads (RFC 6184 §5.6-5.8): single NAL units, STAP-A and FU-A.

use super::frame_info::FrameInfo;

const IDR: u8 = 5;
const SPS: u8 = 7;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

fn is_key_nal(nal_type: u8) -> bool {
    nal_type == IDR || nal_type == SPS
}

/// Key frame: an IDR slice or an SPS, alone, inside a STAP-A, or starting a FU-A.
pub fn frame_info(p: &[u8]) -> FrameInfo {
    let mut info = FrameInfo::default();
    let Some(&b0) = p.first() else {
        return info;
    };
    info.key_frame = match b0 & 0x1f {
        STAP_A => {
            let mut at = 1;
            let mut key = false;
            while at + 2 < p.len() {
                let size = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                if size == 0 || at + 2 + size > p.len() {
                    break;
                }
                key |= is_key_nal(p[at + 2] & 0x1f);
                at += 2 + size;
            }
            key
        }
        FU_A => p
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key_nal(fu & 0x1f)),
        t => is_key_nal(t),
    };
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_forms() {
        assert!(frame_info(&[0x65, 1, 2]).key_frame); // IDR
        assert!(frame_info(&[0x67, 1]).key_frame); // SPS
        assert!(!frame_info(&[0x41, 1]).key_frame); // non-IDR slice
        // STAP-A with SPS, PPS.
        assert!(frame_info(&[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1]).key_frame);
        assert!(!frame_info(&[0x78, 0, 2, 0x68, 1]).key_frame);
        assert!(
            !frame_info(&[0x78, 0, 9, 0x67]).key_frame,
            "truncated STAP-A"
        );
        // FU-A start of an IDR, and its continuation.
        assert!(frame_info(&[0x7c, 0x85, 1]).key_frame);
        assert!(!frame_info(&[0x7c, 0x05, 1]).key_frame);
        assert!(!frame_info(&[0x7c]).key_frame);
        assert!(!frame_info(&[]).key_frame);
    }
}
