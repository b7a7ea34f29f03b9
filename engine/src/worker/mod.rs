//! Media workers: each a thread with a synchronous mio loop ([`driver`]) around a sans-IO
//! core ([`core`]) that hosts whole rooms; [`WorkerEngine`] is the control plane's view of
//! them all (the [`MediaEngine`](crate::MediaEngine) trait). A worker whose loop panics or
//! fails is noticed and replaced on the same port, and its rooms' media start again
//! ([`WorkerEngine`] has the details).

mod buffer_pool;
mod command_queue;
pub mod core;
pub mod driver;
mod engine;
mod event_outbox;
#[cfg(any(test, feature = "fault-injection"))]
mod fault;
mod key_frames;
mod media;
mod respawn;
mod rtcp_feedback;
mod rtcp_reports;
mod timers;
mod udp_batch;

pub use self::core::{TIMER_TICK, WorkerCore, WorkerCounters, WorkerSettings, WorkerSizes};
pub use crate::transport::{ABANDONED_AFTER, CONNECT_TIMEOUT};
pub use driver::{Notify, WorkerThread};
pub use engine::WorkerEngine;
#[cfg(any(test, feature = "fault-injection"))]
pub use fault::{Fault, FaultInjector};
