//! RTCP the worker sends on its own (contract section 6, "Loss and key frames"): every
//! [`REPORT_INTERVAL`], a sender report with the stream's CNAME for every stream it sends
//! (RFC 3550 §6.4.1, §6.5.1) and a receiver report block for every stream it receives
//! (§6.4.2), producer scores from those blocks (`consumerScoreChanged`); and, at every
//! timer tick, generic NACKs (RFC 4585 §6.2.1) towards producers for the gaps their
//! streams' NACK generators found.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kolabmeet_net::rtcp::{
    SenderReportData, write_nack, write_receiver_report, write_sdes_cname, write_sender_report,
};

use super::core::WorkerCore;
use crate::ids::{ConsumerId, ProducerId, TransportId};
use crate::media_engine::{ConsumerScore, EngineEvent};
use crate::rtp_stream::ntp_from_unix;
use crate::transport::FEEDBACK_SENDER_SSRC;

/// How often reports go out. RFC 3550 §6.2 scales the interval with the session; at
/// WebRTC rates the 5 % RTCP share allows far more, and mediasoup reports video streams
/// every second (at most), which keeps receivers' RTT and lip sync fresh.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A compound packet is sent once it grows past this (well under any path MTU).
const COMPOUND_FLUSH: usize = 1000;

impl WorkerCore {
    /// Tells the core the wall clock (time since the Unix epoch) at `now`, for the NTP
    /// timestamps of its sender reports. The driver calls it at start; without it NTP
    /// time starts at the Unix epoch.
    pub fn set_wall_clock(&mut self, now: Instant, since_unix_epoch: Duration) {
        self.media.wall_clock = Some((now, since_unix_epoch));
    }

    /// The NTP timestamp of `now` (RFC 5905 §6: seconds since 1900, 32.32 fixed point).
    pub(super) fn ntp_time(&self, now: Instant) -> u64 {
        let (at, unix) = self.media.wall_clock.unwrap_or((now, Duration::ZERO));
        let unix = if now >= at {
            unix + (now - at)
        } else {
            unix.saturating_sub(at - now)
        };
        ntp_from_unix(unix)
    }

    /// Sends one round of reports on every connected transport, and schedules the next
    /// while any producer or consumer is left.
    pub(super) fn send_reports(&mut self, now: Instant) {
        // One pass over consumers and one over producers, grouped by transport (not a
        // scan of every consumer per transport).
        let mut senders: HashMap<TransportId, Vec<ConsumerId>> = HashMap::new();
        for c in self
            .media
            .consumers
            .values()
            .filter(|c| c.stream.has_sent())
        {
            senders.entry(c.transport).or_default().push(c.id);
        }
        let mut receivers: HashMap<TransportId, Vec<ProducerId>> = HashMap::new();
        for p in self.media.producers.values() {
            receivers.entry(p.transport).or_default().push(p.id);
        }
        for (t, ids) in senders {
            self.send_sender_reports(now, t, &ids);
        }
        for (t, ids) in receivers {
            self.send_receiver_reports(now, t, &ids);
        }
        let media = !self.media.producers.is_empty() || !self.media.consumers.is_empty();
        self.media.next_report = media.then_some(now + REPORT_INTERVAL);
    }

    /// SR + SDES CNAME for the consumers `ids` of `transport` (those that sent something).
    fn send_sender_reports(&mut self, now: Instant, transport: TransportId, ids: &[ConsumerId]) {
        if !self.is_connected(transport) {
            return;
        }
        let wall = self.ntp_time(now);
        let mut buf = Vec::new();
        for &id in ids {
            let Some(c) = self.media.consumers.get(&id) else {
                continue;
            };
            let streams = self
                .media
                .producers
                .get(&c.producer)
                .map_or(&[][..], |p| &p.streams[..]);
            let Some((ntp, rtp_time)) = c.sender_report_clock(now, streams, wall) else {
                continue;
            };
            let info = SenderReportData {
                ssrc: c.ssrc,
                ntp,
                rtp_time,
                packets: c.stream.packets as u32,
                octets: c.stream.octets as u32,
            };
            write_sender_report(&mut buf, &info, &[]);
            let cname = c.rtp_parameters.rtcp.cname.as_deref().unwrap_or_default();
            write_sdes_cname(&mut buf, c.ssrc, cname);
            if let Some(c) = self.media.consumers.get_mut(&id) {
                c.stream.on_sr_sent(now, ntp);
            }
            if buf.len() >= COMPOUND_FLUSH {
                self.send_rtcp_on(transport, std::mem::take(&mut buf));
            }
        }
        if !buf.is_empty() {
            self.send_rtcp_on(transport, buf);
        }
    }

