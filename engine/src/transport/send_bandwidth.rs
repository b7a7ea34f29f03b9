//! The outgoing bandwidth of one WebRTC transport (issue 9; contract section 6,
//! "Bandwidth"): its send-side estimate ([`SendSideBwe`]) fed with what the transport sends
//! and what its receiver reports (transport-cc feedback, REMB, round-trip times), the
//! allocation of that estimate over the transport's consumers ([`LayerAllocator`]), and
//! the probe clusters sent to find more: padding on the probation stream that
//! `mediasoup-client` creates a receiver for (SSRC 1234, payload type 127, its first video
//! consumer's codec), paced at the cluster's rate; and the padding of an up-switch on
//! trial ([`Allocation::trial`]), on the same stream, paced at what the switch would add.
//!
//! Sans-IO: the transport calls in with the time; [`SendBandwidth::poll_probe`] says how
//! big the next probe packet is once one is due, [`SendBandwidth::poll_timeout`] when.

use std::time::{Duration, Instant};

use kolabmeet_net::rtcp::TransportCc;

use crate::allocation::{Allocation, AllocatorConfig, ConsumerDemand, LayerAllocator};
use crate::arena::ConsumerKey;
use crate::bwe::{BweConfig, PROBE_PACKET, ProbePlan, SendSideBwe};

pub use crate::bwe::Bitrate;

/// The probation stream's SSRC (mediasoup-client's `RTP_PROBATOR_SSRC`).
pub const PROBATOR_SSRC: u32 = 1234;
/// The probation stream's payload type (mediasoup-client's
/// `RTP_PROBATOR_CODEC_PAYLOAD_TYPE`).
pub const PROBATOR_PAYLOAD_TYPE: u8 = 127;

/// How often the allocation is redone even when the estimate holds still: the layers'
/// rates change, and layers start and stop.
pub const ALLOCATION_INTERVAL: Duration = Duration::from_secs(1);

/// Probes aim this much above the next step's need, so that a successful one lets the
/// step fit the estimate.
const PROBE_MARGIN: f64 = 1.05;

/// The share of the estimate that media is allocated: the rest is headroom for
/// retransmissions, RTCP and probes, and for an estimate a little above what the link
/// carries (an up-switch on a marginal estimate congests the link, and the estimate then
/// falls below even the layer switched from).
const ALLOCATED_SHARE: f64 = 0.85;

/// After a spatial up-switch, how long the delay detector's over-use does not cut the
/// estimate ([`SendSideBwe::tolerate_overuse`]): the requested key frame's round trip from
/// the publisher and its drain through the receiver's link.
const KEY_FRAME_GRACE: Duration = Duration::from_millis(1000);

/// A trial pads the link to this multiple of what the switched allocation would cost:
/// a little over it, so that a bucket is spent sooner and a key frame finds room, but not
/// the whole headroom the allocation keeps (1/0.85: a layer that fits a 700 kbit/s link
/// with its keep tolerance could then never be tried, as a VP9 SVC receiver showed). In
/// the virtual-time test 1.0 let a 30 KB bucket hide a 450 kbit/s link (5 switches a
/// minute), 1.1 did not (issue 17).
const TRIAL_HEADROOM: f64 = 1.1;

/// Probe packets of a cluster go out in bursts this far apart.
const PROBE_TICK: Duration = Duration::from_millis(5);

/// A probe cluster whose feedback has not come this long after it was sent is given up.
const PROBE_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// A cluster being sent.
#[derive(Debug, Clone, Copy)]
struct ActiveProbe {
    plan: ProbePlan,
    started: Instant,
    sent: u64,
}

/// Padding of an up-switch on trial: sent at `rate` since `started`, like media (it feeds
/// the delay detector and the acknowledged rate, not a probe cluster's result).
#[derive(Debug, Clone, Copy)]
struct TrialPadding {
    rate: Bitrate,
    started: Instant,
    sent: u64,
}

