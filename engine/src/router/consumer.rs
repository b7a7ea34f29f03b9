//! A consumer (mediasoup `SimpleConsumer` / `SimulcastConsumer`): decides which of its
//! producer's packets go to its peer and writes each into the consumer's own outgoing
//! buffer with its SSRC, sequence numbers and timestamps, so that the receiver sees one
//! continuous stream across simulcast layer switches (which happen only on key frames).

use std::time::{Duration, Instant};

use kolabmeet_net::rtp::{RtpHeader, write_extension_block};

use super::producer::{Ingress, RoutedPacket};
use super::recv_stream::{RecvStream, is_usable};
use super::send_stream::SendStream;
use crate::arena::{ProducerKey, TransportKey};
use crate::codecs::vp8_layer_filter::{Vp8LayerFilter, Vp8Verdict};
use crate::codecs::vp9_descriptor::Vp9Descriptor;
use crate::codecs::vp9_svc_filter::{SvcVerdict, Vp9SvcFilter};
use crate::ids::{ConsumerId, PeerId};
use crate::ortc::{MediaKind, RtpParameters, ScalabilityMode};
use crate::rtp_stream::{SeqManager, StoredRef, ntp_add, rtp_ticks};

/// URIs of the extensions a consumer's packets may carry, by what the router does with
/// them.
const MID_URI: &str = super::producer::MID_URI;
const TRANSPORT_CC_URI: &str = crate::ortc::TRANSPORT_CC_URI;
const ABS_SEND_TIME_URI: &str = crate::ortc::ABS_SEND_TIME_URI;
/// Extensions forwarded as the producer sent them (values unchanged).
const PASS_THROUGH_URIS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "urn:3gpp:video-orientation",
    "urn:ietf:params:rtp-hdrext:toffset",
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
];

pub use kolabmeet_media_types::replies::ConsumerType;

/// Per-packet values the sending transport supplies.
#[derive(Debug, Clone, Copy)]
pub struct SendContext {
    /// The transport-wide sequence number for this packet (transport-cc).
    pub transport_seq: u16,
    /// abs-send-time, 6.18 fixed-point seconds (24 bits).
    pub abs_send_time: u32,
}

/// What a forwarded packet changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Not forwarded.
    No,
    /// Forwarded; the consumer now sends `layer` (changed when `switched`).
    Yes {
        /// The spatial layer sent.
        layer: usize,
        /// This packet started a new layer (or the first one).
        switched: bool,
    },
}

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

/// What a consumer is made of.
#[derive(Debug, Clone)]
pub struct ConsumerInit {
    /// Its id.
    pub id: ConsumerId,
    /// The consuming peer.
    pub peer: PeerId,
    /// The transport it sends on.
    pub transport: TransportKey,
    /// Its producer.
    pub producer: ProducerKey,
    /// Audio or video.
    pub kind: MediaKind,
    /// Its parameters, MID included.
    pub rtp_parameters: RtpParameters,
    /// Simple, simulcast or SVC (see `Producer::consumer_type`).
    pub consumer_type: ConsumerType,
    /// Created paused.
    pub paused: bool,
    /// Its producer is paused.
    pub producer_paused: bool,
}

