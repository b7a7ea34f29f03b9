//! What a probe cluster showed (libwebrtc's `ProbeBitrateEstimator`): a cluster is a short
//! burst of padding (or RTX) sent faster than the estimate; the rate at which the receiver
//! got it, when close to the rate it was sent at, says the path carries at least that.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::bitrate::Bitrate;
use super::feedback_reader::PacketResult;

/// A cluster is judged once this many of its packets were reported received...
const MIN_PACKETS: usize = 5;
/// ...and this share of its bytes.
const MIN_RECEIVED_SHARE: f64 = 0.8;
/// Send or receive spans outside this range say nothing (timer hiccups, clock lies).
const MIN_SPAN: Duration = Duration::from_millis(1);
const MAX_SPAN: Duration = Duration::from_secs(1);
/// Received much slower than sent: the path carries the receive rate, discounted.
const RECEIVE_SLOWER: f64 = 0.9;
const RECEIVE_DISCOUNT: f64 = 0.95;
/// A receive rate this far above the send rate is a clock artefact: ignored.
const MAX_RATIO: f64 = 2.0;
/// Clusters followed at once (older ones are forgotten).
const MAX_CLUSTERS: usize = 8;

#[derive(Debug)]
struct Cluster {
    planned_bytes: u64,
    first_sent: Option<Instant>,
    last_sent: Option<Instant>,
    last_sent_size: u64,
    first_arrival: Option<i64>,
    first_arrival_size: u64,
    last_arrival: Option<i64>,
    bytes: u64,
    packets: usize,
    done: bool,
}

/// The probe clusters of one transport and their results.
#[derive(Debug, Default)]
pub struct ProbeEstimator {
    clusters: HashMap<u32, Cluster>,
}

impl ProbeEstimator {
    /// A cluster `id` of `planned_bytes` is being sent.
    pub fn start(&mut self, id: u32, planned_bytes: u64) {
        if self.clusters.len() >= MAX_CLUSTERS
            && let Some(oldest) = self.clusters.keys().min().copied()
        {
            self.clusters.remove(&oldest);
        }
        self.clusters.insert(
            id,
            Cluster {
                planned_bytes,
                first_sent: None,
                last_sent: None,
                last_sent_size: 0,
                first_arrival: None,
                first_arrival_size: 0,
                last_arrival: None,
                bytes: 0,
                packets: 0,
                done: false,
            },
        );
    }

    /// A packet of cluster `id` was reported received (`r.arrival_us` set); returns the
    /// cluster's result once it can be judged.
    pub fn on_result(&mut self, id: u32, r: &PacketResult) -> Option<Bitrate> {
        let c = self.clusters.get_mut(&id)?;
        let arrival = r.arrival_us?;
        if c.done {
            return None;
        }
        let size = u64::from(r.size);
        c.packets += 1;
        c.bytes += size;
        if c.first_sent.is_none_or(|t| r.sent < t) {
            c.first_sent = Some(r.sent);
        }
        if c.last_sent.is_none_or(|t| r.sent >= t) {
            c.last_sent = Some(r.sent);
            c.last_sent_size = size;
        }
        if c.first_arrival.is_none_or(|t| arrival < t) {
            c.first_arrival = Some(arrival);
            c.first_arrival_size = size;
        }
        c.last_arrival = Some(c.last_arrival.map_or(arrival, |t| t.max(arrival)));
        if c.packets < MIN_PACKETS || (c.bytes as f64) < c.planned_bytes as f64 * MIN_RECEIVED_SHARE
        {
            return None;
        }
        let send_span = c.last_sent?.saturating_duration_since(c.first_sent?);
        let recv_us = c.last_arrival?.saturating_sub(c.first_arrival?);
        let recv_span = Duration::from_micros(u64::try_from(recv_us).ok()?);
        // Spans too short so far say nothing yet: the media counted in a cluster can make
        // up most of its bytes and leave in one burst (an SVC picture, all its layers in
        // one stream), and the cluster's later packets widen them (libwebrtc judges a
        // cluster again with every packet).
        if send_span < MIN_SPAN || recv_span < MIN_SPAN {
            return None;
        }
        c.done = true;
        if send_span > MAX_SPAN || recv_span > MAX_SPAN {
            return None;
        }
        // The last packet sent adds nothing to the send span, the first received nothing
        // to the receive span.
        let send = Bitrate::from_bytes(c.bytes - c.last_sent_size, send_span);
        let recv = Bitrate::from_bytes(c.bytes - c.first_arrival_size, recv_span);
        let ratio = recv.bps() as f64 / send.bps().max(1) as f64;
        if ratio > MAX_RATIO {
            return None;
        }
        let result = if (recv.bps() as f64) < RECEIVE_SLOWER * send.bps() as f64 {
            recv.scale(RECEIVE_DISCOUNT)
        } else {
            send.min(recv)
        };
        tracing::debug!(
            target: "kolabmeet::bwe",
            cluster = id,
            sent = %send,
            received = %recv,
            result = %result,
            packets = c.packets,
            "probe cluster judged"
        );
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(sent: Instant, arrival_us: i64) -> PacketResult {
        PacketResult {
            seq: 0,
            sent,
            size: 1200,
            arrival_us: Some(arrival_us),
            cluster: Some(1),
        }
    }

    #[test]
    fn a_cluster_through_a_narrower_path_measures_the_path() {
        let t0 = Instant::now();
        let mut p = ProbeEstimator::default();
        p.start(1, 10 * 1200);
        // Sent at 4.8 Mbps (one packet per 2 ms), received at 2.4 Mbps (one per 4 ms).
        let mut got = None;
        for i in 0..10i64 {
            got = got.or(p.on_result(
                1,
                &result(t0 + Duration::from_millis(2 * i as u64), 10_000 + 4000 * i),
            ));
        }
        let r = got.expect("judged").bps();
        assert!((2_100_000..2_500_000).contains(&r), "{r}");
        // Judged once; unknown clusters and lies say nothing.
        assert_eq!(p.on_result(1, &result(t0, 0)), None);
        assert_eq!(p.on_result(7, &result(t0, 0)), None);
        p.start(2, 5 * 1200);
        let lies: Vec<_> = (0..5)
            .filter_map(|i| {
                p.on_result(
                    2,
                    &result(t0 + Duration::from_millis(i), i64::MAX - i as i64),
                )
            })
            .collect();
        assert!(lies.is_empty());
    }

    #[test]
    fn a_burst_of_media_at_the_start_of_a_cluster_waits_for_its_probes() {
        let t0 = Instant::now();
        let mut p = ProbeEstimator::default();
        p.start(1, 8 * 1200);
        // Seven packets of media counted in the cluster leave at once (more than the
        // share of its bytes it is judged on, but no send span)...
        for i in 0..7i64 {
            assert_eq!(p.on_result(1, &result(t0, 1000 * i)), None);
        }
        // ...then its probe packet, 7 ms later: judged on all eight, at about 9 Mbit/s.
        let r = p.on_result(1, &result(t0 + Duration::from_millis(7), 7500));
        let r = r.expect("judged").bps();
        assert!((8_500_000..9_700_000).contains(&r), "{r}");
    }
}
