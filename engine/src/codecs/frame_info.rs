//! What a video payload says about its frame, as every codec's parser reports it: whether
//! the packet starts a key frame (a consumer starts and switches layers only there) and
//! its temporal and spatial layers.

/// What a payload says about its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameInfo {
    /// The packet starts (or contains the start of) a key frame.
    pub key_frame: bool,
    /// Temporal layer id, when the payload carries one.
    pub temporal_layer: Option<u8>,
    /// Spatial layer id (VP9 SID), when the payload carries one.
    pub spatial_layer: Option<u8>,
}
