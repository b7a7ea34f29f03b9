//! How a consumer chooses among its producer's packets (issue 16, "the consumer this
//! needs"): one layer policy per consumer type, each owning its state. A policy admits a
//! packet by its stream (the simulcast encoding it arrived on, key frames only for a
//! start or a switch), then selects it by its frame (the VP8 temporal filter, the VP9 SVC
//! filter), reading the payload descriptor the producer parsed once
//! ([`FrameInfo::descriptor`]). Everything else (numbers, timestamps, header extensions,
//! retransmissions, reports) is the consumer's and the same for every type.

use std::time::Instant;

use crate::codecs::FrameInfo;
use crate::codecs::vp8_descriptor::Vp8Descriptor;
use crate::codecs::vp8_layer_filter::{Vp8LayerFilter, Vp8Rewrite, Vp8Verdict};
use crate::ortc::MediaKind;
use crate::router::recv_stream::RecvStream;
use kolabmeet_media_types::replies::ConsumerType;

/// What the bandwidth allocation of its transport gives a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocated {
    /// Nothing allocated yet: the highest layer that arrives.
    Unknown,
    /// Up to this spatial layer (a lower one while this one does not arrive) and this
    /// temporal layer.
    UpTo(usize, u8),
    /// Nothing: even its lowest layer does not fit (video only).
    Paused,
}

/// Whether a packet's stream is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Not the stream forwarded (or not a key frame to start it on).
    No,
    /// The stream being forwarded.
    Continue,
    /// The first packet of a stream (a start or a switch): the consumer's numbers and
    /// timestamps continue onto it.
    Start,
}

/// Whether a packet of an admitted stream goes out, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// Not forwarded (a layer filtered out): its sequence number is skipped.
    Drop,
    /// Forwarded.
    Forward {
        /// Set the RTP marker (the end of a picture as forwarded, SVC).
        marker: bool,
        /// The spatial layer forwarded changed with this packet (SVC; a simulcast
        /// switch is [`Admit::Start`]).
        switched: bool,
        /// The VP8 descriptor's ids to write into the consumer's copy.
        vp8: Option<(Vp8Descriptor, Vp8Rewrite)>,
    },
}

/// Behaviour common to the layer policies.
pub trait LayerSelection {
    /// Its consumer type.
    fn consumer_type(&self) -> ConsumerType;
    /// Admits (or not) a packet of `stream`; `key_frame` when it starts a key frame.
    fn admit(&mut self, kind: MediaKind, stream: usize, key_frame: bool) -> Admit;
    /// Selects (or drops) a packet of an admitted stream; `started` when it was
    /// [`Admit::Start`]. `payload` is the producer's.
    fn select(&mut self, frame: &FrameInfo, payload: &[u8], started: bool) -> Selected;
    /// Makes `payload`, a copy of a packet this consumer sent before, what it sent (the
    /// ids of its VP8 descriptor) and says whether its marker was set (SVC); `None` when
    /// it should not be resent (its picture's ids are forgotten).
    fn resent(&self, payload: &mut [u8]) -> Option<bool>;
    /// What its transport's allocation now gives it: the filters' targets.
    fn set_allocated(&mut self, allocated: Allocated);
    /// The stream it wants from `streams` under `allocated`; whether the target moved
    /// so that a key frame is needed.
    fn update_target(
        &mut self,
        now: Instant,
        kind: MediaKind,
        allocated: Allocated,
        streams: &[RecvStream],
    ) -> bool;
    /// It wants nothing (video paused for bandwidth).
    fn clear_target(&mut self);
    /// The stream wanted.
    fn target_stream(&self) -> Option<usize>;
    /// The stream being forwarded.
    fn current_stream(&self) -> Option<usize>;
    /// It waits for a key frame of its stream's before it forwards (a switch within the
    /// stream, SVC).
    fn wants_key_frame(&self) -> bool;
    /// The next packet starts afresh on a key frame.
    fn reset(&mut self);
    /// The spatial layer it forwards now.
    fn current_spatial_layer(&self) -> Option<usize>;
    /// The spatial layer it targets, when it targets a stream.
    fn target_spatial_layer(&self) -> Option<usize>;
    /// The temporal layer it forwards now.
    fn current_temporal_layer(&self) -> Option<u8>;
    /// It can drop temporal layers (a VP8 filter), so the allocation may give it part of
    /// an encoding.
    fn filters_temporal_layers(&self) -> bool;
}

/// The stream state of a consumer of a producer with one stream (simple and SVC
/// consumers): whether it wants it (not paused for bandwidth) and has started on it.
#[derive(Debug, Default)]
pub struct OneStream {
    started: bool,
    wanted: bool,
}

impl OneStream {
    /// [`LayerSelection::admit`]: stream 0 only, started on a key frame (audio on any
    /// packet) once wanted.
    pub fn admit(&mut self, kind: MediaKind, stream: usize, key_frame: bool) -> Admit {
        if stream != 0 {
            return Admit::No;
        }
        if self.started {
            return Admit::Continue;
        }
        if !self.wanted || (kind == MediaKind::Video && !key_frame) {
            return Admit::No;
        }
        self.started = true;
        Admit::Start
    }

    /// Wants the stream unless `allocated` pauses this video; whether it started to want
    /// it without having started (a key frame is needed).
    pub fn update(&mut self, kind: MediaKind, allocated: Allocated) -> bool {
        let wanted = !(allocated == Allocated::Paused && kind == MediaKind::Video);
        let changed = wanted != self.wanted;
        self.wanted = wanted;
        changed && wanted && !self.started
    }

    /// Whether it wants the stream.
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// Wants nothing (paused for bandwidth).
    pub fn clear_target(&mut self) {
        self.wanted = false;
    }

    /// The stream wanted.
    pub fn target_stream(&self) -> Option<usize> {
        self.wanted.then_some(0)
    }

    /// The stream forwarded.
    pub fn current_stream(&self) -> Option<usize> {
        self.started.then_some(0)
    }

    /// The next packet starts afresh.
    pub fn reset(&mut self) {
        self.started = false;
    }
}

/// The VP8 temporal filter's part of [`LayerSelection::select`] (simple and simulcast
/// consumers of VP8): rebased onto a new stream when it starts.
pub fn select_vp8(
    filter: Option<&mut Vp8LayerFilter>,
    frame: &FrameInfo,
    payload: &[u8],
    started: bool,
) -> Selected {
    let forward = |vp8| Selected::Forward {
        marker: false,
        switched: false,
        vp8,
    };
    let Some(f) = filter else {
        return forward(None);
    };
    if started {
        f.rebase();
    }
    // No descriptor to filter by: leave it to the decoder.
    let Some(d) = frame.vp8() else {
        return forward(None);
    };
    match f.process(d, payload) {
        Vp8Verdict::Forward(ids) => forward(Some((*d, ids))),
        Vp8Verdict::Drop => Selected::Drop,
    }
}

/// The VP8 temporal filter's part of [`LayerSelection::resent`].
pub fn resent_vp8(filter: Option<&Vp8LayerFilter>, payload: &mut [u8]) -> Option<bool> {
    match filter {
        Some(f) => f.rewrite_sent(payload).then_some(false),
        None => Some(false),
    }
}

/// The VP8 temporal filter's target under `allocated`.
pub fn allocate_vp8(filter: Option<&mut Vp8LayerFilter>, allocated: Allocated) {
    if let Some(f) = filter {
        f.set_target(match allocated {
            Allocated::UpTo(_, t) => t,
            _ => u8::MAX,
        });
    }
}
