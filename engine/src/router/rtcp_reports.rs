//! RTCP a router sends on its own (contract section 6, "Loss and key frames"): every
//! [`REPORT_INTERVAL`](super::report_interval::REPORT_INTERVAL) (drawn in 0.5-1.5 times it),
//! a sender report with the stream's CNAME for every stream it sends
//! (RFC 3550 §6.4.1, §6.5.1) and a receiver report block for every stream it receives
//! (§6.4.2), producer scores from those blocks (`consumerScoreChanged`), and a REMB of
//! [`MAX_INCOMING_BITRATE`] for the streams each transport receives (the contract's
//! "maximum incoming bitrate per WebRTC transport ... announced to senders", as
//! mediasoup's limitation REMB: Chromium caps its send rate there, transport-cc or not);
//! and, at every
//! timer tick, generic NACKs (RFC 4585 §6.2.1) towards producers for the gaps their
//! streams' NACK generators found.

use std::collections::HashMap;
use std::time::Instant;

use kolabmeet_net::rtcp::{
    SenderReportData, write_nack, write_receiver_report, write_remb, write_sdes_cname,
    write_sender_report,
};

use super::egress::Egress;
use super::room::Router;
use crate::arena::{ConsumerKey, ProducerKey, TransportKey};
use crate::media_engine::{ConsumerScore, EngineEvent};
use crate::transport::FEEDBACK_SENDER_SSRC;

/// The most a WebRTC transport takes in (contract section 1, fixed values: 1,500,000 bit/s
/// per transport, announced to senders).
pub const MAX_INCOMING_BITRATE: u64 = 1_500_000;

/// A compound packet is sent once it grows past this (well under any path MTU).
const COMPOUND_FLUSH: usize = 1000;

impl Router {
    /// Sends one round of reports on every connected transport of the room, and
    /// schedules the next while any producer or consumer is left.
    pub(super) fn send_reports(&mut self, now: Instant, egress: &mut Egress<'_>) {
        // One pass over consumers and one over producers, grouped by transport (not a
        // scan of every consumer per transport).
        let mut senders: HashMap<TransportKey, Vec<ConsumerKey>> = HashMap::new();
        for (ck, c) in self.consumers.iter().filter(|(_, c)| c.stream.has_sent()) {
            senders.entry(c.transport).or_default().push(ck);
        }
        let mut receivers: HashMap<TransportKey, Vec<ProducerKey>> = HashMap::new();
        for (pk, p) in self.producers.iter() {
            // A mirror's sender hears from the mirror's origin.
            if let Some(t) = p.transport() {
                receivers.entry(t).or_default().push(pk);
            }
        }
        for (t, keys) in senders {
            self.send_sender_reports(now, t, &keys, egress);
        }
        for (t, keys) in receivers {
            self.send_receiver_reports(now, t, &keys, egress);
        }
        self.allocate_due(now, egress);
        let media = !self.producers.is_empty() || !self.consumers.is_empty();
        self.next_report = media.then(|| now + self.report_interval.draw());
    }

    /// SR + SDES CNAME for the consumers `ids` of `transport` (those that sent something).
    fn send_sender_reports(
        &mut self,
        now: Instant,
        transport: TransportKey,
        keys: &[ConsumerKey],
        egress: &mut Egress<'_>,
    ) {
        if !egress.is_connected(transport) {
            return;
        }
        let wall = egress.clock.ntp(now);
        let mut buf = Vec::new();
        for &ck in keys {
            let Some(c) = self.consumers.get(ck) else {
                continue;
            };
            let streams = self
                .producers
                .get(c.producer)
                .map_or(&[][..], |p| &p.streams[..]);
            let Some((ntp, rtp_time)) =
                c.sender_report_clock(now, streams, wall, egress.clock.sender_reports)
            else {
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
            if let Some(c) = self.consumers.get_mut(ck) {
                c.stream.on_sr_sent(now, ntp);
            }
            if buf.len() >= COMPOUND_FLUSH {
                egress.send_rtcp(transport, std::mem::take(&mut buf));
            }
        }
        if !buf.is_empty() {
            egress.send_rtcp(transport, buf);
        }
    }

    /// The worst fraction lost (1/256) that the receivers of producer `pk` reported lately,
    /// when it is an Opus producer with in-band FEC negotiated (0 otherwise): reported to
    /// its sender, whose encoder adds FEC by the loss it hears of (issue 17, "audio that
    /// survives loss"). Consumers on other workers of a spread room are not counted.
    fn worst_remote_fraction_lost(&self, now: Instant, pk: ProducerKey) -> u8 {
        let Some(p) = self.producers.get(pk) else {
            return 0;
        };
        if !p
            .rtp_parameters
            .codecs
            .first()
            .is_some_and(|c| c.opus_in_band_fec())
        {
            return 0;
        }
        p.consumers
            .iter()
            .filter_map(|ck| self.consumers.get(*ck))
            .filter_map(|c| c.stream.fresh_fraction_lost(now))
            .max()
            .unwrap_or(0)
    }

    /// RRs (31 blocks each at most) for every stream of the producers `ids` received on
    /// `transport`; producers whose stream scores changed tell their consumers.
    fn send_receiver_reports(
        &mut self,
        now: Instant,
        transport: TransportKey,
        keys: &[ProducerKey],
        egress: &mut Egress<'_>,
    ) {
        if !egress.is_connected(transport) {
            return;
        }
        let mut blocks = Vec::new();
        let mut rescored = Vec::new();
        let mut ssrcs = Vec::new();
        for &pk in keys {
            let remote = self.worst_remote_fraction_lost(now, pk);
            let Some(p) = self.producers.get_mut(pk) else {
                continue;
            };
            let mut changed = false;
            for s in &mut p.streams {
                let Some(ssrc) = s.ssrc else {
                    continue;
                };
                ssrcs.push(ssrc);
                if let Some((block, score)) = s.stats.report_with_remote_loss(now, ssrc, remote) {
                    blocks.push(block);
                    changed |= score.is_some();
                }
            }
            if changed {
                rescored.push(pk);
            }
        }
        let chunks = blocks.chunks(kolabmeet_net::rtcp::report_block::MAX_REPORT_BLOCKS);
        let last = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            let mut buf = Vec::new();
            write_receiver_report(&mut buf, FEEDBACK_SENDER_SSRC, chunk);
            if i + 1 == last && !ssrcs.is_empty() {
                write_remb(&mut buf, FEEDBACK_SENDER_SSRC, MAX_INCOMING_BITRATE, &ssrcs);
            }
            egress.send_rtcp(transport, buf);
        }
        if last == 0 && !ssrcs.is_empty() {
            let mut buf = Vec::new();
            write_receiver_report(&mut buf, FEEDBACK_SENDER_SSRC, &[]);
            write_remb(&mut buf, FEEDBACK_SENDER_SSRC, MAX_INCOMING_BITRATE, &ssrcs);
            egress.send_rtcp(transport, buf);
        }
        for pk in rescored {
            for &ck in &self.producers[pk].consumers {
                self.emit_consumer_score(ck, egress);
            }
        }
    }

