//! The control operations of a router (contract section 5, mediasoup's `Router` and
//! `Transport` methods): `produce`, `consume`, pausing and resuming either side, and
//! closing producers, consumers and whatever a transport carried. The hot path is in
//! `forwarding.rs`; nothing here runs per packet.

use std::time::Instant;

use rand::Rng;

use super::consumer::{Consumer, ConsumerInit};
use super::egress::Egress;
use super::producer::{Producer, ProducerInit, ProducerOrigin};
use super::room::Router;
use crate::arena::{ConsumerKey, ProducerKey, TransportKey};
use crate::ids::{ConsumerId, PeerId, ProducerId};
use crate::media_engine::{EngineError, EngineEvent, ProducerSource, Refusal};
use crate::ortc::{
    MediaKind, RtpCapabilities, RtpParameters, can_consume, consumable_rtp_parameters,
    consumer_rtp_parameters, producer_rtp_mapping,
};
use crate::transport::ListenerError;
use kolabmeet_media_types::replies::ConsumerInfo;

/// Producers one transport may carry.
pub const MAX_PRODUCERS_PER_TRANSPORT: usize = 32;
/// Consumers one transport may carry.
pub const MAX_CONSUMERS_PER_TRANSPORT: usize = 1024;

/// A `produce` request, checked for ownership by the worker.
#[derive(Debug)]
pub struct ProduceRequest {
    /// The producing peer.
    pub peer: PeerId,
    /// Its transport.
    pub transport: TransportKey,
    /// Audio or video.
    pub kind: MediaKind,
    /// The client's parameters.
    pub rtp_parameters: RtpParameters,
    /// What it sends (allocation priority).
    pub source: ProducerSource,
    /// Created paused.
    pub paused: bool,
}

/// A `consume` request, checked for ownership by the worker.
#[derive(Debug)]
pub struct ConsumeRequest<'a> {
    /// The consuming peer.
    pub peer: PeerId,
    /// Its transport.
    pub transport: TransportKey,
    /// The producer to consume, in this room.
    pub producer: ProducerId,
    /// What the peer's device can receive.
    pub rtp_capabilities: &'a RtpCapabilities,
    /// Created paused.
    pub paused: bool,
}

impl Router {
    /// `produce`: maps the client's parameters onto the router (`caps`), registers the
    /// producer's SSRCs and MID on its transport's listener; its id.
    pub fn produce(
        &mut self,
        req: ProduceRequest,
        caps: &RtpCapabilities,
        rng: &mut impl Rng,
        egress: &mut Egress<'_>,
    ) -> Result<ProducerId, EngineError> {
        let ProduceRequest {
            peer,
            transport: tk,
            kind,
            rtp_parameters: mut params,
            source,
            paused,
        } = req;
        let transport = egress
            .transports
            .get_mut(tk)
            .ok_or(EngineError::Refused(Refusal::TransportClosed))?;
        if transport.listener.producers().len() >= MAX_PRODUCERS_PER_TRANSPORT {
            return Err(EngineError::Refused(Refusal::TooManyProducers));
        }
        params.rtcp.cname = Some(transport.producer_cname(params.rtcp.cname.as_deref(), rng));
        let first_ssrc = rng.random_range(100_000_000..900_000_000);
        let mapping = producer_rtp_mapping(&mut params, caps, first_ssrc)
            .map_err(EngineError::InvalidParameters)?;
        let consumable = consumable_rtp_parameters(kind, &params, caps, &mapping)
            .map_err(EngineError::InvalidParameters)?;
        let id = ProducerId::random();
        let producer = Producer::new(ProducerInit {
            id,
            peer,
            origin: ProducerOrigin::Transport(tk),
            kind,
            rtp_parameters: params,
            consumable,
            mapping,
            router: caps,
            paused,
            source,
        });
        let ssrcs: Vec<_> = producer.known_ssrcs().collect();
        let mid = producer.mid().map(str::to_owned).zip(producer.mid_ext());
        let twcc_ext = producer.transport_cc_ext();
        let key = self.producers.insert(producer);
        let mid = mid.as_ref().map(|(m, ext)| (m.as_str(), *ext));
        if let Err(e) = transport.listener.add(key, &ssrcs, mid) {
            self.producers.remove(key);
            return Err(EngineError::Refused(match e {
                ListenerError::SsrcInUse(ssrc) => Refusal::SsrcInUse(ssrc),
                ListenerError::MidInUse(mid) => Refusal::MidInUse(mid),
            }));
        }
        if let Some(ext) = twcc_ext {
            transport.set_twcc_ext(ext);
        }
        self.producer_ids.insert(id, key);
        self.announce_producer(key, egress);
        tracing::debug!(target: "kolabmeet::producer", room = %self.room, %peer, producer = %id, ?kind, "producer created");
        Ok(id)
    }

