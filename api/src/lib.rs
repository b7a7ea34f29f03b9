//! kolabmeet-server: the HTTP API, the signaling front door and the console of the
//! Kolab Meet media server (contract sections 1-5 and 7).

pub mod front;
