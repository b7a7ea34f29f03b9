//! The media half of the worker core: `produce`, `consume`, pausing and closing, and the
//! forwarding of every received packet to its producer's consumers (contract sections 5
//! and 6); key frame requests towards producers are in `key_frames.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kolabmeet_net::rtp::RtpPacket;
use rand::Rng;

use super::core::WorkerCore;
use crate::ids::{ConsumerId, PeerId, ProducerId, TransportId};
use crate::media_engine::{ConsumerLayers, EngineError, EngineEvent, EngineReply};
use crate::ortc::{
    MediaKind, RtpCapabilities, RtpParameters, ScalabilityMode, can_consume,
    consumable_rtp_parameters, consumer_rtp_parameters, producer_rtp_mapping,
};
use crate::router::{Consumer, ConsumerInit, Forwarded, Producer, ProducerInit, SendContext};
use kolabmeet_media_types::replies::ConsumerInfo;

/// Producers one transport may carry.
pub const MAX_PRODUCERS_PER_TRANSPORT: usize = 32;
/// Consumers one transport may carry.
pub const MAX_CONSUMERS_PER_TRANSPORT: usize = 1024;

/// Media state of the worker: producers, consumers, and per-transport routing tables.
#[derive(Default)]
pub(super) struct MediaState {
    pub producers: HashMap<ProducerId, Producer>,
    pub consumers: HashMap<ConsumerId, Consumer>,
    /// Consumers of each producer.
    pub fanout: HashMap<ProducerId, Vec<ConsumerId>>,
    /// Per receiving transport: SSRC -> producer, and MID -> producer.
    pub ssrc_table: HashMap<(TransportId, u32), ProducerId>,
    pub mid_table: HashMap<(TransportId, Vec<u8>), ProducerId>,
    /// Per sending transport: next MID, transport-cc sequence.
    pub next_mid: HashMap<TransportId, u32>,
    /// Per receiving transport: the CNAME all its producers get (mediasoup's
    /// `cnameForProducers`).
    pub cname: HashMap<TransportId, String>,
    pub tcc_seq: HashMap<TransportId, u16>,
    /// The earliest deadline of a producer's key frame request manager (may be early).
    pub key_frame_due: Option<Instant>,
    /// Per sending transport: consumer SSRC -> consumer (RTCP feedback names them).
    pub consumer_ssrcs: HashMap<(TransportId, u32), ConsumerId>,
    /// When the next round of RTCP reports is due (set once media flows).
    pub next_report: Option<Instant>,
    /// The earliest NACK deadline of any producer stream (may be early: a visit then
    /// finds nothing due and recomputes it).
    pub nack_due: Option<Instant>,
    /// The wall clock at one instant (time since the Unix epoch), for NTP timestamps.
    pub wall_clock: Option<(Instant, Duration)>,
}

