//! Test builds only (cargo feature `fault-injection`): makes a media worker fail on demand,
//! so that the tests can prove what a real panic or a failed loop would do (the worker is
//! noticed, replaced, and its rooms' media start again), or makes one transport's next
//! datagram panic inside the transport (only that transport closes: `containment.rs`).
//! The default binary has none of it.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::Waker;

use super::core::WorkerCore;
use crate::ids::TransportId;

/// How an injected fault makes a worker fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The worker's loop panics.
    Panic,
    /// The worker's loop returns an error (as a failing `poll` would).
    LoopError,
}

const NONE: u8 = 0;
const PANIC: u8 = 1;
const LOOP_ERROR: u8 = 2;

/// One worker slot's switch, shared by the successive threads of that slot.
#[derive(Default)]
pub struct FaultSwitch {
    armed: AtomicU8,
    /// How long the replacement of the failed worker waits before starting, in ms.
    hold_ms: AtomicU64,
    /// The waker of the slot's current thread.
    waker: Mutex<Option<Arc<Waker>>>,
    /// Whether `transports` holds any (read every loop round without the lock).
    transports_armed: AtomicBool,
    /// Transports whose next datagram is to panic, for the worker to take.
    transports: Mutex<Vec<TransportId>>,
}

impl FaultSwitch {
    /// The slot's new thread registers its waker.
    pub(super) fn attach(&self, waker: Arc<Waker>) {
        if let Ok(mut w) = self.waker.lock() {
            *w = Some(waker);
        }
    }

    fn arm(&self, fault: Fault, hold: Duration) {
        self.hold_ms.store(
            u64::try_from(hold.as_millis()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        let v = match fault {
            Fault::Panic => PANIC,
            Fault::LoopError => LOOP_ERROR,
        };
        self.armed.store(v, Ordering::Release);
        self.wake();
    }

    fn arm_transport(&self, transport: TransportId) {
        if let Ok(mut t) = self.transports.lock() {
            t.push(transport);
            self.transports_armed.store(true, Ordering::Release);
        }
        self.wake();
    }

    fn wake(&self) {
        if let Ok(w) = self.waker.lock()
            && let Some(w) = w.as_ref()
        {
            let _ = w.wake();
        }
    }

    /// How long the replacement waits before it starts (once).
    pub(super) fn take_hold(&self) -> Duration {
        Duration::from_millis(self.hold_ms.swap(0, Ordering::AcqRel))
    }

    /// Called by the worker's loop once per round: fails as armed, and arms the panics of
    /// transports asked for in `core`.
    pub(super) fn strike(&self, core: &mut WorkerCore) -> io::Result<()> {
        if self.transports_armed.swap(false, Ordering::AcqRel) {
            let armed = self
                .transports
                .lock()
                .map(|mut t| std::mem::take(&mut *t))
                .unwrap_or_default();
            for id in armed {
                let found = core.arm_transport_panic(id, crate::transport::ArmedPanic::Datagram);
                tracing::warn!(target: "kolabmeet::worker", transport = %id, found, "injected fault: the transport's next datagram panics");
            }
        }
        match self.armed.swap(NONE, Ordering::AcqRel) {
            PANIC => panic!("injected fault: media worker panic"),
            LOOP_ERROR => Err(io::Error::other("injected fault: media worker loop error")),
            _ => Ok(()),
        }
    }
}

/// Makes the workers of one [`WorkerEngine`](super::WorkerEngine) fail on demand.
#[derive(Clone)]
pub struct FaultInjector {
    pub(super) switches: Arc<Vec<Arc<FaultSwitch>>>,
}

impl FaultInjector {
    /// How many worker slots there are.
    pub fn workers(&self) -> usize {
        self.switches.len()
    }

    /// Makes worker `worker` fail in its next loop round; `false` when there is no such
    /// worker. Its replacement waits `hold` before it starts (a slow restart: the failure
    /// stays visible that long, and the rooms' commands wait).
    pub fn inject(&self, worker: usize, fault: Fault, hold: Duration) -> bool {
        match self.switches.get(worker) {
            Some(s) => {
                s.arm(fault, hold);
                true
            }
            None => false,
        }
    }

    /// Makes the next datagram that transport `transport` of worker `worker` handles
    /// panic inside the transport; `false` when there is no such worker (a transport the
    /// worker does not have is ignored by it).
    pub fn crash_transport(&self, worker: usize, transport: TransportId) -> bool {
        match self.switches.get(worker) {
            Some(s) => {
                s.arm_transport(transport);
                true
            }
            None => false,
        }
    }
}
