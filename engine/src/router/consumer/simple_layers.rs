//! The layer policy of a simple consumer (mediasoup `SimpleConsumer`): the producer's one
//! stream, started on a key frame (audio on any packet), its temporal layers filtered to
//! what the allocation gives it when the codec is VP8.

use std::time::Instant;

use super::layer_policy::{
    Admit, Allocated, LayerSelection, OneStream, Selected, allocate_vp8, resent_vp8, select_vp8,
};
use crate::codecs::FrameInfo;
use crate::codecs::vp8_layer_filter::Vp8LayerFilter;
use crate::ortc::MediaKind;
use crate::router::recv_stream::RecvStream;
use kolabmeet_media_types::replies::ConsumerType;

/// A simple consumer's layer state.
#[derive(Debug)]
pub struct SimpleLayers {
    stream: OneStream,
    vp8: Option<Vp8LayerFilter>,
}

impl SimpleLayers {
    /// A simple consumer's layers, with the VP8 temporal filter for VP8.
    pub fn new(vp8: Option<Vp8LayerFilter>) -> Self {
        Self {
            stream: OneStream::default(),
            vp8,
        }
    }
}

impl LayerSelection for SimpleLayers {
    fn consumer_type(&self) -> ConsumerType {
        ConsumerType::Simple
    }

    fn admit(&mut self, kind: MediaKind, stream: usize, key_frame: bool) -> Admit {
        self.stream.admit(kind, stream, key_frame)
    }

    fn select(&mut self, frame: &FrameInfo, payload: &[u8], started: bool) -> Selected {
        select_vp8(self.vp8.as_mut(), frame, payload, started)
    }

    fn resent(&self, payload: &mut [u8]) -> Option<bool> {
        resent_vp8(self.vp8.as_ref(), payload)
    }

    fn set_allocated(&mut self, allocated: Allocated) {
        allocate_vp8(self.vp8.as_mut(), allocated);
    }

    fn update_target(
        &mut self,
        _now: Instant,
        kind: MediaKind,
        allocated: Allocated,
        _streams: &[RecvStream],
    ) -> bool {
        self.stream.update(kind, allocated)
    }

    fn clear_target(&mut self) {
        self.stream.clear_target();
    }

    fn target_stream(&self) -> Option<usize> {
        self.stream.target_stream()
    }

    fn current_stream(&self) -> Option<usize> {
        self.stream.current_stream()
    }

    fn wants_key_frame(&self) -> bool {
        false
    }

    fn reset(&mut self) {
        self.stream.reset();
    }

    fn current_spatial_layer(&self) -> Option<usize> {
        self.current_stream()
    }

    fn target_spatial_layer(&self) -> Option<usize> {
        self.target_stream()
    }

    fn current_temporal_layer(&self) -> Option<u8> {
        self.vp8.as_ref().and_then(Vp8LayerFilter::current)
    }

    fn filters_temporal_layers(&self) -> bool {
        self.vp8.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_starts_on_any_packet_video_on_a_key_frame_and_not_while_paused() {
        let now = Instant::now();
        let mut audio = SimpleLayers::new(None);
        assert_eq!(
            audio.admit(MediaKind::Audio, 0, false),
            Admit::No,
            "no target yet"
        );
        assert!(audio.update_target(now, MediaKind::Audio, Allocated::Paused, &[]));
        assert_eq!(audio.admit(MediaKind::Audio, 0, false), Admit::Start);
        assert_eq!(audio.admit(MediaKind::Audio, 0, false), Admit::Continue);

        let mut video = SimpleLayers::new(None);
        assert!(!video.update_target(now, MediaKind::Video, Allocated::Paused, &[]));
        assert_eq!(video.admit(MediaKind::Video, 0, true), Admit::No, "paused");
        assert!(video.update_target(now, MediaKind::Video, Allocated::Unknown, &[]));
        assert_eq!(video.admit(MediaKind::Video, 0, false), Admit::No);
        assert_eq!(video.admit(MediaKind::Video, 0, true), Admit::Start);
        assert_eq!(video.current_stream(), Some(0));
        video.reset();
        assert_eq!(
            video.admit(MediaKind::Video, 0, false),
            Admit::No,
            "a key frame again"
        );
    }
}
