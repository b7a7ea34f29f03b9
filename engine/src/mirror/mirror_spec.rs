//! What a worker needs to mirror a producer of another worker of its room (issue 16): the
//! producer as its origin made it (id, peer, kind, mapped parameters, what its consumers
//! are cut from, source, paused), so that the mirror identifies the same encodings and
//! offers the same consumer parameters, type and layers.

use super::worker_index::WorkerIndex;
use crate::ids::{PeerId, ProducerId, RoomId};
use crate::media_engine::ProducerSource;
use crate::ortc::{MediaKind, RtpMapping, RtpParameters};

/// A producer to mirror.
#[derive(Debug, Clone)]
pub struct MirrorSpec {
    /// Its room.
    pub room: RoomId,
    /// Its id (the mirror's too).
    pub producer: ProducerId,
    /// Its peer.
    pub peer: PeerId,
    /// Audio or video.
    pub kind: MediaKind,
    /// Its parameters (after mapping).
    pub rtp_parameters: RtpParameters,
    /// What its consumers are cut from.
    pub consumable: RtpParameters,
    /// Its mapping onto the router.
    pub mapping: RtpMapping,
    /// What it sends.
    pub source: ProducerSource,
    /// Paused by its owner.
    pub paused: bool,
    /// The worker its packets arrive on.
    pub origin: WorkerIndex,
}
