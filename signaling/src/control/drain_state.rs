//! The state of a graceful drain (issue 10), kept apart from its rules (`drain.rs`) so
//! that the control plane can hold it without depending on them.

use std::time::{Duration, Instant};

/// The drain in progress.
#[derive(Debug, Clone, Copy)]
pub(super) struct Drain {
    /// When it began.
    pub(super) started: Instant,
    /// When the rooms still open are closed.
    pub(super) deadline: Instant,
}

/// What `GET /meetmedia/api/health` and the logs say about a drain in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainStatus {
    /// Rooms still open.
    pub rooms: usize,
    /// Peers still in them.
    pub peers: usize,
    /// Time left before the rooms still open are closed.
    pub closes_in: Duration,
}