impl WorkerCore {
    /// `produce`: maps the client's parameters onto the router, registers the producer's
    /// SSRCs and MID on its transport, and answers `{id}`.
    pub(super) fn produce(
        &mut self,
        peer: PeerId,
        transport: TransportId,
        kind: MediaKind,
        mut params: RtpParameters,
        paused: bool,
    ) -> Result<EngineReply, EngineError> {
        let room = self.transport_room(peer, transport)?;
        let owned = self
            .media
            .producers
            .values()
            .filter(|p| p.transport == transport)
            .count();
        if owned >= MAX_PRODUCERS_PER_TRANSPORT {
            return Err(EngineError::Refused(
                "too many producers on this transport".into(),
            ));
        }
        // mediasoup: the first non-empty CNAME a client gives is the transport's, else a
        // random one; every producer of the transport carries it (receivers use it as the
        // media stream id).
        let cname = match self.media.cname.get(&transport) {
            Some(c) => c.clone(),
            None => {
                let c = match params.rtcp.cname.as_deref() {
                    Some(c) if !c.is_empty() => c.to_owned(),
                    _ => format!("{:08x}", self.rng.random::<u32>()),
                };
                self.media.cname.insert(transport, c.clone());
                c
            }
        };
        params.rtcp.cname = Some(cname);
        let caps = self.capabilities.clone();
        let first_ssrc = self.rng.random_range(100_000_000..900_000_000);
        let mapping = producer_rtp_mapping(&mut params, &caps, first_ssrc)
            .map_err(EngineError::InvalidParameters)?;
        let consumable = consumable_rtp_parameters(kind, &params, &caps, &mapping)
            .map_err(EngineError::InvalidParameters)?;
        let id = ProducerId::random();
        let producer = Producer::new(ProducerInit {
            id,
            room,
            peer,
            transport,
            kind,
            rtp_parameters: params,
            consumable,
            mapping,
            router: &caps,
            paused,
        });
        for ssrc in producer.known_ssrcs() {
            if self.media.ssrc_table.contains_key(&(transport, ssrc)) {
                return Err(EngineError::Refused(format!("ssrc {ssrc} already in use")));
            }
        }
        if let Some(mid) = producer.mid() {
            let key = (transport, mid.as_bytes().to_vec());
            if self.media.mid_table.contains_key(&key) {
                return Err(EngineError::Refused(format!("mid {mid} already in use")));
            }
            self.media.mid_table.insert(key, id);
        }
        for ssrc in producer.known_ssrcs() {
            self.media.ssrc_table.insert((transport, ssrc), id);
        }
        if let Some(ext) = producer.transport_cc_ext()
            && let Some(entry) = self.transports.get_mut(&transport)
        {
            entry.twcc_ext = Some(ext);
        }
        tracing::debug!(target: "kolabmeet::producer", %room, %peer, producer = %id, ?kind, "producer created");
        self.media.producers.insert(id, producer);
        self.media.fanout.insert(id, Vec::new());
        Ok(EngineReply::ProducerCreated(id))
    }

    /// `consume`: a consumer of `producer` on the peer's transport, in the parameters the
    /// peer's device can receive; answers the `newConsumer` data.
    pub(super) fn consume(
        &mut self,
        now: Instant,
        peer: PeerId,
        transport: TransportId,
        producer_id: ProducerId,
        caps: &RtpCapabilities,
        paused: bool,
    ) -> Result<EngineReply, EngineError> {
        let room = self.transport_room(peer, transport)?;
        let producer = self
            .media
            .producers
            .get(&producer_id)
            .filter(|p| p.room == room)
            .ok_or(EngineError::ProducerNotFound(producer_id))?;
        let count = self
            .media
            .consumers
            .values()
            .filter(|c| c.transport == transport)
            .count();
        if count >= MAX_CONSUMERS_PER_TRANSPORT {
            return Err(EngineError::Refused(
                "too many consumers on this transport".into(),
            ));
        }
        if !can_consume(&producer.consumable, caps).map_err(EngineError::InvalidParameters)? {
            return Err(EngineError::Refused(
                "the device cannot receive this producer's codecs".into(),
            ));
        }
        let ssrc = self.rng.random_range(100_000_000..999_999_990);
        let mut params = consumer_rtp_parameters(
            &producer.consumable,
            caps,
            producer.kind == MediaKind::Video,
            ssrc,
        )
        .map_err(EngineError::InvalidParameters)?;
        let mid = self.media.next_mid.entry(transport).or_insert(0);
        params.mid = Some(mid.to_string());
        *mid += 1;
        let simulcast = producer.streams.len() > 1;
        let (kind, producer_paused) = (producer.kind, producer.paused);
        let id = ConsumerId::random();
        let consumer = Consumer::new(ConsumerInit {
            id,
            peer,
            transport,
            producer: producer_id,
            kind,
            rtp_parameters: params.clone(),
            simulcast,
            paused,
            producer_paused,
        });
        let consumer_type = consumer.consumer_type;
        self.media
            .consumer_ssrcs
            .insert((transport, consumer.ssrc), id);
        self.media.consumers.insert(id, consumer);
        if let Some(list) = self.media.fanout.get_mut(&producer_id) {
            list.push(id);
        }
        if !paused {
            self.request_key_frame_for(now, id);
        }
        Ok(EngineReply::ConsumerCreated(ConsumerInfo {
            id,
            kind,
            rtp_parameters: params,
            consumer_type,
            producer_paused,
        }))
    }

