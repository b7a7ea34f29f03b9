//! One encoding of a producer as the router receives it (mediasoup's `RtpStreamRecv`): its
//! SSRCs (signalled, or learnt from RID and repaired-RID, RFC 8852), the router-side SSRC
//! it is forwarded under, whether it is alive (a simulcast layer the sender stopped), its
//! received bit rate, its reception statistics, and (video) the store of its packets in
//! router terms that its consumers' NACK answers are written from.

use std::time::{Duration, Instant};

use super::recent_rates::RecentRates;
use super::recv_stats::RecvStats;
use crate::rtp_stream::{PacketStore, RateCalculator};

/// A simulcast layer is stalled when a lower layer of the same producer delivered a frame
/// this much later than its last packet: the encodings carry the same frames, so the
/// sender stopped this one (its own bandwidth estimate dropped it), long before
/// [`STREAM_INACTIVE_AFTER`] says so.
pub const STALLED_BEHIND_LOWER: Duration = Duration::from_millis(500);

/// Whether layer `i` of `streams` is usable for forwarding at `now`: active, and not
/// stalled behind a lower layer (see [`STALLED_BEHIND_LOWER`]).
pub fn is_usable(streams: &[RecvStream], i: usize, now: Instant) -> bool {
    let Some(s) = streams.get(i) else {
        return false;
    };
    if !s.is_active(now) {
        return false;
    }
    let last = s.last_packet.unwrap_or(now);
    !streams[..i].iter().any(|lower| {
        lower
            .last_packet
            .is_some_and(|l| l > last + STALLED_BEHIND_LOWER)
    })
}

/// Temporal layers told apart (VP8's TID has two bits).
pub const MAX_TEMPORAL_LAYERS: usize = 4;

/// Spatial layers told apart (VP9 k-SVC modes go up to L3).
pub const MAX_SPATIAL_LAYERS: usize = 4;

/// The window its rates are measured over.
const RATE_WINDOW: Duration = crate::rtp_stream::rate_calculator::DEFAULT_WINDOW;

/// A stream that sent nothing for this long is inactive (a dead simulcast layer).
pub const STREAM_INACTIVE_AFTER: Duration = Duration::from_millis(1500);

/// One encoding of the producer as received.
#[derive(Debug)]
pub struct RecvStream {
    /// The sender's SSRC, signalled or learnt from the first packet with its RID.
    pub ssrc: Option<u32>,
    /// Its RTX SSRC.
    pub rtx_ssrc: Option<u32>,
    /// Its RID.
    pub rid: Option<String>,
    /// The router-side SSRC.
    pub mapped_ssrc: u32,
    /// When its last media packet arrived.
    pub last_packet: Option<Instant>,
    /// When it last became active (its first packet after [`STREAM_INACTIVE_AFTER`]
    /// without any).
    active_since: Option<Instant>,
    /// Media packets received.
    pub packets: u64,
    /// Their bytes (stats).
    pub bytes: u64,
    /// The stream's received bit rate (what forwarding this layer costs).
    pub rate: RateCalculator,
    /// Its rate once per window, so that a burst (a key frame) is not read as a layer
    /// that grew (see [`RecvStream::cost_scale`]).
    recent: RecentRates,
    /// The received bit rate of each layer, `[spatial][temporal]` (VP9 SID, VP8 and VP9
    /// TID), once the stream has carried layer ids; a stream without spatial layers has
    /// one row. Forwarding temporal layer `t` of spatial layer `s` costs the sum over the
    /// layers up to both (see [`RecvStream::layer_costs`]).
    pub layer_rates: Vec<Vec<RateCalculator>>,
    /// Reception statistics, NACKs and score (RTCP towards the sender).
    pub stats: RecvStats,
    /// Its packets in router terms, for its consumers' retransmissions.
    pub store: Option<PacketStore>,
}

impl RecvStream {
    /// A stream not heard yet.
    pub fn new(
        ssrc: Option<u32>,
        rtx_ssrc: Option<u32>,
        rid: Option<String>,
        mapped_ssrc: u32,
        stats: RecvStats,
        store: Option<PacketStore>,
    ) -> Self {
        RecvStream {
            ssrc,
            rtx_ssrc,
            rid,
            mapped_ssrc,
            last_packet: None,
            active_since: None,
            packets: 0,
            bytes: 0,
            rate: RateCalculator::default(),
            recent: RecentRates::default(),
            layer_rates: Vec::new(),
            stats,
            store,
        }
    }

