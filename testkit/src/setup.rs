//! Setting up media on any worker the kit drives ([`crate::Sim`] in memory,
//! [`crate::UdpWorker`] over sockets): rooms, peers with connected transports, one
//! producer and consumers of it.

use kolabmeet_engine::ortc::{DtlsParameters, MediaKind, RtpParameters, router_rtp_capabilities};
use kolabmeet_engine::{
    ConsumerId, EngineCommand, EngineError, EngineReply, PeerId, ProducerId, RequestTag, RoomId,
    TransportId,
};
use serde_json::{Value, json};

use crate::params::{Media, consumer_ssrc};

/// A peer with one connected transport, and its client end `C` in the harness that set
/// it up (the browser's port in a [`crate::Sim`], browser and socket for a
/// [`crate::UdpWorker`]).
pub struct Peer<C> {
    /// The peer.
    pub peer: PeerId,
    /// Its transport.
    pub transport: TransportId,
    /// Its client end.
    pub client: C,
}

/// A worker the setup helpers can drive: commands with replies, and peers that connect.
pub trait MediaWorker {
    /// The client end of a connected peer.
    type Client;
    /// A command without reply.
    fn submit(&mut self, command: EngineCommand);
    /// A command and its reply.
    fn command(
        &mut self,
        make: impl FnOnce(RequestTag) -> EngineCommand,
    ) -> Result<EngineReply, EngineError>;
    /// A new peer in `room` whose transport is created, ICE-nominated and DTLS-connected.
    fn connect_peer(&mut self, room: RoomId) -> Result<Peer<Self::Client>, String>;
}

/// A producer and the peer that sends it.
pub struct Publisher<C> {
    /// The sending peer.
    pub peer: Peer<C>,
    /// The producer.
    pub producer: ProducerId,
    /// What it sends.
    pub media: Media,
    /// The SSRC it sends with.
    pub ssrc: u32,
}

/// A consumer and the peer that receives it.
pub struct Subscriber<C> {
    /// The receiving peer.
    pub peer: Peer<C>,
    /// The consumer.
    pub consumer: ConsumerId,
    /// The SSRC the worker sends it with.
    pub ssrc: u32,
}

/// `createWebRtcTransport` for a peer that produces and consumes, over UDP.
pub fn create_transport(tag: RequestTag, room: RoomId, peer: PeerId) -> EngineCommand {
    EngineCommand::CreateWebRtcTransport {
        tag,
        room,
        peer,
        force_tcp: false,
        producing: true,
        consuming: true,
    }
}

/// `connectWebRtcTransport` of `peer`'s `transport` with a browser's DTLS parameters.
pub fn connect_transport(
    tag: RequestTag,
    peer: PeerId,
    transport: TransportId,
    dtls_parameters: DtlsParameters,
) -> EngineCommand {
    EngineCommand::ConnectWebRtcTransport {
        tag,
        peer,
        transport,
        dtls_parameters,
    }
}

/// A reply as its client gets it: the mediasoup wire JSON the signaling edge writes.
pub fn wire(reply: &EngineReply) -> Value {
    match reply {
        EngineReply::WebRtcTransportCreated(t) => serde_json::to_value(t),
        EngineReply::PlainTransportCreated(t) => serde_json::to_value(t),
        EngineReply::IceRestarted(ice) => serde_json::to_value(ice),
        EngineReply::ProducerCreated(id) => Ok(json!({ "id": id })),
        EngineReply::ConsumerCreated(c) => serde_json::to_value(c),
        EngineReply::Done => Ok(Value::Null),
    }
    .unwrap_or(Value::Null)
}

/// The id of a `createWebRtcTransport`, `produce` or `consume` reply.
pub fn answer_id<T: std::str::FromStr>(answer: &EngineReply) -> Result<T, String> {
    let id = match answer {
        EngineReply::WebRtcTransportCreated(t) => t.id.to_string(),
        EngineReply::PlainTransportCreated(t) => t.id.to_string(),
        EngineReply::ProducerCreated(p) => p.to_string(),
        EngineReply::ConsumerCreated(c) => c.id.to_string(),
        other => return Err(format!("no id in {other:?}")),
    };
    id.parse().map_err(|_| format!("not the id wanted: {id}"))
}

/// Creates a room (router) on the worker.
pub fn create_room<W: MediaWorker>(worker: &mut W) -> RoomId {
    let room = RoomId::random();
    worker.submit(EngineCommand::CreateRouter { room });
    room
}

/// A new peer in `room` producing `media` with `ssrc`.
pub fn setup_producer<W: MediaWorker>(
    worker: &mut W,
    room: RoomId,
    media: Media,
    ssrc: u32,
) -> Result<Publisher<W::Client>, String> {
    let peer = worker.connect_peer(room)?;
    let producer = produce(worker, &peer, media.kind(), media.rtp_parameters(ssrc))?;
    Ok(Publisher {
        peer,
        producer,
        media,
        ssrc,
    })
}

/// `peer` produces `kind` with `rtp_parameters` on its transport (the source its kind
/// suggests: microphone or webcam).
pub fn produce<W: MediaWorker>(
    worker: &mut W,
    peer: &Peer<W::Client>,
    kind: MediaKind,
    rtp_parameters: RtpParameters,
) -> Result<ProducerId, String> {
    let v = worker
        .command(|tag| EngineCommand::Produce {
            tag,
            peer: peer.peer,
            transport: peer.transport,
            kind,
            rtp_parameters,
            source: kolabmeet_engine::media_engine::ProducerSource::of_kind(kind),
        })
        .map_err(|e| format!("produce: {e}"))?;
    answer_id(&v)
}

/// `n` new peers in `room`, each with a connected transport.
pub fn connect_peers<W: MediaWorker>(
    worker: &mut W,
    room: RoomId,
    n: usize,
) -> Result<Vec<Peer<W::Client>>, String> {
    (0..n).map(|_| worker.connect_peer(room)).collect()
}

/// `peer` consumes `producer` on its transport with the router's full capabilities;
/// returns the consumer and its SSRC.
pub fn consume<W: MediaWorker>(
    worker: &mut W,
    peer: &Peer<W::Client>,
    producer: ProducerId,
) -> Result<(ConsumerId, u32), String> {
    let (id, answer) = consume_answer(worker, peer, producer)?;
    Ok((id, consumer_ssrc(&answer)))
}

/// [`consume`], returning the consumer and its `consume` answer as the client gets it
/// (its type, SSRC and negotiated header extensions).
pub fn consume_answer<W: MediaWorker>(
    worker: &mut W,
    peer: &Peer<W::Client>,
    producer: ProducerId,
) -> Result<(ConsumerId, Value), String> {
    let v = worker
        .command(|tag| EngineCommand::Consume {
            tag,
            peer: peer.peer,
            transport: peer.transport,
            producer,
            rtp_capabilities: router_rtp_capabilities(),
            paused: false,
        })
        .map_err(|e| format!("consume: {e}"))?;
    Ok((answer_id(&v)?, wire(&v)))
}

/// `n` new peers in `room`, each consuming `producer` on its own transport.
pub fn setup_consumers<W: MediaWorker>(
    worker: &mut W,
    room: RoomId,
    producer: ProducerId,
    n: usize,
) -> Result<Vec<Subscriber<W::Client>>, String> {
    let peers = connect_peers(worker, room, n)?;
    peers
        .into_iter()
        .map(|peer| {
            let (consumer, ssrc) = consume(worker, &peer, producer)?;
            Ok(Subscriber {
                peer,
                consumer,
                ssrc,
            })
        })
        .collect()
}
