//! A layer of a video producer (a simulcast encoding or an SVC spatial layer, and a
//! temporal layer within it) and the bitrate each layer costs.

use crate::bwe::Bitrate;

/// A spatial and temporal layer. Orders as the allocation steps through them: every
/// temporal layer of spatial layer 0, then of spatial layer 1, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Layer {
    /// Spatial layer (simulcast encoding index, or SVC spatial layer).
    pub spatial: u8,
    /// Temporal layer.
    pub temporal: u8,
}

impl Layer {
    /// `(spatial, temporal)`.
    pub const fn new(spatial: u8, temporal: u8) -> Self {
        Self { spatial, temporal }
    }
}

/// What forwarding each layer costs, as measured on the producer (a temporal layer's rate
/// includes the lower temporal layers of its spatial layer; with SVC a spatial layer's rate
/// includes the lower spatial layers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerRates {
    rates: Vec<(Layer, Bitrate)>,
}

impl LayerRates {
    /// From `(layer, rate)` pairs; layers with no rate (not received) are left out.
    pub fn new(mut rates: Vec<(Layer, Bitrate)>) -> Self {
        rates.retain(|(_, r)| r.bps() > 0);
        rates.sort_by_key(|(l, _)| *l);
        rates.dedup_by_key(|(l, _)| *l);
        Self { rates }
    }

    /// Every layer with a rate, lowest first.
    pub fn layers(&self) -> impl Iterator<Item = (Layer, Bitrate)> + '_ {
        self.rates.iter().copied()
    }

    /// The rate of `layer`, if it is received.
    pub fn rate(&self, layer: Layer) -> Option<Bitrate> {
        self.rates
            .iter()
            .find(|(l, _)| *l == layer)
            .map(|(_, r)| *r)
    }

    /// The lowest layer received.
    pub fn lowest(&self) -> Option<(Layer, Bitrate)> {
        self.rates.first().copied()
    }

    /// The next layer above `layer` that is received and at most `max`.
    pub fn next_above(&self, layer: Layer, max: Layer) -> Option<(Layer, Bitrate)> {
        self.rates
            .iter()
            .copied()
            .find(|(l, _)| *l > layer && l.spatial <= max.spatial && l.temporal <= max.temporal)
    }
}
