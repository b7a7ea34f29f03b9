//! The stats of a router's producers and consumers (issue 10: `GET /meetmedia/api/stats`,
//! contract section 3: "the stats of its transports, producers, consumers"), read from
//! the counters the forwarding path keeps anyway; built about once a second by the worker.

use std::time::Instant;

use super::bandwidth_allocation::layer_stats;
use super::room::Router;
use crate::arena::{Arena, TransportKey};
use crate::transport::MediaTransport;
use crate::worker_stats::{ConsumerStats, ProducerStats};

impl Router {
    /// Appends the stats of every producer and consumer of the room at `now`;
    /// `transports` are the worker's (for their ids).
    pub fn media_stats(
        &self,
        now: Instant,
        transports: &Arena<TransportKey, MediaTransport>,
        producers: &mut Vec<ProducerStats>,
        consumers: &mut Vec<ConsumerStats>,
    ) {
        for p in self.producers.values() {
            // A mirror's stats are its origin worker's.
            let Some(t) = p.transport().and_then(|t| transports.get(t)) else {
                continue;
            };
            producers.push(ProducerStats {
                producer_id: p.id,
                peer_id: p.peer,
                transport_id: t.id,
                kind: p.kind,
                paused: p.paused,
                packets_received: p.streams.iter().map(|s| s.stats.received).sum(),
                bytes_received: p.streams.iter().map(|s| s.bytes).sum(),
                packets_retransmitted: p.streams.iter().map(|s| s.stats.retransmitted).sum(),
                bitrate_bps: p.streams.iter().map(|s| u64::from(s.rate.rate(now))).sum(),
                scores: p.streams.iter().map(|s| s.stats.score()).collect(),
                encodings: p.streams.len(),
            });
        }
        for c in self.consumers.values() {
            let (Some(t), Some(p)) = (transports.get(c.transport), self.producers.get(c.producer))
            else {
                continue;
            };
            let sent = c.stream.packets;
            let lost = u64::try_from(c.stream.reported_lost).unwrap_or(0);
            consumers.push(ConsumerStats {
                consumer_id: c.id,
                peer_id: c.peer,
                transport_id: t.id,
                producer_id: p.id,
                kind: c.kind,
                packets_sent: sent,
                bytes_sent: c.stream.octets,
                packets_retransmitted: c.stream.retransmitted,
                loss: if sent + lost == 0 {
                    0.0
                } else {
                    lost as f64 / (sent + lost) as f64
                },
                rtt_ms: c.stream.rtt().map(|d| d.as_secs_f64() * 1000.0),
                layers: layer_stats(c),
            });
        }
    }
}