/// A consumer.
#[derive(Debug)]
pub struct Consumer {
    /// Its id.
    pub id: ConsumerId,
    /// The consuming peer.
    pub peer: PeerId,
    /// The transport it sends on.
    pub transport: TransportKey,
    /// Its producer.
    pub producer: ProducerKey,
    /// Audio or video.
    pub kind: MediaKind,
    /// Its parameters (what `newConsumer` carries).
    pub rtp_parameters: RtpParameters,
    /// Simple, simulcast or SVC.
    pub consumer_type: ConsumerType,
    /// Paused by its peer (or created paused).
    pub paused: bool,
    /// Its producer is paused.
    pub producer_paused: bool,
    /// The outgoing SSRC.
    pub ssrc: u32,
    /// The outgoing RTX SSRC, when RTX was negotiated.
    pub rtx_ssrc: Option<u32>,
    mid: Vec<u8>,
    mid_ext: Option<u8>,
    tcc_ext: Option<u8>,
    abs_ext: Option<u8>,
    pass_through: Vec<u8>,
    clock_rate: u32,
    /// The layer being forwarded.
    current: Option<usize>,
    /// The layer wanted.
    target: Option<usize>,
    /// What the transport's bandwidth allocation gives it (issue 9).
    allocated: Allocated,
    /// The layers last reported with `consumerLayersChanged`.
    pub reported_layers: Option<crate::media_engine::ConsumerLayers>,
    /// Its temporal layer filter (VP8 video): frames above the allocated temporal layer
    /// are dropped, picture ids and TL0PICIDX kept continuous.
    vp8: Option<Vp8LayerFilter>,
    /// Its spatial and temporal layer filter (an SVC consumer of VP9).
    vp9: Option<Vp9SvcFilter>,
    /// The SVC filter's target when [`Consumer::update_target`] last looked.
    svc_target_seen: Option<(u8, u8)>,
    /// The producer's sequence numbers mapped onto the consumer's, continuous across
    /// layer switches (created at the first packet, whose number it keeps).
    seq: Option<SeqManager>,
    /// out_ts = in_ts + ts_offset for the current layer.
    ts_offset: u32,
    /// The layer `ts_offset` was set for (kept across pauses, unlike `current`).
    timeline_layer: Option<usize>,
    /// The timestamp of the newest packet sent, and when it was sent.
    last_ts: u32,
    last_sent_at: Option<Instant>,
    /// When the first packet was sent.
    first_sent_at: Option<Instant>,
    /// Packets and bytes sent.
    pub packets_sent: u64,
    /// The outgoing stream: retransmissions, SR figures, score.
    pub stream: SendStream,
}

/// How long a consumer whose producer sends no sender reports waits before it reports on
/// the worker's own clock (browsers send their first within 7.5 s).
pub const OWN_CLOCK_AFTER: Duration = Duration::from_secs(10);

fn ext_of(params: &RtpParameters, uri: &str) -> Option<u8> {
    params
        .header_extensions
        .iter()
        .find(|e| e.uri == uri)
        .map(|e| e.id)
}

impl Consumer {
    /// A consumer from its parameters (see `ortc::consumer_rtp_parameters`), with its MID.
    pub fn new(init: ConsumerInit) -> Self {
        let ConsumerInit {
            id,
            peer,
            transport,
            producer,
            kind,
            rtp_parameters,
            consumer_type,
            paused,
            producer_paused,
        } = init;
        let enc = rtp_parameters.encodings.first();
        let ssrc = enc.and_then(|e| e.ssrc).unwrap_or_default();
        let rtx_ssrc = enc.and_then(|e| e.rtx).map(|r| r.ssrc);
        let pass_through = rtp_parameters
            .header_extensions
            .iter()
            .filter(|e| PASS_THROUGH_URIS.contains(&e.uri.as_str()))
            .map(|e| e.id)
            .collect();
        let media_codec = rtp_parameters.codecs.first();
        let is_vp8 = media_codec.is_some_and(|c| c.mime_type.eq_ignore_ascii_case("video/VP8"));
        let clock_rate = media_codec.map_or(90_000, |c| c.clock_rate);
        let nack = kind == MediaKind::Video
            && media_codec.is_some_and(|c| {
                c.rtcp_feedback
                    .iter()
                    .any(|f| f.kind == "nack" && f.parameter.is_empty())
            });
        let rtx_pt = rtp_parameters
            .codecs
            .iter()
            .find(|c| c.is_rtx())
            .map(|c| c.payload_type);
        let stream = SendStream::new(ssrc, clock_rate, nack, rtx_ssrc.zip(rtx_pt));
        let vp9 = (consumer_type == ConsumerType::Svc).then(|| {
            let mode = ScalabilityMode::parse(enc.and_then(|e| e.scalability_mode.as_deref()));
            Vp9SvcFilter::new(mode.spatial_layers, mode.temporal_layers, mode.ksvc)
        });
        Consumer {
            id,
            peer,
            transport,
            producer,
            kind,
            mid: rtp_parameters.mid.clone().unwrap_or_default().into_bytes(),
            mid_ext: ext_of(&rtp_parameters, MID_URI),
            tcc_ext: ext_of(&rtp_parameters, TRANSPORT_CC_URI),
            abs_ext: ext_of(&rtp_parameters, ABS_SEND_TIME_URI),
            pass_through,
            clock_rate,
            rtp_parameters,
            consumer_type,
            paused,
            producer_paused,
            ssrc,
            rtx_ssrc,
            current: None,
            target: None,
            allocated: Allocated::Unknown,
            reported_layers: None,
            vp8: (kind == MediaKind::Video && is_vp8).then(Vp8LayerFilter::default),
            vp9,
            svc_target_seen: None,
            seq: None,
            ts_offset: 0,
            timeline_layer: None,
            last_ts: 0,
            last_sent_at: None,
            first_sent_at: None,
            packets_sent: 0,
            stream,
        }
    }

