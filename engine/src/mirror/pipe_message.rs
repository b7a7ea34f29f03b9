//! What crosses from one worker to another for a mirrored producer (issue 16, "pipes in
//! memory"): its packets, already in router terms (RTX undone, router payload types,
//! SSRCs and extension ids), its sender's reports, and, the other way, key frame
//! requests. Packets travel as pooled buffers: the sender takes one from its pool, the
//! receiver gives it to its own.

use std::time::Instant;

use super::mirror_spec::MirrorSpec;
use crate::ids::{ProducerId, RoomId};

/// One message between two workers. Those about one producer travel in order on one
/// pipe: its mirror is created before its first packet and closed after its last.
#[derive(Debug)]
pub enum PipeMessage {
    /// Origin to mirror: create the mirror of a producer (it appeared, or the far worker
    /// joined the room).
    Mirror(Box<MirrorSpec>),
    /// Origin to mirror: the producer was paused or resumed by its owner.
    Paused {
        /// The room.
        room: RoomId,
        /// The producer.
        producer: ProducerId,
        /// Paused.
        paused: bool,
    },
    /// Origin to mirror: the producer closed (its far consumers close, `consumerClosed`).
    Closed {
        /// The room.
        room: RoomId,
        /// The producer.
        producer: ProducerId,
    },
    /// Origin to mirror: a packet of `producer`'s encoding `stream`, as the origin
    /// forwards it to its own consumers.
    Rtp {
        /// The room.
        room: RoomId,
        /// The producer (the same id on both workers).
        producer: ProducerId,
        /// Its encoding (simulcast layer) index.
        stream: u8,
        /// The whole packet, in router terms.
        packet: Vec<u8>,
    },
    /// Origin to mirror: the sender's last report for `stream` (RFC 3550 §6.4.1), and
    /// when the origin received it (one process, one monotonic clock), so that the far
    /// side's consumers carry the sender's NTP/RTP mapping as the origin's do.
    SenderReport {
        /// The room.
        room: RoomId,
        /// The producer.
        producer: ProducerId,
        /// Its encoding index.
        stream: u8,
        /// NTP timestamp of the report.
        ntp: u64,
        /// RTP timestamp of the report.
        rtp: u32,
        /// When the origin received it.
        at: Instant,
    },
    /// Origin to mirror: a packet of `stream` that the far worker does not want handed
    /// over (see [`PipeMessage::Want`]), told by its size and layers only, so that the
    /// mirror knows the stream lives and what it costs (a consumer there may switch to
    /// it, asking for it first).
    Notice {
        /// The room.
        room: RoomId,
        /// The producer.
        producer: ProducerId,
        /// Its encoding index.
        stream: u8,
        /// The packet's size in bytes.
        len: u16,
        /// Its spatial layer (VP9 SID), when it has one.
        spatial: Option<u8>,
        /// Its temporal layer, when it has one.
        temporal: Option<u8>,
    },
    /// Mirror to origin: what worker `from` wants of the producer from now on (issue 16:
    /// "only what is watched crosses").
    Want {
        /// The room.
        room: RoomId,
        /// The producer.
        producer: ProducerId,
        /// The worker that wants it.
        from: super::worker_index::WorkerIndex,
        /// What it wants.
        want: Want,
    },
    /// Mirror to origin: a consumer on the far side needs a key frame of `stream`; the
    /// origin's key frame request manager throttles it with every other request.
    KeyFrameRequest {
        /// The room.
        room: RoomId,
        /// The producer.
        producer: ProducerId,
        /// Its encoding index.
        stream: u8,
    },
}

/// What a far worker wants of a mirrored producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// It has consumers of it (else nothing crosses, not even notices).
    pub consumers: bool,
    /// The encodings handed over whole, a bit each (encoding `i`: bit `i`); the others
    /// cross as notices. Encodings past the eighth always cross whole.
    pub streams: u8,
}

impl Want {
    /// Whether packets of encoding `stream` are handed over whole.
    pub fn whole(&self, stream: u8) -> bool {
        stream >= 8 || self.streams & (1 << stream) != 0
    }

    /// Wants encoding `stream` whole too.
    pub fn add(&mut self, stream: usize) {
        if stream < 8 {
            self.streams |= 1 << stream;
        }
    }
}

impl PipeMessage {
    /// The room it is about.
    pub fn room(&self) -> RoomId {
        match self {
            PipeMessage::Mirror(spec) => spec.room,
            PipeMessage::Rtp { room, .. }
            | PipeMessage::Notice { room, .. }
            | PipeMessage::Want { room, .. }
            | PipeMessage::Paused { room, .. }
            | PipeMessage::Closed { room, .. }
            | PipeMessage::SenderReport { room, .. }
            | PipeMessage::KeyFrameRequest { room, .. } => *room,
        }
    }

    /// Its packet buffer, to recycle when the message is dropped.
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self {
            PipeMessage::Rtp { packet, .. } => Some(packet),
            _ => None,
        }
    }
}
