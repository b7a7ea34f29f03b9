//! The types the control plane (`kolabmeet-signaling`) and the media engine
//! (`kolabmeet-engine`) share, without the engine's media stack: naming a room or a
//! producer, checking `rtpParameters` or submitting a command does not link libsrtp, the
//! DTLS stack or mio (issue 8, "a typed boundary").
//!
//! * [`ids`]: typed ids (`RoomId`, `PeerId`, `TransportId`, ...).
//! * [`ortc`]: mediasoup v3's parameter formats and ortc rules.
//! * [`media_engine`]: the engine interface: commands in, events out.
//! * [`replies`]: the typed answers to commands, serializing to mediasoup's wire format.
//! * [`unavailable`]: an engine that answers every media request with a clear failure.
//! * [`log_limit`]: rate limits for the log lines clients cause.
//! * [`panic_message`]: the text of a caught panic.

pub mod bandwidth_stats;
pub mod ids;
pub mod log_limit;
pub mod media_engine;
pub mod ortc;
pub mod panic_message;
pub mod replies;
pub mod unavailable;
pub mod worker_stats;

pub use ids::{ConsumerId, PeerId, ProducerId, RoomId, RouterId, TransportId};
pub use media_engine::{
    EngineCommand, EngineError, EngineEvent, EngineHealth, EngineReply, MediaEngine, Refusal,
    RequestTag,
};
