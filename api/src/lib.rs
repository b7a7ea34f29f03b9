//! kolabmeet-server: the HTTP API, the signaling front door and the console of the
//! Kolab Meet media server (contract sections 1-5 and 7).

pub mod config;
pub mod console;
pub mod demo;
pub mod listener;

/// The listener under the name the rest of the crate uses for the front door.
pub use listener as front;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod routes;
pub mod service;
pub mod shutdown;
pub mod webhooks;