    /// `consumerScoreChanged {score, producerScore, producerScores}` for one consumer:
    /// its own stream's score, the score of the producer stream it forwards (its first
    /// while it forwards none) and the scores of all of the producer's streams.
    pub(super) fn emit_consumer_score(&self, ck: ConsumerKey, egress: &mut Egress<'_>) {
        let Some(c) = self.consumers.get(ck) else {
            return;
        };
        let Some(p) = self.producers.get(c.producer) else {
            return;
        };
        let producer_scores: Vec<u8> = p.streams.iter().map(|s| s.stats.score()).collect();
        let producer_score = producer_scores
            .get(c.current_layer().unwrap_or(0))
            .copied()
            .unwrap_or(0);
        egress.events.push_back(EngineEvent::ConsumerScoreChanged {
            peer: c.peer,
            consumer: c.id,
            score: ConsumerScore {
                score: c.stream.score(),
                producer_score,
                producer_scores,
            },
        });
    }

    /// NACKs towards producers for every stream whose NACK generator has sequence
    /// numbers due; runs only while some stream has a NACK deadline.
    ///
    /// Only for what is forwarded (issue 16, overload): a simulcast encoding that no
    /// consumer here forwards or targets and no other worker takes whole is not asked to
    /// be repaired, and a worker at the top shed level asks for nothing (key frame
    /// requests repair). A worker whose own socket overflowed otherwise asked for the
    /// packets it had dropped, hundreds of thousands of NACKs a minute that kept it
    /// overloaded after the shed had taken the load off (the overload runs of
    /// `density-load`).
    pub(super) fn send_nacks(&mut self, now: Instant, egress: &mut Egress<'_>) {
        let mut out = Vec::new();
        let mut seqs = Vec::new();
        let past_capacity = egress.shed >= crate::allocation::load_shed::MAX_LEVEL;
        let Router {
            producers,
            consumers,
            ..
        } = self;
        for p in producers.values_mut() {
            // A mirror's losses are repaired on its origin worker.
            let Some(transport) = p.transport() else {
                continue;
            };
            let simulcast = p.streams.len() > 1;
            let forwarded = |i: usize| {
                p.consumers
                    .iter()
                    .filter_map(|ck| consumers.get(*ck))
                    .filter(|c| c.is_active())
                    .any(|c| c.current_layer() == Some(i) || c.target_stream() == Some(i))
                    || p.mirrors
                        .iter()
                        .any(|m| m.want.consumers && m.want.whole(i.min(255) as u8))
            };
            for (i, s) in p.streams.iter_mut().enumerate() {
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
                // Judged only for a stream with NACKs due (it looks at every consumer).
                if past_capacity || (simulcast && !forwarded(i)) {
                    tracing::trace!(target: "kolabmeet::rtcp", producer = %p.id, ssrc, lost = seqs.len(), past_capacity, "NACK not sent: nothing forwards this stream");
                    continue;
                }
                let mut buf = Vec::new();
                write_nack(&mut buf, FEEDBACK_SENDER_SSRC, ssrc, &seqs);
                tracing::trace!(target: "kolabmeet::rtcp", producer = %p.id, ssrc, lost = seqs.len(), "NACK to producer");
                out.push((transport, buf));
            }
        }
        for (t, buf) in out {
            egress.send_rtcp(t, buf);
        }
        self.nack_due = self
            .producers
            .values()
            .flat_map(|p| p.streams.iter().filter_map(|s| s.stats.poll_timeout()))
            .min();
    }
}
