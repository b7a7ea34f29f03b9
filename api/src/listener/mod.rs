//! The listener: the server's front door. One synchronous `mio` loop serves, on one TCP
//! port, HTTP/1.1 requests (the API), WebSocket upgrades (signaling), optionally over TLS
//! (rustls), and the console on a unix socket.
//!
//! Why not `tiny_http`: its upgraded stream is one blocking `Read + Write` (behind a mutex
//! with TLS), so a server cannot push a notification while a read is pending. Here every
//! socket is non-blocking and one thread drives them all, calling a [`Service`].

mod connection;
mod console_conn;
mod event_loop;
pub mod http_parse;
mod service;
mod stream;

pub use connection::ConnLimits;
pub use event_loop::{Front, FrontConfig, FrontError, LINGER, ShutdownHandle};
pub use service::{ConnId, HttpRequest, HttpResponse, Output, Service, Stop, WsDecision};