    /// RRs (31 blocks each at most) for every stream of the producers `ids` received on
    /// `transport`; producers whose stream scores changed tell their consumers.
    fn send_receiver_reports(&mut self, now: Instant, transport: TransportId, ids: &[ProducerId]) {
        if !self.is_connected(transport) {
            return;
        }
        let mut blocks = Vec::new();
        let mut rescored = Vec::new();
        for id in ids {
            let Some(p) = self.media.producers.get_mut(id) else {
                continue;
            };
            let mut changed = false;
            for s in &mut p.streams {
                let Some(ssrc) = s.ssrc else {
                    continue;
                };
                if let Some((block, score)) = s.stats.report(now, ssrc) {
                    blocks.push(block);
                    changed |= score.is_some();
                }
            }
            if changed {
                rescored.push(p.id);
            }
        }
        for chunk in blocks.chunks(kolabmeet_net::rtcp::report_block::MAX_REPORT_BLOCKS) {
            let mut buf = Vec::new();
            write_receiver_report(&mut buf, FEEDBACK_SENDER_SSRC, chunk);
            self.send_rtcp_on(transport, buf);
        }
        for p in rescored {
            self.emit_producer_score(p);
        }
    }

    fn is_connected(&self, transport: TransportId) -> bool {
        self.transports
            .get(&transport)
            .is_some_and(|e| e.is_connected())
    }

    /// `consumerScoreChanged` for every consumer of `producer`.
    pub(super) fn emit_producer_score(&mut self, producer: ProducerId) {
        for cid in self
            .media
            .fanout
            .get(&producer)
            .cloned()
            .unwrap_or_default()
        {
            self.emit_consumer_score(cid);
        }
    }

    /// `consumerScoreChanged {score, producerScore, producerScores}` for one consumer:
    /// its own stream's score, the score of the producer stream it forwards (its first
    /// while it forwards none) and the scores of all of the producer's streams.
    pub(super) fn emit_consumer_score(&mut self, consumer: ConsumerId) {
        let Some(c) = self.media.consumers.get(&consumer) else {
            return;
        };
        let Some(p) = self.media.producers.get(&c.producer) else {
            return;
        };
        let producer_scores: Vec<u8> = p.streams.iter().map(|s| s.stats.score()).collect();
        let producer_score = producer_scores
            .get(c.current_layer().unwrap_or(0))
            .copied()
            .unwrap_or(0);
        self.events.push_back(EngineEvent::ConsumerScoreChanged {
            peer: c.peer,
            consumer,
            score: ConsumerScore {
                score: c.stream.score(),
                producer_score,
                producer_scores,
            },
        });
    }

    /// NACKs towards producers for every stream whose NACK generator has sequence
    /// numbers due; runs only while some stream has a NACK deadline.
    pub(super) fn send_nacks(&mut self, now: Instant) {
        let mut out = Vec::new();
        let mut seqs = Vec::new();
        for p in self.media.producers.values_mut() {
            for s in &mut p.streams {
                let Some(ssrc) = s.ssrc else {
                    continue;
                };
                if s.stats.poll_timeout().is_none_or(|t| t > now) {
                    continue;
                }
                seqs.clear();
                s.stats.poll_nacks(now, &mut seqs);
                if seqs.is_empty() {
                    continue;
                }
                let mut buf = Vec::new();
                write_nack(&mut buf, FEEDBACK_SENDER_SSRC, ssrc, &seqs);
                tracing::trace!(target: "kolabmeet::rtcp", producer = %p.id, ssrc, lost = seqs.len(), "NACK to producer");
                out.push((p.transport, buf));
            }
        }
        for (t, buf) in out {
            self.send_rtcp_on(t, buf);
        }
        self.media.nack_due = self
            .media
            .producers
            .values()
            .flat_map(|p| p.streams.iter().filter_map(|s| s.stats.poll_timeout()))
            .min();
    }
}