/// The outgoing bandwidth of one transport; see the module documentation.
#[derive(Debug)]
pub struct SendBandwidth {
    bwe: SendSideBwe,
    allocator: LayerAllocator<ConsumerKey>,
    /// Clusters to send, the first one being sent.
    probes: Vec<ActiveProbe>,
    /// The padding of the up-switches on trial, if any.
    trial: Option<TrialPadding>,
    /// When the last cluster finished, while its answer is awaited.
    awaiting_answer: Option<Instant>,
    /// The header extension ids probe packets carry (transport-cc, abs-send-time): those
    /// of the transport's video consumers. No probing before a video consumer exists (the
    /// client creates the probation receiver with its first video consumer).
    probe_exts: Option<(u8, Option<u8>)>,
    probe_seq: u16,
    started: bool,
    /// What the last allocation wanted: every consumer at the highest layer it may get.
    desired: Bitrate,
    next_allocation: Option<Instant>,
    /// Something changed (consumers, pauses): allocate at the next chance.
    dirty: bool,
    /// The receiver has reported (transport-cc feedback or REMB): the estimate rests on
    /// what it saw, not only on the start value.
    heard: bool,
}

/// Where a transport's estimate starts: the old server's "initial available outgoing
/// bitrate" (contract section 1, fixed values).
pub const INITIAL_OUTGOING_BITRATE: Bitrate = Bitrate::mbps(1);

impl Default for SendBandwidth {
    fn default() -> Self {
        Self::new(BweConfig {
            start: INITIAL_OUTGOING_BITRATE,
            ..BweConfig::default()
        })
    }
}

impl SendBandwidth {
    /// A transport's bandwidth, starting from `config.start`.
    pub fn new(config: BweConfig) -> Self {
        Self {
            bwe: SendSideBwe::new(config),
            allocator: LayerAllocator::new(AllocatorConfig::default()),
            probes: Vec::new(),
            trial: None,
            awaiting_answer: None,
            probe_exts: None,
            probe_seq: 0,
            started: false,
            desired: Bitrate(0),
            next_allocation: None,
            dirty: true,
            heard: false,
        }
    }

    /// The estimate.
    pub fn estimate(&self) -> Bitrate {
        self.bwe.estimate()
    }

    /// The padding rate of the up-switches on trial (zero: none).
    pub fn trial(&self) -> Bitrate {
        self.trial.map_or(Bitrate(0), |t| t.rate)
    }

    /// What the last allocation wanted.
    pub fn desired(&self) -> Bitrate {
        self.desired
    }

    /// The estimator (its figures, for stats).
    pub fn estimator(&self) -> &SendSideBwe {
        &self.bwe
    }

    /// A media packet carrying transport-wide number `seq` went out. While a probe
    /// cluster is being sent, it is part of the cluster (as libwebrtc's pacer counts
    /// media in a cluster): padding only fills the cluster's rate up, so that media plus
    /// probe never exceed the rate probed, and the cluster's arrival rate measures the
    /// path with both.
    pub fn on_packet_sent(&mut self, now: Instant, seq: u16, size: usize) {
        match self.probes.first_mut() {
            Some(p) if now >= p.started => {
                p.sent += size as u64;
                let cluster = p.plan.id;
                if p.sent >= p.plan.bytes {
                    self.probes.remove(0);
                    if self.probes.is_empty() {
                        self.awaiting_answer = Some(now);
                    }
                }
                self.bwe.on_probe_sent(now, seq, size, cluster);
            }
            _ => self.bwe.on_packet_sent(now, seq, size),
        }
    }

    /// Whether the receiver has reported anything the estimate rests on.
    pub fn heard_from_receiver(&self) -> bool {
        self.heard
    }

