//! A consumer (mediasoup `SimpleConsumer` / `SimulcastConsumer` / `SvcConsumer`): its
//! layer policy ([`LayerPolicy`], one per consumer type) decides which of its producer's
//! packets go to its peer; the consumer writes each into its own outgoing buffer with its
//! SSRC, sequence numbers and timestamps, so that the receiver sees one continuous stream
//! across layer switches (which happen only on key frames).

use std::time::{Duration, Instant};

use kolabmeet_net::rtp::{RtpHeader, write_extension_block};

use super::producer::{Ingress, RoutedPacket};
use super::recv_stream::RecvStream;
use super::send_stream::SendStream;
use crate::arena::{ProducerKey, TransportKey};
use crate::codecs::VideoCodec;
use crate::ids::{ConsumerId, PeerId};
use crate::ortc::{MediaKind, RtpParameters, ScalabilityMode};
use crate::rtp_stream::{RetransmissionBufferConfig, SeqManager, StoredRef, rtp_ticks};

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

mod layer_policy;
mod layer_selection;
mod rtp_timeline;
mod simple_layers;
mod simulcast_layers;
mod svc_layers;

pub use layer_policy::Allocated;
use layer_policy::{Admit, LayerSelection, Selected};
use simple_layers::SimpleLayers;
use simulcast_layers::SimulcastLayers;
use svc_layers::SvcLayers;

/// How long a consumer whose producer sends no sender reports waits before it reports on
/// the worker's own clock (browsers send their first within 7.5 s).
pub const OWN_CLOCK_AFTER: Duration = Duration::from_secs(10);

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

/// A consumer's layer policy, by consumer type (mediasoup's `SimpleConsumer`,
/// `SimulcastConsumer`, `SvcConsumer`).
#[derive(Debug)]
pub enum LayerPolicy {
    /// One stream, forwarded whole (temporal layers filtered for VP8).
    Simple(SimpleLayers),
    /// One of several streams, switched on key frames (temporal layers filtered for VP8).
    Simulcast(SimulcastLayers),
    /// Spatial and temporal layers within one VP9 stream.
    Svc(SvcLayers),
}

impl LayerPolicy {
    /// The policy of a consumer of `consumer_type`; `vp8` when its codec is VP8 video;
    /// `mode` the spatial and temporal layers (and K-SVC) of its scalability mode.
    pub fn new(consumer_type: ConsumerType, vp8: bool, mode: (u8, u8, bool)) -> Self {
        let vp8 = vp8.then(crate::codecs::vp8_layer_filter::Vp8LayerFilter::default);
        match consumer_type {
            ConsumerType::Simple => LayerPolicy::Simple(SimpleLayers::new(vp8)),
            ConsumerType::Simulcast => LayerPolicy::Simulcast(SimulcastLayers::new(vp8)),
            ConsumerType::Svc => LayerPolicy::Svc(SvcLayers::new(mode.0, mode.1, mode.2)),
        }
    }

    /// The policy as its behaviour.
    pub fn get(&self) -> &dyn LayerSelection {
        match self {
            LayerPolicy::Simple(p) => p,
            LayerPolicy::Simulcast(p) => p,
            LayerPolicy::Svc(p) => p,
        }
    }

