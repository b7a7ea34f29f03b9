//! The signaling side of kolabmeet: Engine.IO/Socket.IO codecs and the sans-IO room
//! protocol of Kolab Meet (contract sections 4 and 5).

pub mod control;
pub mod engineio;
pub mod error;
pub mod peer;
pub mod rate_limit;
pub mod request;
pub mod roles;
pub mod room;
pub mod session;
pub mod socketio;
pub mod timers;
pub mod turn_credentials;

/// The id of one signaling socket, chosen by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);
