//! Media workers: each a thread with a synchronous mio loop ([`driver`]) around a sans-IO
//! core ([`core`]) that hosts whole rooms; [`WorkerEngine`] is the control plane's view of
//! them all (the [`MediaEngine`](crate::MediaEngine) trait).

mod buffer_pool;
mod command_queue;
pub mod core;
pub mod driver;
mod engine;
mod event_outbox;
mod key_frames;
mod media;
mod rtcp_feedback;
mod rtcp_reports;
mod timers;
mod udp_batch;

pub use self::core::{TIMER_TICK, WorkerCore, WorkerCounters, WorkerSettings, WorkerSizes};
pub use crate::transport::{ABANDONED_AFTER, CONNECT_TIMEOUT};
pub use driver::{Notify, WorkerHandle};
pub use engine::WorkerEngine;