    /// Whether packets flow (neither side paused).
    pub fn is_active(&self) -> bool {
        !self.paused && !self.producer_paused
    }

    /// The layer being forwarded.
    pub fn current_layer(&self) -> Option<usize> {
        self.current
    }

    /// Whether its packets carry the transport-wide sequence number (it negotiated
    /// transport-cc; mediasoup offers it for video only).
    pub fn carries_transport_seq(&self) -> bool {
        self.tcc_ext.is_some()
    }

    /// The header extension ids of transport-cc and abs-send-time its packets carry.
    pub fn bwe_extensions(&self) -> (Option<u8>, Option<u8>) {
        (self.tcc_ext, self.abs_ext)
    }

    /// What the allocation gives it.
    pub fn allocated(&self) -> Allocated {
        self.allocated
    }

    /// The layer it is to forward: [`Allocated::UpTo`] its allocated layer, or below while
    /// that one does not arrive. Returns whether the consumer was paused or resumed for
    /// bandwidth by this (a paused one starts again on a key frame).
    pub fn set_allocated(&mut self, allocated: Allocated) -> bool {
        let before = self.allocated;
        self.allocated = allocated;
        if let Some(f) = self.vp8.as_mut() {
            f.set_target(match allocated {
                Allocated::UpTo(_, t) => t,
                _ => u8::MAX,
            });
        }
        if let Some(f) = self.vp9.as_mut() {
            let (s, t) = match allocated {
                Allocated::UpTo(s, t) => (u8::try_from(s).unwrap_or(u8::MAX), t),
                _ => (u8::MAX, u8::MAX),
            };
            f.set_target(s, t);
        }
        let paused_now = allocated == Allocated::Paused;
        let changed = paused_now != (before == Allocated::Paused);
        if changed && paused_now {
            self.reset_layer();
            self.target = None;
            self.reported_layers = None;
        }
        changed
    }

    /// Whether it can drop temporal layers (a VP8 consumer), so that the allocation may
    /// give it part of an encoding.
    pub fn filters_temporal_layers(&self) -> bool {
        self.vp8.is_some()
    }

    /// Whether it selects spatial and temporal layers within one encoding (SVC), so that
    /// the allocation offers each of them.
    pub fn is_svc(&self) -> bool {
        self.vp9.is_some()
    }

    /// The spatial layer it forwards now: the SVC filter's, else the simulcast stream's.
    pub fn current_spatial_layer(&self) -> Option<usize> {
        match self.vp9.as_ref() {
            Some(f) => f.current().map(|(s, _)| usize::from(s)),
            None => self.current,
        }
    }