    /// `consume`: a consumer of a producer of this room on the peer's transport, in the
    /// parameters the peer's device can receive; the `newConsumer` data.
    pub fn consume(
        &mut self,
        now: Instant,
        req: ConsumeRequest<'_>,
        rng: &mut impl Rng,
        egress: &mut Egress<'_>,
    ) -> Result<ConsumerInfo, EngineError> {
        let ConsumeRequest {
            peer,
            transport: tk,
            producer: producer_id,
            rtp_capabilities: caps,
            paused,
        } = req;
        let pk = *self
            .producer_ids
            .get(&producer_id)
            .ok_or(EngineError::ProducerNotFound(producer_id))?;
        let producer = &self.producers[pk];
        let transport = egress
            .transports
            .get_mut(tk)
            .ok_or(EngineError::Refused(Refusal::TransportClosed))?;
        if transport.consumer_count() >= MAX_CONSUMERS_PER_TRANSPORT {
            return Err(EngineError::Refused(Refusal::TooManyConsumers));
        }
        if !can_consume(&producer.consumable, caps).map_err(EngineError::InvalidParameters)? {
            return Err(EngineError::Refused(Refusal::CannotConsume));
        }
        let ssrc = rng.random_range(100_000_000..999_999_990);
        // Retransmission for audio too (issue 17, "audio that survives loss"): mediasoup
        // leaves it off for audio consumers by default, but mediasoup-client announces
        // NACK for Opus on Chromium (which repairs audio with it when it is offered), so
        // a receiver that loses an Opus packet asks for it again instead of concealing it.
        // Opus has no RTX codec: the packet goes again under its own SSRC.
        let mut params = consumer_rtp_parameters(&producer.consumable, caps, true, ssrc)
            .map_err(EngineError::InvalidParameters)?;
        params.mid = Some(transport.take_mid());
        let (kind, producer_paused) = (producer.kind, producer.paused);
        let id = ConsumerId::random();
        let consumer = Consumer::new(ConsumerInit {
            id,
            peer,
            transport: tk,
            producer: pk,
            kind,
            rtp_parameters: params.clone(),
            consumer_type: producer.consumer_type(),
            paused,
            producer_paused,
        });
        let (consumer_type, consumer_ssrc) = (consumer.consumer_type(), consumer.ssrc);
        if kind == MediaKind::Video {
            let (tcc, abs) = consumer.bwe_extensions();
            transport.bandwidth.on_video_consumer(tcc, abs);
        } else {
            transport.bandwidth.invalidate();
        }
        let key = self.consumers.insert(consumer);
        transport.add_consumer(consumer_ssrc, key);
        self.consumer_ids.insert(id, key);
        self.producers[pk].consumers.push(key);
        if !paused {
            self.request_key_frame_for(now, key, egress);
            self.allocate(now, tk, egress);
        }
        Ok(ConsumerInfo {
            id,
            kind,
            rtp_parameters: params,
            consumer_type,
            producer_paused,
        })
    }

    /// Pauses or resumes a producer; its consumers' peers hear about it
    /// (`consumerProducerPaused`), and resumed consumers ask for a key frame.
    pub fn set_producer_paused(
        &mut self,
        now: Instant,
        pk: ProducerKey,
        paused: bool,
        egress: &mut Egress<'_>,
    ) {
        let Some(p) = self.producers.get_mut(pk) else {
            return;
        };
        if p.paused == paused {
            return;
        }
        p.paused = paused;
        Router::tell_mirrors(p, self.room, egress);
        for ck in p.consumers.clone() {
            if let Some(c) = self.consumers.get_mut(ck) {
                c.producer_paused = paused;
                c.reset_layer();
                egress
                    .events
                    .push_back(EngineEvent::ConsumerProducerPaused {
                        peer: c.peer,
                        consumer: c.id,
                        paused,
                    });
            }
            if !paused {
                self.request_key_frame_for(now, ck, egress);
            }
        }
    }

