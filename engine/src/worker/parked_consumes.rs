//! `consume` requests that name a producer whose mirror has not reached this worker yet
//! (issue 16): when a room spreads onto a worker, its producers' mirrors come from their
//! origin workers through the pipes, while the peer placed here may already ask to
//! consume them. Such a request waits here, bounded in number and time, and runs when
//! the mirror arrives; past [`MIRROR_WAIT`] it is answered as any unknown producer.

use std::time::{Duration, Instant};

use crate::ids::ProducerId;
use crate::media_engine::EngineCommand;

/// How long a `consume` waits for its producer's mirror.
pub const MIRROR_WAIT: Duration = Duration::from_secs(2);

/// Requests waiting at most at once; beyond, they are answered at once.
pub const MAX_PARKED: usize = 1024;

#[derive(Debug)]
struct Parked {
    until: Instant,
    producer: ProducerId,
    command: EngineCommand,
}

/// The waiting requests.
#[derive(Debug, Default)]
pub struct ParkedConsumes {
    entries: Vec<Parked>,
}

impl ParkedConsumes {
    /// Parks `command` (a `consume` of `producer`) until `now + MIRROR_WAIT`; `false`
    /// (not parked) when full.
    pub fn park(&mut self, now: Instant, producer: ProducerId, command: EngineCommand) -> bool {
        if self.entries.len() >= MAX_PARKED {
            return false;
        }
        self.entries.push(Parked {
            until: now + MIRROR_WAIT,
            producer,
            command,
        });
        true
    }

    /// The requests waiting for `producer`, taken out.
    pub fn take_for(&mut self, producer: ProducerId) -> Vec<EngineCommand> {
        let (mine, rest): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|p| p.producer == producer);
        self.entries = rest;
        mine.into_iter().map(|p| p.command).collect()
    }

    /// The requests whose wait ended by `now`, taken out.
    pub fn take_expired(&mut self, now: Instant) -> Vec<EngineCommand> {
        if self.entries.iter().all(|p| p.until > now) {
            return Vec::new();
        }
        let (expired, rest): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|p| p.until <= now);
        self.entries = rest;
        expired.into_iter().map(|p| p.command).collect()
    }

    /// When the next wait ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.iter().map(|p| p.until).min()
    }
}