    /// The temporal layer it forwards now (VP8 with temporal layer ids, or SVC).
    pub fn current_temporal_layer(&self) -> Option<u8> {
        match self.vp9.as_ref() {
            Some(f) => f.current().map(|(_, t)| t),
            None => self.vp8.as_ref().and_then(Vp8LayerFilter::current),
        }
    }

    /// The temporal layer the allocation limits it to, when it does (below `top`, the
    /// highest the encoding has); what `consumerLayersChanged` reports, so that the
    /// filter climbing back after each key frame (temporal layer 0) is not reported.
    pub fn limited_temporal_layer(&self, top: u8) -> u8 {
        match self.allocated {
            Allocated::UpTo(_, t) if self.vp8.is_some() || self.vp9.is_some() => t.min(top),
            _ => top,
        }
    }

    /// The spatial layer the allocation lets it forward (`None`: paused for bandwidth):
    /// the SVC filter's target, else the simulcast stream.
    pub fn target_layer(&self) -> Option<usize> {
        let svc = self.vp9.as_ref().map(|f| usize::from(f.target().0));
        self.target.map(|t| svc.unwrap_or(t))
    }

    /// The layer wanted: the highest active stream up to what the allocation gives it
    /// (any active one when nothing above that arrives). Returns whether a key frame must
    /// be requested on the new target.
    pub fn update_target(&mut self, now: Instant, streams: &[RecvStream]) -> bool {
        let target = match (self.allocated, self.consumer_type) {
            (Allocated::Paused, _) if self.kind == MediaKind::Video => None,
            (_, ConsumerType::Simple | ConsumerType::Svc) => Some(0),
            (allocated, ConsumerType::Simulcast) => {
                let top = match allocated {
                    Allocated::UpTo(layer, _) => layer.min(streams.len().saturating_sub(1)),
                    _ => streams.len().saturating_sub(1),
                };
                (0..=top)
                    .rev()
                    .find(|&i| is_usable(streams, i, now))
                    .or_else(|| (top + 1..streams.len()).find(|&i| is_usable(streams, i, now)))
            }
        };
        let changed = target != self.target;
        self.target = target;
        // An SVC consumer's spatial switch waits for a key picture of its one stream.
        let svc_target = self.vp9.as_ref().map(Vp9SvcFilter::target);
        let svc_switch = svc_target != self.svc_target_seen
            && self.vp9.as_ref().is_some_and(Vp9SvcFilter::wants_key_frame);
        self.svc_target_seen = svc_target;
        (changed && target.is_some() && target != self.current) || (target.is_some() && svc_switch)
    }

    /// The layer this consumer waits for a key frame on, if it is waiting (video that is
    /// active, has a target, and does not send it yet).
    pub fn waiting_for_key_frame(&self) -> Option<usize> {
        let switching = self.current != self.target
            || self.vp9.as_ref().is_some_and(Vp9SvcFilter::wants_key_frame);
        let waiting = self.kind == MediaKind::Video && self.is_active() && switching;
        self.target.filter(|_| waiting)
    }

    /// After a pause, a resume or a producer switch: the next packet starts afresh on a
    /// key frame (sequence and timestamps still continue).
    pub fn reset_layer(&mut self) {
        self.current = None;
        if let Some(f) = self.vp9.as_mut() {
            f.reset();
        }
        self.stream.clear();
    }

