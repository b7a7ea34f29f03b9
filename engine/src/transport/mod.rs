//! WebRTC transport state machines: the tuple, ICE-lite, the per-transport pipeline.

pub mod ice_lite;
pub mod tuple;
pub mod twcc_feedback;
pub mod webrtc_transport;

pub use ice_lite::{IceCredentials, IceEvent, IceLite, IceState, StunHandled};
pub use tuple::{Tuple, TupleProtocol};
pub use twcc_feedback::TwccFeedback;
pub use webrtc_transport::{
    DropCounters, DropReason, Received, Transmit, TransportError, TransportEvent, WebRtcTransport,
};