    /// The receiver's transport-cc feedback.
    pub fn on_transport_cc(&mut self, now: Instant, fb: &TransportCc<'_>) {
        self.heard = true;
        self.bwe.on_transport_cc(now, fb);
        if let Some(next) = self.bwe.next_probe() {
            self.probes.push(ActiveProbe {
                plan: next,
                started: now,
                sent: 0,
            });
        }
    }

    /// The receiver's REMB.
    pub fn on_remb(&mut self, now: Instant, bitrate: u64) {
        self.heard = true;
        self.bwe.on_remb(now, bitrate);
    }

    /// A round-trip time measured from the receiver's report blocks.
    pub fn on_rtt(&mut self, rtt: Duration) {
        self.bwe.on_rtt(rtt);
    }

    /// A video consumer with these header extension ids sends here: probing may start.
    pub fn on_video_consumer(&mut self, transport_cc: Option<u8>, abs_send_time: Option<u8>) {
        if self.probe_exts.is_none()
            && let Some(tcc) = transport_cc
        {
            self.probe_exts = Some((tcc, abs_send_time));
        }
        self.dirty = true;
    }

    /// The transport's consumers changed (created, closed, paused, resumed).
    pub fn invalidate(&mut self) {
        self.dirty = true;
    }

    /// A consumer closed.
    pub fn forget(&mut self, consumer: ConsumerKey) {
        self.allocator.forget(consumer);
        self.dirty = true;
    }

    /// Whether the allocation should be redone now: the estimate moved past the
    /// allocator's hysteresis band, consumers changed, or [`ALLOCATION_INTERVAL`] passed.
    pub fn needs_allocation(&self, now: Instant) -> bool {
        self.dirty
            || self.next_allocation.is_none_or(|t| now >= t)
            || self
                .allocator
                .needs_allocation(self.bwe.estimate().scale(ALLOCATED_SHARE))
    }

    /// Allocates the estimate over `demands` (`desired`: what they would cost at their
    /// highest layers, for stats); when the next step up does not fit the estimate, asks
    /// for a probe cluster aimed a little above that step (the first clusters go out with
    /// the first allocation that has a video consumer).
    pub fn allocate(
        &mut self,
        now: Instant,
        demands: &[ConsumerDemand<ConsumerKey>],
        desired: Bitrate,
    ) -> Allocation<ConsumerKey> {
        self.dirty = false;
        self.next_allocation = Some(now + ALLOCATION_INTERVAL);
        self.desired = desired;
        let budget = self.bwe.estimate().scale(ALLOCATED_SHARE);
        let allocation = self.allocator.allocate(now, budget, demands);
        // The trial pads the link up to a little over what the switched allocation would
        // need, within the estimate.
        let trial = if allocation.trial == Bitrate(0) {
            Bitrate(0)
        } else {
            let used = allocation.used.bps();
            let with_headroom =
                (used.saturating_add(allocation.trial.bps()) as f64 * TRIAL_HEADROOM) as u64;
            let room = self.bwe.estimate().bps().saturating_sub(used);
            Bitrate(with_headroom.saturating_sub(used).min(room))
        };
        self.set_trial(now, trial);
        if allocation.switched_up {
            self.bwe
                .tolerate_overuse(now + KEY_FRAME_GRACE, KEY_FRAME_GRACE);
        }
        if self.probe_exts.is_some() {
            if !self.started {
                self.started = true;
                for plan in self.bwe.start_probes(now) {
                    self.push_probe(now, plan);
                }
            } else if self.probes.is_empty()
                && let Some(step) = allocation.next_step
                && step > budget
                && let Some(plan) = self
                    .bwe
                    .probe_for(now, step.scale(PROBE_MARGIN / ALLOCATED_SHARE))
            {
                self.push_probe(now, plan);
            }
        }
        allocation
    }