    /// The NTP and RTP timestamps of this consumer's next sender report (RFC 3550 §6.4.1),
    /// or `None` when none should be sent now.
    ///
    /// While the layer it forwards has had a sender report from the producer: that
    /// report's own NTP/RTP pair carried forward by the time since it arrived, its RTP
    /// side moved by this consumer's timestamp offset, so that receivers keep the sender's
    /// lip sync between its audio and video.
    ///
    /// Until then, nothing: a report on the worker's own clock (`wall_ntp` against the
    /// last timestamp sent) would map each timestamp to when its packet was forwarded
    /// rather than to when it was captured, tens of milliseconds apart and differently for
    /// audio and video; receivers fit one line through their last 20 reports, so those
    /// early reports would skew their audio/video sync for 20 s after the producer's
    /// reports take over (Chromium's first audio SR comes 2.5-7.5 s in). Only a producer
    /// that has sent no report at all [`OWN_CLOCK_AFTER`] after this consumer started
    /// gets reports on the worker's clock. `None` before anything was sent.
    pub fn sender_report_clock(
        &self,
        now: Instant,
        streams: &[RecvStream],
        wall_ntp: u64,
    ) -> Option<(u64, u32)> {
        let own = self.stream.rtp_time_at(now)?;
        let layer_sr = self
            .current
            .and_then(|i| streams.get(i))
            .and_then(|s| s.stats.last_sr);
        if let Some((ntp, rtp, at)) = layer_sr {
            let elapsed = now.saturating_duration_since(at);
            let ticks = rtp_ticks(elapsed, self.clock_rate);
            return Some((
                ntp_add(ntp, elapsed),
                rtp.wrapping_add(ticks).wrapping_add(self.ts_offset),
            ));
        }
        let producer_reports = streams.iter().any(|s| s.stats.last_sr.is_some());
        let waited = self
            .first_sent_at
            .is_some_and(|t| now.saturating_duration_since(t) >= OWN_CLOCK_AFTER);
        (!producer_reports && waited).then_some((wall_ntp, own))
    }

    /// The timestamp offset for layer `to` when the consumer's timestamps so far followed
    /// layer `from` (with the current offset), `in_ts` being the timestamp of `to`'s first
    /// packet.
    ///
    /// With sender reports from both layers: the offset that gives a frame captured at one
    /// instant the same output timestamp on either layer, so the output stays on one
    /// capture clock and the producer's NTP/RTP mapping (which this consumer's own reports
    /// carry) stays true across the switch (as mediasoup's `SimulcastConsumer` does).
    /// Without them, `guess` (the last timestamp sent moved on by the time since it was
    /// sent): off by the difference between the layers' capture-to-forwarding delays,
    /// which receivers read as jitter and, through the mapping that then steps, as an
    /// audio/video offset. Output timestamps only move forward.
    fn continued_offset(
        &self,
        streams: &[RecvStream],
        from: usize,
        to: usize,
        in_ts: u32,
        guess: u32,
    ) -> u32 {
        let guessed = guess.wrapping_sub(in_ts);
        let reports = streams
            .get(from)
            .and_then(|s| s.stats.last_sr)
            .zip(streams.get(to).and_then(|s| s.stats.last_sr));
        let Some(((ntp_from, rtp_from, _), (ntp_to, rtp_to, _))) = reports else {
            return guessed;
        };
        // At one instant, layer `from`'s RTP time minus layer `to`'s: the difference of
        // their reports' RTP times less the ticks between their NTP times.
        let ntp_delta = ntp_from.wrapping_sub(ntp_to) as i64;
        let ticks = ((i128::from(ntp_delta) * i128::from(self.clock_rate)) >> 32) as i64;
        let synced = self
            .ts_offset
            .wrapping_add(rtp_from.wrapping_sub(rtp_to))
            .wrapping_sub(ticks as u32);
        let ts = in_ts.wrapping_add(synced);
        let off_guess = ts.wrapping_sub(guess) as i32;
        tracing::debug!(
            target: "kolabmeet::simulcast",
            consumer = %self.id,
            from,
            to,
            off_guess_ms = f64::from(off_guess) * 1000.0 / f64::from(self.clock_rate),
            "timestamps continued from sender reports"
        );
        if off_guess.unsigned_abs() > self.clock_rate {
            // More than a second from the guess: a report is stale or wrong.
            return guessed;
        }
        if (ts.wrapping_sub(self.last_ts) as i32) <= 0 {
            // Captured no later than the last frame sent (the same instant on another
            // layer): just after it, for the receiver's frame order.
            return self.last_ts.wrapping_add(1).wrapping_sub(in_ts);
        }
        synced
    }

