//! A [`MediaEngine`] that runs every command at once on the real worker core of a
//! [`Sim`], in the calling thread and on the sim's virtual clock: the control plane can
//! be tested and fuzzed against real replies (ids, ICE and DTLS parameters, ortc checks)
//! and real events, deterministically and without threads.

use std::sync::{Arc, Mutex, MutexGuard};

use kolabmeet_engine::ortc::{RtpCapabilities, router_rtp_capabilities};
use kolabmeet_engine::{EngineCommand, EngineEvent, MediaEngine};

use crate::sim::Sim;

/// The sim behind a [`SimEngine`], shared with the test that moves its time and plays
/// its browsers.
pub type SharedSim = Arc<Mutex<Sim>>;

/// Locks a shared sim (a panic elsewhere poisons nothing worth keeping out).
pub fn lock(sim: &SharedSim) -> MutexGuard<'_, Sim> {
    sim.lock().unwrap_or_else(|e| e.into_inner())
}

/// See the module documentation. Events are the sim's [`Sim::events`], oldest first.
pub struct SimEngine {
    sim: SharedSim,
    caps: RtpCapabilities,
}

impl SimEngine {
    /// An engine over `sim`, and the handle the caller keeps on it.
    pub fn new(sim: Sim) -> (Self, SharedSim) {
        let sim = Arc::new(Mutex::new(sim));
        let engine = SimEngine {
            sim: sim.clone(),
            caps: router_rtp_capabilities(),
        };
        (engine, sim)
    }
}

impl MediaEngine for SimEngine {
    fn router_rtp_capabilities(&self) -> &RtpCapabilities {
        &self.caps
    }

    fn submit(&mut self, command: EngineCommand) {
        let mut sim = lock(&self.sim);
        let now = sim.now;
        sim.core.handle_command(now, command);
        sim.pump();
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        let mut sim = lock(&self.sim);
        (!sim.events.is_empty()).then(|| sim.events.remove(0))
    }
}