    /// Pauses or resumes a producer of `peer`; its consumers' peers hear about it.
    pub(super) fn set_producer_paused(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: ProducerId,
        paused: bool,
    ) -> Result<EngineReply, EngineError> {
        let p = self
            .media
            .producers
            .get_mut(&id)
            .filter(|p| p.peer == peer)
            .ok_or(EngineError::ProducerNotFound(id))?;
        if p.paused == paused {
            return Ok(EngineReply::Done);
        }
        p.paused = paused;
        for cid in self.media.fanout.get(&id).cloned().unwrap_or_default() {
            if let Some(c) = self.media.consumers.get_mut(&cid) {
                c.producer_paused = paused;
                c.reset_layer();
                self.events.push_back(EngineEvent::ConsumerProducerPaused {
                    peer: c.peer,
                    consumer: cid,
                    paused,
                });
            }
            if !paused {
                self.request_key_frame_for(now, cid);
            }
        }
        Ok(EngineReply::Done)
    }

    /// Pauses or resumes a consumer of `peer`; resuming asks for a key frame.
    pub(super) fn set_consumer_paused(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: ConsumerId,
        paused: bool,
    ) -> Result<EngineReply, EngineError> {
        let c = self
            .media
            .consumers
            .get_mut(&id)
            .filter(|c| c.peer == peer)
            .ok_or(EngineError::ConsumerNotFound(id))?;
        if c.paused != paused {
            c.paused = paused;
            c.reset_layer();
            if !paused {
                self.request_key_frame_for(now, id);
            }
        }
        Ok(EngineReply::Done)
    }

    /// Closes a producer: its consumers close too, and their peers are told
    /// (`consumerClosed`).
    pub(super) fn close_producer(&mut self, id: ProducerId) {
        let Some(p) = self.media.producers.remove(&id) else {
            return;
        };
        self.media.ssrc_table.retain(|_, v| *v != id);
        self.media.mid_table.retain(|_, v| *v != id);
        let ssrcs: Vec<u32> = p.known_ssrcs().collect();
        if let Some(entry) = self.transports.get_mut(&p.transport) {
            entry.transport.forget_srtp_streams(&[], &ssrcs);
        }
        for cid in self.media.fanout.remove(&id).unwrap_or_default() {
            if let Some(c) = self.media.consumers.remove(&cid) {
                self.media.consumer_ssrcs.remove(&(c.transport, c.ssrc));
                self.forget_consumer_streams(&c);
                self.events.push_back(EngineEvent::ConsumerClosed {
                    peer: c.peer,
                    consumer: cid,
                });
            }
        }
        tracing::debug!(target: "kolabmeet::producer", producer = %id, peer = %p.peer, "producer closed");
    }

    /// Closes a consumer without telling its peer (it asked, or never acked).
    pub(super) fn close_consumer(&mut self, id: ConsumerId) {
        let Some(c) = self.media.consumers.remove(&id) else {
            return;
        };
        self.media.consumer_ssrcs.remove(&(c.transport, c.ssrc));
        self.forget_consumer_streams(&c);
        if let Some(list) = self.media.fanout.get_mut(&c.producer) {
            list.retain(|x| *x != id);
        }
    }

