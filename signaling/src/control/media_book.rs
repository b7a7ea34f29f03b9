//! What the control plane remembers of media: the producers of every room and the
//! `newConsumer` requests waiting for their ack.

use std::collections::HashMap;

use kolabmeet_media_types::ortc::MediaKind;
use kolabmeet_media_types::{ConsumerId, PeerId, ProducerId, RoomId};
use serde_json::Value;

/// A producer the control plane knows of.
#[derive(Debug, Clone)]
pub(super) struct ProducerInfo {
    pub(super) room: RoomId,
    /// The owning peer.
    pub(super) peer: PeerId,
    pub(super) kind: MediaKind,
    /// Its appData, echoed in `newConsumer`.
    pub(super) app_data: Value,
}

/// A `newConsumer` request waiting for its ack.
#[derive(Debug, Clone)]
pub(super) struct ConsumerOffer {
    pub(super) peer: PeerId,
    pub(super) consumer: ConsumerId,
    /// The consumer was created paused: resume it on the ack.
    pub(super) resume: bool,
}

/// Producers and open `newConsumer` offers, by id.
#[derive(Debug, Default)]
pub(super) struct MediaBook {
    pub(super) producers: HashMap<ProducerId, ProducerInfo>,
    pub(super) offers: HashMap<u64, ConsumerOffer>,
    pub(super) next_offer: u64,
}