    /// Pads by `rate` from now (zero: stops), for the allocation's trial; a trial at the
    /// same rate goes on where it is.
    fn set_trial(&mut self, now: Instant, rate: Bitrate) {
        if rate == Bitrate(0) || self.probe_exts.is_none() {
            if self.trial.take().is_some() {
                self.bwe.end_overuse_tolerance();
            }
        } else if self.trial.is_none_or(|t| t.rate != rate) {
            tracing::debug!(target: "kolabmeet::bwe", rate = %rate, "up-switch trial padding");
            if self.trial.is_none() {
                // Over-use without a queue is jitter, not the padding's doing, for as long
                // as the longest trial lasts (the trial's end ends it).
                self.bwe.tolerate_overuse(
                    now + crate::allocation::UP_SWITCH_AFTER.max(crate::allocation::LONG_TRIAL),
                    Duration::ZERO,
                );
            }
            self.trial = Some(TrialPadding {
                rate,
                started: now,
                sent: 0,
            });
        }
    }

    fn push_probe(&mut self, now: Instant, plan: ProbePlan) {
        tracing::debug!(target: "kolabmeet::bwe", cluster = plan.id, rate = %plan.rate, bytes = plan.bytes, "probe cluster");
        self.probes.push(ActiveProbe {
            plan,
            started: now,
            sent: 0,
        });
    }

    /// When [`SendBandwidth::poll_probe`] has something, or the allocation is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probe = self
            .probes
            .first()
            .map(|p| p.started + p.plan.rate.time_for(p.sent).saturating_sub(PROBE_TICK));
        let trial = self
            .trial
            .map(|t| t.started + t.rate.time_for(t.sent).saturating_sub(PROBE_TICK));
        let answer = self.awaiting_answer.map(|t| t + PROBE_ANSWER_TIMEOUT);
        [probe, trial, answer].into_iter().flatten().min()
    }

    /// The next probe packet due at `now`: its transport-wide number is `seq`; writes it
    /// into `out` (cleared) and records it. `None` when none is due.
    pub fn poll_probe(&mut self, now: Instant, seq: u16, out: &mut Vec<u8>) -> Option<()> {
        if self
            .awaiting_answer
            .is_some_and(|t| now >= t + PROBE_ANSWER_TIMEOUT)
        {
            self.awaiting_answer = None;
            self.bwe.probe_timed_out();
        }
        let (tcc, abs) = self.probe_exts?;
        let Some(p) = self.probes.first_mut() else {
            return self.poll_trial(now, seq, tcc, abs, out);
        };
        // Due: what the cluster's rate allows since it started, plus one tick of burst.
        let allowed = p
            .plan
            .rate
            .bytes_in(now.saturating_duration_since(p.started) + PROBE_TICK);
        if p.sent >= allowed.min(p.plan.bytes) {
            return None;
        }
        let size = PROBE_PACKET as usize;
        self.probe_seq = self.probe_seq.wrapping_add(1);
        write_probe_packet(out, self.probe_seq, seq, tcc, abs, size);
        p.sent += out.len() as u64;
        let cluster = p.plan.id;
        if p.sent >= p.plan.bytes {
            self.probes.remove(0);
            if self.probes.is_empty() {
                self.awaiting_answer = Some(now);
            }
        }
        self.bwe.on_probe_sent(now, seq, out.len(), cluster);
        Some(())
    }

    /// The next padding packet of the trial, if one is due (a probe cluster, which
    /// measures the path on its own, goes first).
    fn poll_trial(
        &mut self,
        now: Instant,
        seq: u16,
        tcc: u8,
        abs: Option<u8>,
        out: &mut Vec<u8>,
    ) -> Option<()> {
        let t = self.trial.as_mut()?;
        let allowed = t
            .rate
            .bytes_in(now.saturating_duration_since(t.started) + PROBE_TICK);
        // What a probe cluster or a late wake-up left unsent is not made up in a burst.
        t.sent = t
            .sent
            .max(allowed.saturating_sub(t.rate.bytes_in(PROBE_TICK * 2)));
        if t.sent >= allowed {
            return None;
        }
        self.probe_seq = self.probe_seq.wrapping_add(1);
        write_probe_packet(out, self.probe_seq, seq, tcc, abs, PROBE_PACKET as usize);
        t.sent += out.len() as u64;
        self.bwe.on_packet_sent(now, seq, out.len());
        Some(())
    }
}

