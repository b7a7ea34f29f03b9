//! The media engine of kolabmeet: routers, WebRTC transports, producers and consumers,
//! as mediasoup v3 divides them, with mediasoup v3's parameter formats.
//!
//! The control plane talks to it only through [`media_engine::MediaEngine`]: commands in,
//! events out, never a blocking call. Protocol state machines take time as a parameter.

pub mod allocation;
pub mod arena;
pub mod buffer_pool;
pub mod bwe;
pub mod codecs;
pub mod crypto;
pub mod mirror;
pub mod router;
pub mod rtp_stream;
pub mod transport;
pub mod worker;

// The shared types live in their own crate (the control plane uses them without the media
// stack); the engine's users keep naming them through it.
pub use kolabmeet_media_types::{
    ConsumerId, EngineCommand, EngineError, EngineEvent, EngineHealth, EngineReply, MediaEngine,
    PeerId, ProducerId, Refusal, RequestTag, RoomId, RouterId, TransportId,
};
pub use kolabmeet_media_types::{
    bandwidth_stats, ids, media_engine, ortc, replies, unavailable, worker_stats,
};
