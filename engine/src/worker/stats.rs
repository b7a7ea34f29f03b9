//! The snapshot a worker core publishes about itself (issue 10: `/metrics`, `GET
//! /meetmedia/api/stats`, the console's `dumpWorkers`): its rooms, transports, producers
//! and consumers with their stats, and its counters. The driver adds what only it knows
//! (port, busy time, queue depths).

use std::time::Instant;

use super::core::WorkerCore;
use crate::transport::Connection;
use crate::worker_stats::{DropCounts, PipeCounts, RoomOnWorker, TransportStats, WorkerStats};

impl WorkerCore {
    /// Everything this core can say about itself at `now`, `worker` being its index.
    pub fn worker_stats(&self, now: Instant, worker: usize) -> WorkerStats {
        let mut rooms: Vec<_> = self.rooms.keys().copied().collect();
        rooms.sort_unstable();
        let mut producers = Vec::new();
        let mut consumers = Vec::new();
        for r in self.routers.values() {
            r.media_stats(now, &self.transports, &mut producers, &mut consumers);
        }
        let transports = self
            .transports
            .values()
            .filter_map(|t| {
                let drops = t.connection.drops();
                Some(TransportStats {
                    transport_id: t.id,
                    peer_id: t.peer,
                    room_id: self.routers.get(t.router)?.room,
                    kind: match t.connection {
                        Connection::WebRtc(_) => "webrtc",
                        Connection::Plain(_) => "plain",
                    },
                    state: if t.is_connected() {
                        "connected"
                    } else {
                        "connecting"
                    },
                    dropped_packets: drops.total(),
                    wrong_source_packets: drops.wrong_source,
                    estimate_bps: t.bandwidth.estimate().bps(),
                })
            })
            .collect();
        let c = self.counters();
        let room_details = rooms
            .iter()
            .filter_map(|room| {
                let router = self.routers.get(*self.rooms.get(room)?)?;
                let ts = router.transports();
                let mut peers: Vec<_> = ts
                    .iter()
                    .filter_map(|tk| self.transports.get(*tk).map(|t| t.peer))
                    .collect();
                peers.sort_unstable();
                peers.dedup();
                Some(RoomOnWorker {
                    room_id: *room,
                    peers: peers.len(),
                    transports: ts.len(),
                    mirrored_producers: router.mirror_count(),
                })
            })
            .collect();
        WorkerStats {
            worker,
            rooms,
            room_details,
            shed_level: self.shed,
            pipes: PipeCounts {
                dropped_stale: c.pipe_dropped,
                ..PipeCounts::default()
            },
            packets_in: self.traffic.packets_in,
            bytes_in: self.traffic.bytes_in,
            packets_out: self.traffic.packets_out,
            bytes_out: self.traffic.bytes_out,
            dropped: DropCounts {
                unknown_source: c.unknown_source,
                transport: c.transport_dropped,
                wrong_source: c.wrong_source,
                unknown_ssrc: c.unknown_ssrc,
                malformed_rtcp: c.malformed_rtcp,
                stale_after_stall: c.stale_after_stall,
            },
            feedback: self.feedback,
            dtls_failures: self.traffic.dtls_failures,
            ice_failures: self.traffic.ice_failures,
            transport_panics: self.traffic.transport_panics,
            transports,
            producers,
            consumers,
            bandwidth: self.bandwidth_stats(worker),
            ..WorkerStats::default()
        }
    }
}
