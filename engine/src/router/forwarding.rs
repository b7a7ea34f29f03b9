//! The hot path of a router (contract section 6): a decrypted RTP packet of one of its
//! producers is brought into router terms once, then written once per consumer of the
//! producer into that consumer's own buffer (its SSRC, sequence numbers, timestamps and
//! header extensions) and protected by the consumer's transport. Producers, consumers and
//! transports are reached by slab key; the packet's header was read once, before
//! decryption, and every step reads that view.

use std::time::Instant;

use kolabmeet_net::rtp::RtpHeader;

use super::consumer::{ConsumerType, Forwarded, SendContext};
use super::egress::Egress;
use super::producer::{Ingress, RoutedPacket};
use super::room::Router;
use crate::arena::ProducerKey;
use crate::media_engine::{ConsumerLayers, EngineEvent};
use crate::mirror::PipeMessage;
use crate::transport::StreamRef;

impl Router {
    /// Routes a decrypted RTP packet of producer `pk` that matched its stream `m`: ingress
    /// (RTX undone, rewritten into router terms in place, `header` following), then one
    /// packet per consumer. `false` when the producer dropped it (unknown payload type,
    /// malformed RTX or padding).
    pub fn on_rtp(
        &mut self,
        now: Instant,
        pk: ProducerKey,
        m: StreamRef,
        header: &mut RtpHeader,
        buf: &mut Vec<u8>,
        egress: &mut Egress<'_>,
    ) -> bool {
        let Some(producer) = self.producers.get_mut(pk) else {
            return false;
        };
        let Some(ingress) = producer.receive(now, m, header, buf) else {
            return false;
        };
        self.fan_out(now, pk, &ingress, header, buf, egress);
        true
    }

    /// Routes a packet of the mirrored producer `pk` handed over by its origin worker
    /// (issue 16): already in router terms, so only its statistics, its store and its
    /// consumers. `false` when the producer dropped it (no such stream, malformed).
    pub fn on_piped_rtp(
        &mut self,
        now: Instant,
        pk: ProducerKey,
        stream: usize,
        buf: &[u8],
        egress: &mut Egress<'_>,
    ) -> bool {
        let Ok(header) = RtpHeader::parse(buf) else {
            return false;
        };
        let Some(producer) = self.producers.get_mut(pk) else {
            return false;
        };
        let Some(ingress) = producer.receive_piped(now, stream, &header, buf) else {
            return false;
        };
        self.fan_out(now, pk, &ingress, &header, buf, egress);
        true
    }

    /// After ingress: the packet to each mirror of the producer (once per worker), then
    /// one packet per consumer, then the key frame requests it showed a need for.
    fn fan_out(
        &mut self,
        now: Instant,
        pk: ProducerKey,
        ingress: &Ingress,
        header: &RtpHeader,
        buf: &[u8],
        egress: &mut Egress<'_>,
    ) {
        let Router {
            room,
            producers,
            consumers,
            nack_due,
            next_report,
            report_interval,
            ..
        } = self;
        let Some(producer) = producers.get_mut(pk) else {
            return;
        };
        if let Some(t) = producer.streams[ingress.stream].stats.poll_timeout()
            && nack_due.is_none_or(|d| t < d)
        {
            *nack_due = Some(t);
        }
        next_report.get_or_insert_with(|| now + report_interval.draw());
        if producer.paused || !ingress.forward {
            return;
        }
        if egress.stale {
            // Waited in the socket while the worker stalled: not forwarded, and its
            // number skipped by every consumer (the receivers see a jump in time and
            // picture ids, not a gap to NACK).
            for &ck in &producer.consumers {
                if let Some(c) = consumers.get_mut(ck) {
                    c.skip(header.sequence_number);
                }
            }
            return;
        }
        // Only what is watched crosses (issue 16): whole what each worker wants, as a
        // notice the rest, nothing to a worker with no consumer of it.
        let stream = ingress.stream as u8;
        for m in producer.mirrors.iter().filter(|m| m.want.consumers) {
            let message = if m.want.whole(stream) {
                let mut packet = egress.pool.take();
                packet.extend_from_slice(buf);
                PipeMessage::Rtp {
                    room: *room,
                    producer: producer.id,
                    stream,
                    packet,
                }
            } else {
                PipeMessage::Notice {
                    room: *room,
                    producer: producer.id,
                    stream,
                    len: u16::try_from(buf.len()).unwrap_or(u16::MAX),
                    spatial: ingress.frame.spatial_layer,
                    temporal: ingress.frame.temporal_layer,
                }
            };
            if let Err(m) = egress.pipes.push(m.worker, message)
                && let Some(b) = m.into_buffer()
            {
                egress.pool.give(b);
            }
        }
        let producer = &*producer;
        let mut key_frame_needed = Vec::new();
        if ingress.key_frame_required {
            key_frame_needed.push(ingress.stream);
        }
        if !producer.consumers.is_empty() {
            let packet = RoutedPacket {
                header,
                bytes: buf,
                payload: &buf[ingress.payload.clone()],
            };
            let Egress {
                transports,
                transmits,
                events,
                pool,
                clock,
                ..
            } = egress;
            let abs_send_time = clock.abs_send_time(now);
            for &ck in &producer.consumers {
                let Some(c) = consumers.get_mut(ck) else {
                    continue;
                };
                let Some(transport) = transports.get_mut(c.transport) else {
                    continue;
                };
                if !transport.is_connected() {
                    continue;
                }
                c.update_target(now, &producer.streams);
                let ctx = SendContext {
                    transport_seq: transport.transport_seq(),
                    abs_send_time,
                };
                let mut out = pool.take();
                let forwarded = c.forward(now, ingress, &producer.streams, &packet, ctx, &mut out);
                let Forwarded::Yes { layer, switched } = forwarded else {
                    pool.give(out);
                    // Still waiting for a key frame on its layer: keep asking (the
                    // producer's key frame request manager coalesces).
                    if let Some(stream) = c.waiting_for_key_frame() {
                        key_frame_needed.push(stream);
                    }
                    continue;
                };
                if matches!(
                    c.consumer_type(),
                    ConsumerType::Simulcast | ConsumerType::Svc
                ) {
                    // The layers the receiver now gets, once the packet that starts them
                    // went out: the spatial layer (simulcast stream or SVC layer), and
                    // the temporal layer the allocation limits the VP8 or SVC filter to
                    // (else the top one of the scalability mode).
                    let temporal = c.limited_temporal_layer(c.top_temporal_layer);
                    let layers = ConsumerLayers {
                        spatial_layer: layer as u8,
                        temporal_layer: temporal,
                    };
                    if switched || c.reported_layers != Some(layers) {
                        c.reported_layers = Some(layers);
                        events.push_back(EngineEvent::ConsumerLayersChanged {
                            peer: c.peer,
                            consumer: c.id,
                            layers: Some(layers),
                        });
                    }
                }
                if let Err(out) = transport.send_rtp(now, out, c.carries_transport_seq(), transmits)
                {
                    pool.give(out);
                }
            }
        }
        key_frame_needed.sort_unstable();
        key_frame_needed.dedup();
        for stream in key_frame_needed {
            self.request_key_frame(now, pk, stream, egress);
        }
    }
}
