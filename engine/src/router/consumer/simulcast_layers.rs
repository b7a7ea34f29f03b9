//! The layer policy of a simulcast consumer (mediasoup `SimulcastConsumer`): one of its
//! producer's encodings at a time, the highest usable one up to what its transport's
//! bandwidth allocation gives it, switched only on a key frame of the new one; its
//! temporal layers filtered to the allocation when the codec is VP8.

use std::time::Instant;

use super::layer_policy::{
    Admit, Allocated, LayerSelection, Selected, allocate_vp8, resent_vp8, select_vp8,
};
use crate::codecs::FrameInfo;
use crate::codecs::vp8_layer_filter::Vp8LayerFilter;
use crate::ortc::MediaKind;
use crate::router::recv_stream::{RecvStream, is_usable};
use kolabmeet_media_types::replies::ConsumerType;

/// A simulcast consumer's layer state.
#[derive(Debug)]
pub struct SimulcastLayers {
    /// The stream being forwarded.
    current: Option<usize>,
    /// The stream wanted.
    target: Option<usize>,
    vp8: Option<Vp8LayerFilter>,
}

impl SimulcastLayers {
    /// A simulcast consumer's layers, with the VP8 temporal filter for VP8.
    pub fn new(vp8: Option<Vp8LayerFilter>) -> Self {
        Self {
            current: None,
            target: None,
            vp8,
        }
    }
}

impl LayerSelection for SimulcastLayers {
    fn consumer_type(&self) -> ConsumerType {
        ConsumerType::Simulcast
    }

    fn admit(&mut self, kind: MediaKind, stream: usize, key_frame: bool) -> Admit {
        if self.current == Some(stream) {
            return Admit::Continue;
        }
        // Start or switch only onto the target, and only on a key frame.
        if self.target != Some(stream) || (kind == MediaKind::Video && !key_frame) {
            return Admit::No;
        }
        self.current = Some(stream);
        Admit::Start
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

    /// The highest usable stream up to the allocated one (any usable one when none up to
    /// it arrives).
    fn update_target(
        &mut self,
        now: Instant,
        kind: MediaKind,
        allocated: Allocated,
        streams: &[RecvStream],
    ) -> bool {
        let target = if allocated == Allocated::Paused && kind == MediaKind::Video {
            None
        } else {
            let last = streams.len().saturating_sub(1);
            let top = match allocated {
                Allocated::UpTo(layer, _) => layer.min(last),
                _ => last,
            };
            (0..=top)
                .rev()
                .find(|&i| is_usable(streams, i, now))
                .or_else(|| (top + 1..streams.len()).find(|&i| is_usable(streams, i, now)))
        };
        let changed = target != self.target;
        self.target = target;
        changed && target.is_some() && target != self.current
    }

    fn clear_target(&mut self) {
        self.target = None;
    }

    fn target_stream(&self) -> Option<usize> {
        self.target
    }

    fn current_stream(&self) -> Option<usize> {
        self.current
    }

    fn wants_key_frame(&self) -> bool {
        false
    }

    fn reset(&mut self) {
        self.current = None;
    }

    fn current_spatial_layer(&self) -> Option<usize> {
        self.current
    }

    fn target_spatial_layer(&self) -> Option<usize> {
        self.target
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
    fn switches_only_onto_the_target_and_only_on_its_key_frame() {
        let mut l = SimulcastLayers::new(None);
        l.target = Some(1);
        assert_eq!(
            l.admit(MediaKind::Video, 0, true),
            Admit::No,
            "not the target"
        );
        assert_eq!(
            l.admit(MediaKind::Video, 1, false),
            Admit::No,
            "not a key frame"
        );
        assert_eq!(l.admit(MediaKind::Video, 1, true), Admit::Start);
        assert_eq!(l.admit(MediaKind::Video, 1, false), Admit::Continue);
        l.target = Some(0);
        assert_eq!(
            l.admit(MediaKind::Video, 1, false),
            Admit::Continue,
            "until the switch"
        );
        assert_eq!(l.admit(MediaKind::Video, 0, false), Admit::No);
        assert_eq!(l.admit(MediaKind::Video, 0, true), Admit::Start);
        assert_eq!(
            l.admit(MediaKind::Video, 1, true),
            Admit::No,
            "the old stream is off"
        );
        assert_eq!(l.current_stream(), Some(0));
    }
}
