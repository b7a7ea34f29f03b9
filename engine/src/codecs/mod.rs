//! What the router needs to know from inside RTP payloads: whether a packet starts a key
//! frame (a consumer starts and switches layers only there) and its temporal layer.
//! Each parser is a read-only view over the payload; anything it cannot parse is "not a
//! key frame", never an error.

pub mod frame_info;
pub mod h264;
pub mod vp8;
pub mod vp8_descriptor;
pub mod vp8_layer_filter;
pub mod vp9;
pub mod vp9_descriptor;
pub mod vp9_svc_filter;

pub use frame_info::{FrameInfo, PayloadDescriptor};

/// The video codecs the router offers (contract section 2), by MIME subtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// `video/VP8` (RFC 7741).
    Vp8,
    /// `video/VP9` (draft-ietf-payload-vp9).
    Vp9,
    /// `video/H264` (RFC 6184).
    H264,
}

impl VideoCodec {
    /// The codec of a MIME type (`video/VP8`, any case); `None` for audio, RTX and others.
    pub fn from_mime(mime: &str) -> Option<Self> {
        let sub = mime.split_once('/')?.1;
        if sub.eq_ignore_ascii_case("vp8") {
            Some(VideoCodec::Vp8)
        } else if sub.eq_ignore_ascii_case("vp9") {
            Some(VideoCodec::Vp9)
        } else if sub.eq_ignore_ascii_case("h264") {
            Some(VideoCodec::H264)
        } else {
            None
        }
    }
}

/// Parses the payload of a packet of `codec`.
pub fn frame_info(codec: VideoCodec, payload: &[u8]) -> FrameInfo {
    match codec {
        VideoCodec::Vp8 => vp8::frame_info(payload),
        VideoCodec::Vp9 => vp9::frame_info(payload),
        VideoCodec::H264 => h264::frame_info(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_from_mime() {
        assert_eq!(VideoCodec::from_mime("video/VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/h264"), Some(VideoCodec::H264));
        assert_eq!(VideoCodec::from_mime("video/vp9"), Some(VideoCodec::Vp9));
        assert_eq!(VideoCodec::from_mime("audio/opus"), None);
        assert_eq!(VideoCodec::from_mime("video/rtx"), None);
        assert_eq!(VideoCodec::from_mime("vp8"), None);
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut x: u32 = 2_463_534_242;
        let mut buf = [0u8; 40];
        for _ in 0..30_000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let len = (x % 41) as usize;
            for c in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
                let _ = frame_info(c, &buf[..len]);
            }
        }
    }
}