    /// Writes into `out` the retransmission of the packet this consumer sent as `seq`, if
    /// it is kept and may be resent now: the router's packet, found in its producer
    /// stream's store (`streams`), written again with the same sequence number and
    /// timestamp and fresh per-send values (`ctx`: transport-wide sequence number,
    /// abs-send-time), then wrapped in RTX where negotiated.
    pub fn retransmit(
        &mut self,
        now: Instant,
        seq: u16,
        streams: &[RecvStream],
        ctx: SendContext,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(stored) = self.stream.resend(now, seq) else {
            return false;
        };
        let Some(packet) = streams
            .get(usize::from(stored.store))
            .and_then(|s| s.store.as_ref())
            .and_then(|s| s.get(stored.seq))
        else {
            return false;
        };
        let Ok(header) = RtpHeader::parse(packet) else {
            return false;
        };
        let Ok(payload) = header.payload(packet) else {
            return false;
        };
        let src = RoutedPacket {
            header: &header,
            bytes: packet,
            payload,
        };
        self.write(&src, seq, stored.timestamp, ctx, out);
        if let Some(f) = self.vp8.as_ref() {
            let at = out.len() - payload.len();
            if !f.rewrite_sent(&mut out[at..]) {
                return false;
            }
        }
        if let Some(f) = self.vp9.as_ref() {
            // The marker as it was sent: the end of the highest spatial layer forwarded
            // (the filter's current one, which a switch may have moved since).
            let top = f.current().map(|(s, _)| s);
            if Vp9Descriptor::parse(payload).is_some_and(|d| {
                d.ends_frame && d.spatial_layer.is_some() && d.spatial_layer == top
            }) {
                out[1] |= 0x80;
            }
        }
        self.stream.wrap_retransmission(seq, out)
    }

    /// Forwards `packet` (in router terms, from `ingress.stream` of the producer's
    /// `streams`) if this consumer wants it, writing the consumer's packet into `out`.
    pub fn forward(
        &mut self,
        now: Instant,
        ingress: &Ingress,
        streams: &[RecvStream],
        packet: &RoutedPacket<'_>,
        ctx: SendContext,
        out: &mut Vec<u8>,
    ) -> Forwarded {
        if !self.is_active() {
            return Forwarded::No;
        }
        let in_seq = packet.header.sequence_number;
        let in_ts = packet.header.timestamp;
        let mut switched = false;
        if self.current != Some(ingress.stream) {
            // Start or switch only onto the target layer, and only on a key frame (audio
            // has no key frames: any packet starts it).
            let ok = self.target == Some(ingress.stream)
                && (self.kind == MediaKind::Audio || ingress.frame.key_frame);
            if !ok {
                return Forwarded::No;
            }
            // The new layer's numbers continue the consumer's; its older ones are
            // refused (their places in the output are taken).
            self.seq
                .get_or_insert_with(|| SeqManager::new(in_seq))
                .sync(in_seq);
            let next_ts = match self.last_sent_at {
                Some(at) => {
                    let ticks = rtp_ticks(now.saturating_duration_since(at), self.clock_rate);
                    self.last_ts.wrapping_add(ticks.max(1))
                }
                None => in_ts,
            };
            self.ts_offset = match self.last_sent_at.and(self.timeline_layer) {
                Some(from) => self.continued_offset(streams, from, ingress.stream, in_ts, next_ts),
                None => next_ts.wrapping_sub(in_ts),
            };
            self.timeline_layer = Some(ingress.stream);
            self.current = Some(ingress.stream);
            switched = true;
        }
        let out_ts = in_ts.wrapping_add(self.ts_offset);
        let mut svc_marker = false;
        if let Some(f) = self.vp9.as_mut() {
            let before = f.current();
            let verdict = match Vp9Descriptor::parse(packet.payload) {
                Some(d) => f.process(&d),
                None => SvcVerdict::Forward { marker: false },
            };
            let SvcVerdict::Forward { marker } = verdict else {
                if let Some(seq) = self.seq.as_mut() {
                    seq.drop(in_seq);
                }
                return Forwarded::No;
            };
            svc_marker = marker;
            switched = before.map(|c| c.0) != f.current().map(|c| c.0);
        }
        let filtered = self.vp8.is_some();
        if filtered {
            // Written first without its number: the temporal layer filter reads and
            // rewrites the VP8 descriptor; a dropped frame's number is skipped, so the
            // receiver sees no gap.
            self.write(packet, 0, out_ts, ctx, out);
            let at = out.len() - packet.payload.len();
            if let Some(f) = self.vp8.as_mut() {
                if switched {
                    f.rebase();
                }
                if f.process(&mut out[at..]) == Vp8Verdict::Drop {
                    if let Some(seq) = self.seq.as_mut() {
                        seq.drop(in_seq);
                    }
                    out.clear();
                    return Forwarded::No;
                }
            }
        }
        let Some(seq) = self.seq.as_mut() else {
            return Forwarded::No;
        };
        let Some(out_seq) = seq.input(in_seq) else {
            return Forwarded::No;
        };
        let newest = seq.max_output() == Some(out_seq);
        let stored = ingress.stored.map(|seq| StoredRef {
            store: ingress.stream as u8,
            seq,
            timestamp: out_ts,
            len: packet.bytes.len() as u16,
        });
        if filtered {
            out[2..4].copy_from_slice(&out_seq.to_be_bytes());
        } else {
            self.write(packet, out_seq, out_ts, ctx, out);
        }
        if svc_marker {
            out[1] |= 0x80;
        }
        self.stream
            .on_sent(now, out_seq, out_ts, packet.payload.len(), stored);
        if newest {
            self.last_ts = out_ts;
            self.last_sent_at = Some(now);
        }
        self.first_sent_at.get_or_insert(now);
        self.packets_sent += 1;
        Forwarded::Yes {
            layer: self.current_spatial_layer().unwrap_or(ingress.stream),
            switched,
        }
    }

