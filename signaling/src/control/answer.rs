//! How a client request is answered: at once ([`Answer::Ok`]) or when the media engine
//! replies ([`Answer::Later`], with a [`Pending`] entry saying who asked and what the reply
//! changes).

use kolabmeet_media_types::ortc::MediaKind;
use kolabmeet_media_types::{PeerId, ProducerId, RoomId};
use serde_json::Value;

use crate::ConnId;

/// What a handled request answers right away.
pub(super) enum Answer {
    /// Success, with or without data.
    Ok(Option<Value>),
    /// The answer comes later (the engine's reply, or already sent).
    Later,
}

/// Who asked, and where the answer goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx {
    pub(super) conn: ConnId,
    pub(super) ack: Option<u64>,
    pub(super) room: RoomId,
    pub(super) peer: PeerId,
}

/// An engine request waiting for its reply.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) ctx: Ctx,
    pub(super) kind: PendingKind,
    /// When the request fails with a timeout if the engine has not replied.
    pub(super) deadline: std::time::Instant,
}

/// What to do with an engine reply besides acking it.
#[derive(Debug, Clone)]
pub enum PendingKind {
    /// Just ack.
    Plain,
    /// A transport was created; remember it (and whether it consumes).
    CreateTransport {
        /// Created with `consuming`.
        consuming: bool,
    },
    /// A producer was created; remember it and create consumers for the others.
    Produce {
        /// Its kind.
        kind: MediaKind,
        /// Its appData, echoed in `newConsumer`.
        app_data: Value,
    },
    /// A producer was closed; forget it.
    CloseProducer {
        /// Which.
        producer: ProducerId,
    },
    /// A consumer was created for `peer`: send it `newConsumer`.
    Consume {
        /// The producer.
        producer: ProducerId,
        /// The producer's owner.
        producer_peer: PeerId,
        /// The producer's appData.
        app_data: Value,
        /// Created paused; resume when the client acks.
        paused: bool,
    },
    /// No client waits for it.
    Internal,
}
