//! The layer policy of an SVC consumer (mediasoup `SvcConsumer`): the producer's one VP9
//! stream, its spatial and temporal layers selected by the SVC filter
//! ([`Vp9SvcFilter`]) from the descriptor the producer parsed, up to what the transport's
//! bandwidth allocation gives it; spatial switches wait for a key picture.

use std::time::Instant;

use super::layer_policy::{Admit, Allocated, LayerSelection, OneStream, Selected};
use crate::codecs::FrameInfo;
use crate::codecs::vp9_descriptor::Vp9Descriptor;
use crate::codecs::vp9_svc_filter::{SvcVerdict, Vp9SvcFilter};
use crate::ortc::MediaKind;
use crate::router::recv_stream::RecvStream;
use kolabmeet_media_types::replies::ConsumerType;

/// An SVC consumer's layer state.
#[derive(Debug)]
pub struct SvcLayers {
    /// Its one stream, started on a key picture.
    stream: OneStream,
    filter: Vp9SvcFilter,
    /// The filter's target when [`LayerSelection::update_target`] last looked.
    target_seen: Option<(u8, u8)>,
}

impl SvcLayers {
    /// The layers of a consumer of a producer with `spatial` x `temporal` layers (K-SVC
    /// when `ksvc`).
    pub fn new(spatial: u8, temporal: u8, ksvc: bool) -> Self {
        Self {
            stream: OneStream::default(),
            filter: Vp9SvcFilter::new(spatial, temporal, ksvc),
            target_seen: None,
        }
    }
}

impl LayerSelection for SvcLayers {
    fn consumer_type(&self) -> ConsumerType {
        ConsumerType::Svc
    }

    fn admit(&mut self, _kind: MediaKind, stream: usize, key_frame: bool) -> Admit {
        // SVC is video: a start waits for a key picture.
        self.stream.admit(MediaKind::Video, stream, key_frame)
    }

    fn select(&mut self, frame: &FrameInfo, _payload: &[u8], _started: bool) -> Selected {
        let before = self.filter.current().map(|c| c.0);
        let verdict = match frame.vp9() {
            Some(d) => self.filter.process(d),
            None => SvcVerdict::Forward { marker: false },
        };
        match verdict {
            SvcVerdict::Forward { marker } => Selected::Forward {
                marker,
                switched: before != self.filter.current().map(|c| c.0),
                vp8: None,
            },
            SvcVerdict::Drop => Selected::Drop,
        }
    }

    /// The marker as it was sent: the end of the highest spatial layer forwarded (the
    /// filter's current one, which a switch may have moved since).
    fn resent(&self, payload: &mut [u8]) -> Option<bool> {
        let top = self.filter.current().map(|(s, _)| s);
        Some(
            Vp9Descriptor::parse(payload).is_some_and(|d| {
                d.ends_frame && d.spatial_layer.is_some() && d.spatial_layer == top
            }),
        )
    }

    fn set_allocated(&mut self, allocated: Allocated) {
        let (s, t) = match allocated {
            Allocated::UpTo(s, t) => (u8::try_from(s).unwrap_or(u8::MAX), t),
            _ => (u8::MAX, u8::MAX),
        };
        self.filter.set_target(s, t);
    }

    /// The stream unless paused for bandwidth; a key frame is needed for a start, and
    /// for a spatial switch the filter waits on.
    fn update_target(
        &mut self,
        _now: Instant,
        kind: MediaKind,
        allocated: Allocated,
        _streams: &[RecvStream],
    ) -> bool {
        let start = self.stream.update(kind, allocated);
        let target = Some(self.filter.target());
        let switch = target != self.target_seen && self.filter.wants_key_frame();
        self.target_seen = target;
        start || (self.stream.wanted() && switch)
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
        self.filter.wants_key_frame()
    }

    fn reset(&mut self) {
        self.stream.reset();
        self.filter.reset();
    }

    fn current_spatial_layer(&self) -> Option<usize> {
        self.filter.current().map(|(s, _)| usize::from(s))
    }

    fn target_spatial_layer(&self) -> Option<usize> {
        self.stream
            .wanted()
            .then(|| usize::from(self.filter.target().0))
    }

    fn current_temporal_layer(&self) -> Option<u8> {
        self.filter.current().map(|(_, t)| t)
    }

    fn filters_temporal_layers(&self) -> bool {
        false
    }
}