    /// Frees the SRTP state of a closed consumer's SSRCs on its transport.
    fn forget_consumer_streams(&mut self, c: &Consumer) {
        if let Some(entry) = self.transports.get_mut(&c.transport) {
            let ssrcs: Vec<u32> = [Some(c.ssrc), c.rtx_ssrc].into_iter().flatten().collect();
            entry.transport.forget_srtp_streams(&ssrcs, &[]);
        }
    }

    /// Closes everything a transport carried; returns the producers and consumers closed.
    pub(super) fn close_transport_media(
        &mut self,
        transport: TransportId,
    ) -> (Vec<ProducerId>, Vec<ConsumerId>) {
        let producers: Vec<ProducerId> = self
            .media
            .producers
            .values()
            .filter(|p| p.transport == transport)
            .map(|p| p.id)
            .collect();
        for p in &producers {
            self.close_producer(*p);
        }
        let consumers: Vec<ConsumerId> = self
            .media
            .consumers
            .values()
            .filter(|c| c.transport == transport)
            .map(|c| c.id)
            .collect();
        for c in &consumers {
            self.close_consumer(*c);
        }
        self.media.next_mid.remove(&transport);
        self.media.tcc_seq.remove(&transport);
        self.media.cname.remove(&transport);
        (producers, consumers)
    }

    /// Closes every producer of a peer (its PUBLISHER role was taken away).
    pub(super) fn close_producers_of(&mut self, peer: PeerId) {
        let ids: Vec<ProducerId> = self
            .media
            .producers
            .values()
            .filter(|p| p.peer == peer)
            .map(|p| p.id)
            .collect();
        for id in ids {
            self.close_producer(id);
        }
    }

    /// A decrypted RTP packet arrived on `transport`: find its producer, bring it into
    /// router terms and write it once per consumer.
    pub(super) fn route_rtp(&mut self, now: Instant, transport: TransportId, buf: &mut Vec<u8>) {
        self.record_transport_cc(now, transport, buf);
        let Some((pid, by_ssrc)) = self.producer_of(transport, buf) else {
            self.counters.unknown_ssrc += 1;
            return;
        };
        let Some(producer) = self.media.producers.get_mut(&pid) else {
            return;
        };
        let Some(ingress) = producer.receive(now, buf) else {
            self.counters.unknown_ssrc += 1;
            return;
        };
        if let Some(t) = producer.streams[ingress.stream].stats.poll_timeout()
            && self.media.nack_due.is_none_or(|d| t < d)
        {
            self.media.nack_due = Some(t);
        }
        if !by_ssrc {
            // Found by MID: the producer learnt this packet's SSRC (by RID); route it
            // directly from now on.
            for ssrc in producer.known_ssrcs() {
                self.media
                    .ssrc_table
                    .entry((transport, ssrc))
                    .or_insert(pid);
            }
        }
        let paused = producer.paused;
        let Ok(packet) = RtpPacket::parse(&buf[..]) else {
            return;
        };
        self.media
            .next_report
            .get_or_insert(now + super::rtcp_reports::REPORT_INTERVAL);
        if paused {
            return;
        }
        // Taken out for the loop (nothing in it changes the fan-out) and put back after.
        let consumers = self.media.fanout.get_mut(&pid).map(std::mem::take);
        let consumers = consumers.unwrap_or_default();
        let abs_send_time = self.abs_send_time(now);
        let mut key_frame_needed = Vec::new();
        // The router's packet, shared by every consumer that keeps what it sends for
        // NACK answers: one allocation per packet, not one copy per consumer.
        let mut source: Option<std::sync::Arc<[u8]>> = None;
        for &cid in &consumers {
            let Some(c) = self.media.consumers.get_mut(&cid) else {
                continue;
            };
            let Some(tentry) = self.transports.get_mut(&c.transport) else {
                continue;
            };
            if !tentry.transport.is_connected() {
                continue;
            }
            let Some(producer) = self.media.producers.get(&pid) else {
                break;
            };
            c.update_target(now, &producer.streams);
            let seq = self.media.tcc_seq.entry(c.transport).or_insert(0);
            let ctx = SendContext {
                transport_seq: *seq,
                abs_send_time,
            };
            let mut out = self.pool.take();
            if source.is_none() && c.keeps_sent_packets() {
                source = Some(std::sync::Arc::from(packet.as_bytes()));
            }
            let forwarded = c.forward(now, &ingress, &packet, source.as_ref(), ctx, &mut out);
            let Forwarded::Yes { layer, switched } = forwarded else {
                self.pool.give(out);
                // Still waiting for a key frame on its layer: keep asking (throttled).
                if let Some(stream) = c.waiting_for_key_frame() {
                    key_frame_needed.push(stream);
                }
                continue;
            };
            *seq = seq.wrapping_add(1);
            if switched && c.consumer_type == crate::router::ConsumerType::Simulcast {
                let temporal = ScalabilityMode::parse(
                    c.rtp_parameters
                        .encodings
                        .first()
                        .and_then(|e| e.scalability_mode.as_deref()),
                )
                .temporal_layers;
                self.events.push_back(EngineEvent::ConsumerLayersChanged {
                    peer: c.peer,
                    consumer: cid,
                    layers: Some(ConsumerLayers {
                        spatial_layer: layer as u8,
                        temporal_layer: temporal.saturating_sub(1),
                    }),
                });
            }
            match tentry.transport.selected_tuple() {
                Some(tuple) if tentry.transport.protect_rtp(&mut out) => {
                    self.transmits
                        .push_back(crate::transport::Transmit { tuple, data: out });
                }
                _ => self.pool.give(out),
            }
        }
        if let Some(list) = self.media.fanout.get_mut(&pid) {
            *list = consumers;
        }
        if ingress.key_frame_required {
            key_frame_needed.push(ingress.stream);
        }
        key_frame_needed.sort_unstable();
        key_frame_needed.dedup();
        for stream in key_frame_needed {
            self.request_key_frame(now, pid, stream);
        }
    }

