//! What a video payload says about its frame, as every codec's parser reports it: whether
//! the packet starts a key frame (a consumer starts and switches layers only there), its
//! temporal and spatial layers, and the codec's payload descriptor, parsed once by the
//! producer for every consumer's layer filter.

use super::vp8_descriptor::Vp8Descriptor;
use super::vp9_descriptor::Vp9Descriptor;

/// A payload descriptor, as parsed once per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadDescriptor {
    /// VP8 (RFC 7741 §4.2): where its picture id, TL0PICIDX and TID lie.
    Vp8(Vp8Descriptor),
    /// VP9 (draft-ietf-payload-vp9-16 §4.2): its flags and layer indices.
    Vp9(Vp9Descriptor),
}

/// What a payload says about its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameInfo {
    /// The packet starts (or contains the start of) a key frame.
    pub key_frame: bool,
    /// Temporal layer id, when the payload carries one.
    pub temporal_layer: Option<u8>,
    /// Spatial layer id (VP9 SID), when the payload carries one.
    pub spatial_layer: Option<u8>,
    /// The payload descriptor (VP8, VP9), when the payload has a well-formed one.
    pub descriptor: Option<PayloadDescriptor>,
}

impl FrameInfo {
    /// The VP8 descriptor, if this is a VP8 payload that has one.
    pub fn vp8(&self) -> Option<&Vp8Descriptor> {
        match &self.descriptor {
            Some(PayloadDescriptor::Vp8(d)) => Some(d),
            _ => None,
        }
    }

    /// The VP9 descriptor, if this is a VP9 payload that has one.
    pub fn vp9(&self) -> Option<&Vp9Descriptor> {
        match &self.descriptor {
            Some(PayloadDescriptor::Vp9(d)) => Some(d),
            _ => None,
        }
    }
}