    /// The policy as its behaviour, mutable.
    pub fn get_mut(&mut self) -> &mut dyn LayerSelection {
        match self {
            LayerPolicy::Simple(p) => p,
            LayerPolicy::Simulcast(p) => p,
            LayerPolicy::Svc(p) => p,
        }
    }
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
    /// The top temporal layer of its scalability mode (what `consumerLayersChanged`
    /// reports when the allocation does not limit it), read once from `rtp_parameters`.
    pub top_temporal_layer: u8,
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
    /// Which packets it forwards: its stream, and the layers within it (VP8 temporal
    /// layers, VP9 SVC), by its consumer type.
    policy: LayerPolicy,
    /// What the transport's bandwidth allocation gives it (issue 9).
    allocated: Allocated,
    /// The layers last reported with `consumerLayersChanged`.
    pub reported_layers: Option<crate::media_engine::ConsumerLayers>,
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
        let is_vp8 =
            media_codec.and_then(|c| VideoCodec::from_mime(&c.mime_type)) == Some(VideoCodec::Vp8);
        let clock_rate = media_codec.map_or(90_000, |c| c.clock_rate);
        // What it keeps for NACKs, when it negotiated them (audio too, issue 17).
        let nack = media_codec
            .is_some_and(|c| c.has_nack())
            .then(|| RetransmissionBufferConfig::for_kind(kind));
        let rtx_pt = rtp_parameters
            .codecs
            .iter()
            .find(|c| c.is_rtx())
            .map(|c| c.payload_type);
        let stream = SendStream::new(ssrc, clock_rate, nack, rtx_ssrc.zip(rtx_pt));
        let mode = ScalabilityMode::parse(enc.and_then(|e| e.scalability_mode.as_deref()));
        let policy = LayerPolicy::new(
            consumer_type,
            kind == MediaKind::Video && is_vp8,
            (mode.spatial_layers, mode.temporal_layers, mode.ksvc),
        );
        Consumer {
            id,
            peer,
            transport,
            producer,
            kind,
            mid: rtp_parameters.mid.clone().unwrap_or_default().into_bytes(),
            mid_ext: rtp_parameters.header_extension_id(MID_URI),
            tcc_ext: rtp_parameters.header_extension_id(TRANSPORT_CC_URI),
            abs_ext: rtp_parameters.header_extension_id(ABS_SEND_TIME_URI),
            pass_through,
            clock_rate,
            rtp_parameters,
            top_temporal_layer: mode.temporal_layers.saturating_sub(1),
            paused,
            producer_paused,
            ssrc,
            rtx_ssrc,
            policy,
            allocated: Allocated::Unknown,
            reported_layers: None,
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

    /// Simple, simulcast or SVC.
    pub fn consumer_type(&self) -> ConsumerType {
        self.policy.get().consumer_type()
    }

    /// The stream (simulcast encoding) being forwarded.
    pub fn current_layer(&self) -> Option<usize> {
        self.policy.get().current_stream()
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
        let at = out.len() - payload.len();
        match self.policy.get().resent(&mut out[at..]) {
            None => return false,
            Some(true) => out[1] |= 0x80,
            Some(false) => {}
        }
        self.stream.wrap_retransmission(seq, out)
    }

    /// Skips the packet numbered `in_seq` (in router terms) without forwarding it: the
    /// consumer's numbers go on without a gap (media that waited while the worker
    /// stalled, `Egress::stale`).
    pub fn skip(&mut self, in_seq: u16) {
        if let Some(seq) = self.seq.as_mut() {
            seq.drop(in_seq);
        }
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
        let policy = self.policy.get_mut();
        let started = match policy.admit(self.kind, ingress.stream, ingress.frame.key_frame) {
            Admit::No => return Forwarded::No,
            Admit::Continue => false,
            Admit::Start => true,
        };
        if started {
            // The new stream's numbers continue the consumer's; its older ones are
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
        }
        let selected = self
            .policy
            .get_mut()
            .select(&ingress.frame, packet.payload, started);
        let Selected::Forward {
            marker,
            switched,
            vp8,
        } = selected
        else {
            // A frame of a layer not forwarded: its number is skipped, so the receiver
            // sees no gap.
            if let Some(seq) = self.seq.as_mut() {
                seq.drop(in_seq);
            }
            return Forwarded::No;
        };
        let out_ts = in_ts.wrapping_add(self.ts_offset);
        let Some(seq) = self.seq.as_mut() else {
            return Forwarded::No;
        };
        let Some(out_seq) = seq.input(in_seq) else {
            return Forwarded::No;
        };
        let newest = seq.max_output() == Some(out_seq);
        let stored = ingress.stored.map(|seq| StoredRef {
            store: ingress.stream as u8,
            seq: seq as u32,
            timestamp: out_ts,
            len: packet.bytes.len() as u16,
        });
        self.write(packet, out_seq, out_ts, ctx, out);
        if let Some((d, ids)) = vp8 {
            let at = out.len() - packet.payload.len();
            ids.apply(&d, &mut out[at..]);
        }
        if marker {
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
            switched: started || switched,
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