    /// Records the packet's transport-wide sequence number for the sender's bandwidth
    /// estimation: every RTP packet that carries one counts, retransmissions and padding
    /// probes included, even when no producer claims it (mediasoup's
    /// `Transport::ReceiveRtpPacket` feeds its TCC server the same way), or the sender
    /// would read the missing numbers as losses.
    fn record_transport_cc(&mut self, now: Instant, transport: TransportId, buf: &[u8]) {
        let Some(entry) = self.transports.get_mut(&transport) else {
            return;
        };
        let Some(id) = entry.twcc_ext else {
            return;
        };
        if let Ok(packet) = RtpPacket::parse(buf)
            && let Some(&[a, b]) = packet.extension(id)
        {
            entry
                .twcc
                .on_packet(now, u16::from_be_bytes([a, b]), packet.ssrc());
        }
    }

    /// The producer a packet on `transport` belongs to, and whether its SSRC named it
    /// (else its MID did).
    fn producer_of(&self, transport: TransportId, buf: &[u8]) -> Option<(ProducerId, bool)> {
        let packet = RtpPacket::parse(buf).ok()?;
        if let Some(p) = self.media.ssrc_table.get(&(transport, packet.ssrc())) {
            return Some((*p, true));
        }
        // Unknown SSRC: every producer of this transport that reads a MID from it.
        self.media
            .producers
            .values()
            .filter(|p| p.transport == transport)
            .find_map(|p| {
                let mid = p.packet_mid(&packet)?;
                self.media
                    .mid_table
                    .get(&(transport, mid.to_vec()))
                    .map(|p| (*p, false))
            })
    }

    /// abs-send-time now: 6.18 fixed-point seconds, 24 bits.
    pub(super) fn abs_send_time(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        let d = now.saturating_duration_since(epoch);
        let fixed = (d.as_secs() << 18) + ((u64::from(d.subsec_nanos()) << 18) / 1_000_000_000);
        (fixed & 0x00ff_ffff) as u32
    }
}
