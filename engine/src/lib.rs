//! The media engine of kolabmeet: routers, WebRTC transports, producers and consumers,
//! as mediasoup v3 divides them, with mediasoup v3's parameter formats.
//!
//! The control plane talks to it only through [`media_engine::MediaEngine`]: commands in,
//! events out, never a blocking call. Protocol state machines take time as a parameter.

pub mod codecs;
pub mod crypto;
pub mod ids;
pub mod media_engine;
pub mod ortc;
pub mod router;
pub mod rtp_stream;
pub mod transport;
pub mod unavailable;
pub mod worker;

pub use ids::{ConsumerId, PeerId, ProducerId, RoomId, RouterId, TransportId};
pub use media_engine::{
    EngineCommand, EngineError, EngineEvent, EngineHealth, MediaEngine, RequestTag,
};
