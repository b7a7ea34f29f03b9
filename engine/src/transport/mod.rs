//! Transports (WebRTC and plain RTP): the tuple, ICE-lite, the connection (ICE, DTLS, SRTP), the RTP
//! listener, transport-cc feedback, and the hosted transport that owns them all.

pub mod connection;
pub mod ice_lite;
pub mod media_transport;
pub mod plain_transport;
pub mod rtp_ingress;
pub mod rtp_listener;
pub mod send_bandwidth;
pub mod tuple;
pub mod twcc_feedback;
pub mod webrtc_connection;

pub use connection::Connection;
pub use ice_lite::{IceCredentials, IceEvent, IceLite, IceState, StunHandled};
#[cfg(any(test, feature = "fault-injection"))]
pub use media_transport::ArmedPanic;
pub use media_transport::{
    ABANDONED_AFTER, CONNECT_TIMEOUT, CloseReason, FEEDBACK_SENDER_SSRC, HostEvent, MediaTransport,
};
pub use plain_transport::{
    MAX_PLAIN_TRANSPORTS, PLAIN_PORT_RANGE, PlainTransport, PlainTransportError,
};
pub use rtp_ingress::RtpIn;
pub use rtp_listener::{Found, ListenerError, RtpListener, StreamRef};
pub use send_bandwidth::{PROBATOR_PAYLOAD_TYPE, PROBATOR_SSRC, SendBandwidth};
pub use tuple::{Tuple, TupleProtocol};
pub use twcc_feedback::TwccFeedback;
pub use webrtc_connection::{
    DropCounters, DropReason, Received, Transmit, TransportError, TransportEvent, WebRtcConnection,
};