    /// Whether the stream sent anything within [`STREAM_INACTIVE_AFTER`].
    pub fn is_active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < STREAM_INACTIVE_AFTER)
    }

    /// A media packet of `size` bytes arrived (not a retransmission), of spatial layer
    /// `spatial` and temporal layer `temporal` when its payload says.
    pub fn on_media(
        &mut self,
        now: Instant,
        size: usize,
        spatial: Option<u8>,
        temporal: Option<u8>,
    ) {
        if !self.is_active(now) {
            self.active_since = Some(now);
            self.recent.reset();
        }
        self.last_packet = Some(now);
        self.packets += 1;
        self.bytes += size as u64;
        self.rate.update(now, size);
        if self.rate_settled(now) {
            let rate = &self.rate;
            self.recent.sample(now, RATE_WINDOW, || rate.rate(now));
        }
        if spatial.is_none() && temporal.is_none() {
            return;
        }
        let (s, t) = (
            usize::from(spatial.unwrap_or(0)),
            usize::from(temporal.unwrap_or(0)),
        );
        if s >= MAX_SPATIAL_LAYERS || t >= MAX_TEMPORAL_LAYERS {
            return;
        }
        if self.layer_rates.len() <= s {
            self.layer_rates.resize_with(s + 1, Vec::new);
        }
        let row = &mut self.layer_rates[s];
        if row.len() <= t {
            row.resize_with(t + 1, RateCalculator::default);
        }
        row[t].update(now, size);
    }

    /// Whether its rates were measured over a whole window since it became active (before
    /// that they ramp up from zero and understate what forwarding it costs).
    pub fn rate_settled(&self, now: Instant) -> bool {
        self.is_active(now)
            && self
                .active_since
                .is_some_and(|t| now.saturating_duration_since(t) >= RATE_WINDOW)
    }

    /// What to multiply the rates measured now by for the bandwidth allocation: below 1
    /// while the last window carried a burst the recent windows did not (a key frame;
    /// `recent_rates.rs` says why), else 1.
    pub fn cost_scale(&self, now: Instant) -> f64 {
        self.recent.cost_scale(self.rate.rate(now))
    }

    /// What forwarding temporal layers up to each `t` of the base spatial layer costs
    /// now, bit/s (empty when the stream carries no layer ids).
    pub fn temporal_layer_rates(&self, now: Instant) -> Vec<u64> {
        self.layer_costs(now).into_iter().next().unwrap_or_default()
    }

    /// What forwarding up to spatial layer `s` and temporal layer `t` costs now, bit/s, as
    /// `costs[s][t]`: the sum of the rates of every layer at or below both (an SVC spatial
    /// layer is forwarded with those below it). Every row has as many temporal layers as
    /// the widest; empty when the stream carries no layer ids.
    pub fn layer_costs(&self, now: Instant) -> Vec<Vec<u64>> {
        let width = self.layer_rates.iter().map(Vec::len).max().unwrap_or(0);
        let mut costs: Vec<Vec<u64>> = Vec::with_capacity(self.layer_rates.len());
        for (s, row) in self.layer_rates.iter().enumerate() {
            let mut sum = 0u64;
            let own: Vec<u64> = (0..width)
                .map(|t| {
                    sum += row.get(t).map_or(0, |r| u64::from(r.rate(now)));
                    sum
                })
                .collect();
            let below = s.checked_sub(1).map(|b| costs[b].clone());
            costs.push(match below {
                Some(b) => own.iter().zip(b).map(|(o, b)| o + b).collect(),
                None => own,
            });
        }
        costs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_costs_add_up_lower_layers() {
        let mut s = RecvStream::new(None, None, None, 1, RecvStats::new(90_000, false), None);
        let t0 = Instant::now();
        // 1 s of packets: (spatial, temporal, bytes per 10 ms).
        for i in 0..100u32 {
            let now = t0 + Duration::from_millis(u64::from(i) * 10);
            for (sid, tid, size) in [
                (0, 0, 100),
                (0, 1, 50),
                (1, 0, 200),
                (1, 1, 100),
                (2, 0, 400),
            ] {
                s.on_media(now, size, Some(sid), Some(tid));
            }
        }
        let now = t0 + Duration::from_millis(995);
        let kbps = |v: u64| (v + 500) / 1000;
        let costs: Vec<Vec<u64>> = s
            .layer_costs(now)
            .into_iter()
            .map(|r| r.into_iter().map(kbps).collect())
            .collect();
        assert_eq!(costs, vec![vec![80, 120], vec![240, 360], vec![560, 680]]);
        assert_eq!(
            s.temporal_layer_rates(now)
                .into_iter()
                .map(kbps)
                .collect::<Vec<_>>(),
            vec![80, 120]
        );
        // Ids beyond what is told apart are counted in the stream's rate only.
        s.on_media(now, 100, Some(7), Some(0));
        s.on_media(now, 100, Some(0), Some(7));
        assert_eq!(s.layer_rates.len(), 3);
        // A stream without ids has no layer costs.
        let plain = RecvStream::new(None, None, None, 1, RecvStats::new(90_000, false), None);
        assert!(plain.layer_costs(now).is_empty());
    }
}
