//! The signaling side of kolabmeet: Engine.IO/Socket.IO codecs and the sans-IO room
//! protocol of Kolab Meet (contract sections 4 and 5).

pub mod engineio;
pub mod error;
pub mod rate_limit;
pub mod request;
pub mod roles;
pub mod session;
pub mod socketio;
pub mod turn_credentials;
