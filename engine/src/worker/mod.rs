//! Media workers: each a thread with a synchronous mio loop ([`driver`]) around a sans-IO
//! core ([`core`]) that hosts whole rooms; [`WorkerEngine`] is the control plane's view of
//! them all (the [`MediaEngine`](crate::MediaEngine) trait). A panic while a worker
//! handles one transport's datagram or timer closes that transport only (`containment`);
//! a worker whose loop panics otherwise or fails is noticed and replaced on the same port,
//! and its rooms' media start again ([`WorkerEngine`] has the details).
//!
//! | file | what |
//! |---|---|
//! | [`core`] | [`WorkerCore`]: the demultiplexer of the media port, the transports and routers it hosts (slab arenas), datagrams and timeouts in, transmits and events out |
//! | `ingress` | a datagram to its transport, what the transport yields to its router |
//! | `containment` | a panic in one transport's datagram or timer closes that transport, not the worker |
//! | [`commands`] | the control plane's commands, from UUIDs to keys |
//! | `mirrors` | mirrored producers and the messages between workers (issue 16) |
//! | [`deadlines`] | transports' and routers' deadlines, ordered |
//! | [`settings`], [`counters`] | what a worker is told, what it counts |
//! | [`stats`] | the snapshot a worker publishes once a second (`/metrics`, stats, console) |
//! | [`driver`] | the worker thread: sockets, clock, queues |
//! | [`engine`] | [`WorkerEngine`]: rooms spread over workers |
//! | `placement` | which worker each room's peers go on (`ROUTER_SCALE_SIZE`) |
//! | `command_queue`, `worker_command`, `event_outbox`, `udp_batch` | the driver's queues and batched UDP |
//! | [`udp_gso`] | UDP segmentation offload for runs of datagrams to one destination (an experiment, `KOLABMEET_UDP_GSO=1`) |
//! | `pipe_ends` | the bounded queues between worker threads, and their wakers (issue 16) |
//! | `respawn`, `fault` | a failed worker's replacement; fault injection (test builds) |

mod command_queue;
pub mod commands;
mod containment;
pub mod core;
pub mod counters;
pub mod deadlines;
pub mod driver;
mod engine;
mod event_outbox;
#[cfg(any(test, feature = "fault-injection"))]
mod fault;
mod ingress;
mod mirrors;
mod parked_consumes;
mod pipe_ends;
mod placement;
mod plain_sockets;
mod respawn;
pub mod settings;
pub mod stats;
mod udp_batch;
pub mod udp_gso;
mod worker_command;

pub use self::core::{TIMER_TICK, WorkerCore};
pub use crate::transport::{ABANDONED_AFTER, CONNECT_TIMEOUT};
pub use commands::MAX_TRANSPORTS;
pub use counters::{TrafficCounters, WorkerCounters, WorkerSizes};
pub use driver::{Notify, WorkerThread};
pub use engine::{DEFAULT_ROUTER_SCALE_SIZE, WorkerEngine};
#[cfg(any(test, feature = "fault-injection"))]
pub use fault::{Fault, FaultInjector};
pub use settings::{SenderReportClock, WorkerSettings};