/// Writes a probation packet of `size` bytes: SSRC [`PROBATOR_SSRC`], payload type
/// [`PROBATOR_PAYLOAD_TYPE`], sequence number `seq`, a one-byte header extension block
/// (RFC 8285 §4.2) with transport-wide number `transport_seq` under id `tcc` (and room for
/// abs-send-time under `abs`, left zero), then a zero payload (as mediasoup's
/// `RtpProbationGenerator` does; the receiver never decodes it).
pub fn write_probe_packet(
    out: &mut Vec<u8>,
    seq: u16,
    transport_seq: u16,
    tcc: u8,
    abs: Option<u8>,
    size: usize,
) {
    out.clear();
    out.extend_from_slice(&[0x90, PROBATOR_PAYLOAD_TYPE]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&u32::from(seq).wrapping_mul(90).to_be_bytes());
    out.extend_from_slice(&PROBATOR_SSRC.to_be_bytes());
    let mut ext = vec![(tcc << 4) | 1];
    ext.extend_from_slice(&transport_seq.to_be_bytes());
    if let Some(abs) = abs {
        ext.push((abs << 4) | 2);
        ext.extend_from_slice(&[0, 0, 0]);
    }
    while ext.len() % 4 != 0 {
        ext.push(0);
    }
    out.extend_from_slice(&[0xbe, 0xde]);
    out.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ext);
    let len = out.len();
    out.resize(size.max(len), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kolabmeet_net::rtp::RtpHeader;

    #[test]
    fn probe_packets_are_the_probation_stream_with_the_transport_wide_number() {
        let mut out = Vec::new();
        write_probe_packet(&mut out, 7, 0x1234, 5, Some(3), 1200);
        assert_eq!(out.len(), 1200);
        let h = RtpHeader::parse(&out).unwrap();
        assert_eq!(h.ssrc, PROBATOR_SSRC);
        assert_eq!(h.payload_type, PROBATOR_PAYLOAD_TYPE);
        assert_eq!(h.sequence_number, 7);
        assert_eq!(h.extension(&out, 5), Some(&[0x12, 0x34][..]));
        assert_eq!(h.extension(&out, 3).map(<[u8]>::len), Some(3));
    }

    #[test]
    fn clusters_are_paced_at_their_rate_and_start_with_the_first_video_consumer() {
        let t0 = Instant::now();
        let mut b = SendBandwidth::default();
        let mut out = Vec::new();
        // No video consumer: no probing.
        b.allocate(t0, &[], Bitrate::mbps(3));
        assert!(b.poll_probe(t0, 1, &mut out).is_none());
        let mut b = SendBandwidth::default();
        b.on_video_consumer(Some(5), None);
        b.allocate(t0, &[], Bitrate::mbps(3));
        // The start clusters (3x and 6x 600 kbps): 1.8 Mbps for 20 ms is 4,500 bytes, at
        // least 5 packets: 6,000 bytes, sent over about 27 ms, not at once.
        let mut sent_at = Vec::new();
        let mut now = t0;
        let mut seq = 0u16;
        while now < t0 + Duration::from_millis(200) {
            while b.poll_probe(now, seq, &mut out).is_some() {
                sent_at.push(now);
                seq += 1;
            }
            now += Duration::from_millis(1);
        }
        assert!(sent_at.len() >= 10, "{}", sent_at.len());
        let first_ms: Vec<u128> = sent_at.iter().map(|t| (*t - t0).as_millis()).collect();
        assert!(
            first_ms.iter().filter(|&&ms| ms < 5).count() <= 3,
            "{first_ms:?}"
        );
        assert!(b.poll_timeout().is_some(), "waiting for the answer");
    }
}
