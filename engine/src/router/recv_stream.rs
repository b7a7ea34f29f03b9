//! One encoding of a producer as the router receives it (mediasoup's `RtpStreamRecv`): its
//! SSRCs (signalled, or learnt from RID and repaired-RID, RFC 8852), the router-side SSRC
//! it is forwarded under, whether it is alive (a simulcast layer the sender stopped), its
//! received bit rate, its reception statistics, and (video) the store of its packets in
//! router terms that its consumers' NACK answers are written from.

use std::time::{Duration, Instant};

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
    /// Media packets received.
    pub packets: u64,
    /// The stream's received bit rate (what forwarding this layer costs).
    pub rate: RateCalculator,
    /// The received bit rate of each temporal layer (VP8 TID 0, 1, 2, 3), once the stream
    /// has carried temporal layer ids: forwarding temporal layer `t` costs the sum up to
    /// `t`.
    pub temporal_rates: Vec<RateCalculator>,
    /// Reception statistics, NACKs and score (RTCP towards the sender).
    pub stats: RecvStats,
    /// Its packets in router terms, for its consumers' retransmissions (video).
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
            packets: 0,
            rate: RateCalculator::default(),
            temporal_rates: Vec::new(),
            stats,
            store,
        }
    }

    /// Whether the stream sent anything within [`STREAM_INACTIVE_AFTER`].
    pub fn is_active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < STREAM_INACTIVE_AFTER)
    }

    /// A media packet of `size` bytes arrived (not a retransmission), of temporal layer
    /// `temporal` when its payload says.
    pub fn on_media(&mut self, now: Instant, size: usize, temporal: Option<u8>) {
        self.last_packet = Some(now);
        self.packets += 1;
        self.rate.update(now, size);
        if let Some(t) = temporal
            .map(usize::from)
            .filter(|t| *t < MAX_TEMPORAL_LAYERS)
        {
            if self.temporal_rates.len() <= t {
                self.temporal_rates
                    .resize_with(t + 1, RateCalculator::default);
            }
            self.temporal_rates[t].update(now, size);
        }
    }

    /// What forwarding temporal layers up to each `t` costs now, bit/s (empty when the
    /// stream carries no temporal layer ids).
    pub fn temporal_layer_rates(&self, now: Instant) -> Vec<u64> {
        let mut sum = 0u64;
        self.temporal_rates
            .iter()
            .map(|r| {
                sum += u64::from(r.rate(now));
                sum
            })
            .collect()
    }
}