    /// Writes the consumer's packet: fixed header with its SSRC, numbers and payload
    /// type (consumer codecs are cut from the router's, so the router payload type is
    /// the consumer's), its own extension block (its MID, the sending transport's transport-cc
    /// sequence and abs-send-time, pass-through extensions), then the payload.
    fn write(
        &self,
        src: &RoutedPacket<'_>,
        seq: u16,
        ts: u32,
        ctx: SendContext,
        out: &mut Vec<u8>,
    ) {
        let tcc = ctx.transport_seq.to_be_bytes();
        let abs = ctx.abs_send_time.to_be_bytes();
        let mut exts: [(u8, &[u8]); 8] = [(0, &[]); 8];
        let mut n = 0;
        if let Some(id) = self.mid_ext
            && !self.mid.is_empty()
        {
            exts[n] = (id, &self.mid);
            n += 1;
        }
        if let Some(id) = self.tcc_ext {
            exts[n] = (id, &tcc);
            n += 1;
        }
        if let Some(id) = self.abs_ext {
            exts[n] = (id, &abs[1..]);
            n += 1;
        }
        for &id in &self.pass_through {
            if n < exts.len()
                && let Some(v) = src.header.extension(src.bytes, id)
            {
                exts[n] = (id, v);
                n += 1;
            }
        }
        out.clear();
        out.extend_from_slice(&src.bytes[..12]);
        out[0] &= !0x3f; // no CSRCs, no extension, no padding (set below)
        out[1] = (out[1] & 0x80) | src.header.payload_type;
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        out[4..8].copy_from_slice(&ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        if n > 0 {
            let start = out.len();
            out.resize(start + 4 + 3 * 64, 0);
            match write_extension_block(&exts[..n], &mut out[start..]) {
                Some(len) => {
                    out.truncate(start + len);
                    out[0] |= 0x10;
                }
                None => out.truncate(start),
            }
        }
        out.extend_from_slice(src.payload);
    }
}
