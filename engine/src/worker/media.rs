//! The media half of the worker core: `produce`, `consume`, pausing and closing, and the
//! forwarding of every received packet to its producer's consumers (contract sections 5
//! and 6); key frame requests towards producers are in `key_frames.rs`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kolabmeet_net::rtp::{RtpHeader, RtpPacket};
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
    /// The earliest deadline of a producer's key frame request manager (may be early).
    pub key_frame_due: Option<Instant>,
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
        let Some(entry) = self.transports.get_mut(&transport) else {
            return Err(EngineError::TransportNotFound(transport));
        };
        if entry.listener.producers().len() >= MAX_PRODUCERS_PER_TRANSPORT {
            return Err(EngineError::Refused(
                "too many producers on this transport".into(),
            ));
        }
        params.rtcp.cname = Some(entry.producer_cname(params.rtcp.cname.as_deref(), &mut self.rng));
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
        let ssrcs: Vec<u32> = producer.known_ssrcs().collect();
        let mid = producer.mid().zip(producer.mid_ext());
        entry
            .listener
            .add(id, &ssrcs, mid)
            .map_err(|e| EngineError::Refused(e.to_string()))?;
        if let Some(ext) = producer.transport_cc_ext() {
            entry.set_twcc_ext(ext);
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
        let Some(entry) = self.transports.get_mut(&transport) else {
            return Err(EngineError::TransportNotFound(transport));
        };
        if entry.consumer_count() >= MAX_CONSUMERS_PER_TRANSPORT {
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
        params.mid = Some(entry.take_mid());
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
        entry.add_consumer(consumer.ssrc, id);
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
        if let Some(entry) = self.transports.get_mut(&p.transport) {
            entry.remove_producer(id);
        }
        for cid in self.media.fanout.remove(&id).unwrap_or_default() {
            if let Some(c) = self.media.consumers.remove(&cid) {
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
        self.forget_consumer_streams(&c);
        if let Some(list) = self.media.fanout.get_mut(&c.producer) {
            list.retain(|x| *x != id);
        }
    }

    /// Frees a closed consumer's SSRCs on its transport.
    fn forget_consumer_streams(&mut self, c: &Consumer) {
        if let Some(entry) = self.transports.get_mut(&c.transport) {
            entry.remove_consumer(c.ssrc, c.rtx_ssrc);
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
        let Ok(header) = RtpHeader::parse(buf) else {
            self.counters.unknown_ssrc += 1;
            return;
        };
        let Some(entry) = self.transports.get_mut(&transport) else {
            return;
        };
        // Every RTP packet that carries a transport-wide number counts for the sender's
        // bandwidth estimation, retransmissions and probes included, even when no
        // producer claims it (mediasoup's `Transport::ReceiveRtpPacket` feeds its TCC
        // server the same way), or the sender would read the missing numbers as losses.
        entry.record_twcc(now, &header, buf);
        let Some((pid, by_ssrc)) = entry.listener.find(&header, buf) else {
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
                entry.listener.bind(ssrc, pid);
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
            if !tentry.is_connected() {
                continue;
            }
            let Some(producer) = self.media.producers.get(&pid) else {
                break;
            };
            c.update_target(now, &producer.streams);
            let ctx = SendContext {
                transport_seq: tentry.transport_seq(),
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
            if let Err(out) = tentry.send_rtp(out, &mut self.transmits) {
                self.pool.give(out);
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

    /// abs-send-time now: 6.18 fixed-point seconds, 24 bits.
    pub(super) fn abs_send_time(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        let d = now.saturating_duration_since(epoch);
        let fixed = (d.as_secs() << 18) + ((u64::from(d.subsec_nanos()) << 18) / 1_000_000_000);
        (fixed & 0x00ff_ffff) as u32
    }
}