    /// Pauses or resumes a consumer; resuming asks for a key frame.
    pub fn set_consumer_paused(
        &mut self,
        now: Instant,
        ck: ConsumerKey,
        paused: bool,
        egress: &mut Egress<'_>,
    ) {
        let Some(c) = self.consumers.get_mut(ck) else {
            return;
        };
        if c.paused != paused {
            c.paused = paused;
            c.reset_layer();
            let tk = c.transport;
            if !paused {
                self.request_key_frame_for(now, ck, egress);
            }
            // Its share of the transport's bandwidth is given or freed at once (a layer
            // other than the one just asked for asks again).
            self.allocate(now, tk, egress);
        }
    }

    /// Closes a producer: its consumers close too, and their peers are told
    /// (`consumerClosed`).
    pub fn close_producer(&mut self, pk: ProducerKey, egress: &mut Egress<'_>) {
        let Some(p) = self.producers.remove(pk) else {
            return;
        };
        self.producer_ids.remove(&p.id);
        for to in p.mirrors.iter().map(|m| m.worker) {
            let closed = crate::mirror::PipeMessage::Closed {
                room: self.room,
                producer: p.id,
            };
            let _ = egress.pipes.push(to, closed);
        }
        if let Some(t) = p.transport().and_then(|t| egress.transports.get_mut(t)) {
            t.remove_producer(pk);
        }
        for ck in &p.consumers {
            if let Some(c) = self.remove_consumer(*ck, egress) {
                egress.events.push_back(EngineEvent::ConsumerClosed {
                    peer: c.peer,
                    consumer: c.id,
                });
            }
        }
        tracing::debug!(target: "kolabmeet::producer", producer = %p.id, peer = %p.peer, "producer closed");
    }

    /// Closes a consumer without telling its peer (it asked, or never acked).
    pub fn close_consumer(&mut self, ck: ConsumerKey, egress: &mut Egress<'_>) {
        if let Some(c) = self.remove_consumer(ck, egress)
            && let Some(p) = self.producers.get_mut(c.producer)
        {
            p.consumers.retain(|x| *x != ck);
            if p.is_mirror() && p.consumers.is_empty() {
                // Its last consumer here: nothing of it needs to cross any more.
                self.update_want_without_consumers(c.producer, egress);
            }
        }
    }

    /// Takes a consumer out of the router and frees its SSRCs on its transport.
    fn remove_consumer(&mut self, ck: ConsumerKey, egress: &mut Egress<'_>) -> Option<Consumer> {
        let c = self.consumers.remove(ck)?;
        self.consumer_ids.remove(&c.id);
        if let Some(t) = egress.transports.get_mut(c.transport) {
            t.remove_consumer(c.ssrc, c.rtx_ssrc);
            t.bandwidth.forget(ck);
        }
        Some(c)
    }

    /// Closes everything a transport carried and forgets the transport; returns the
    /// producers and consumers closed.
    pub fn close_transport_media(
        &mut self,
        tk: TransportKey,
        egress: &mut Egress<'_>,
    ) -> (Vec<ProducerId>, Vec<ConsumerId>) {
        self.transports.retain(|t| *t != tk);
        let producers = self.producers.keys_where(|p| p.transport() == Some(tk));
        let producer_ids = producers.iter().map(|k| self.producers[*k].id).collect();
        for pk in producers {
            self.close_producer(pk, egress);
        }
        let consumers = self.consumers.keys_where(|c| c.transport == tk);
        let consumer_ids = consumers.iter().map(|k| self.consumers[*k].id).collect();
        for ck in consumers {
            self.close_consumer(ck, egress);
        }
        (producer_ids, consumer_ids)
    }

    /// Closes every producer of a peer (its PUBLISHER role was taken away).
    pub fn close_producers_of(&mut self, peer: PeerId, egress: &mut Egress<'_>) {
        for pk in self.producers.keys_where(|p| p.peer == peer) {
            self.close_producer(pk, egress);
        }
    }
}
