//! Replacing a failed worker off the control thread: a short-lived thread makes the new
//! DTLS certificate and binds the failed worker's port, retrying while the port is not
//! free yet, and hands the running replacement back through a channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::driver::{Notify, WorkerLinks, WorkerThread};
use super::pipe_ends::PipeEnds;
use super::settings::WorkerSettings;
use super::worker_command::WorkerCommand;
use crate::crypto::DtlsCertificate;
use crate::media_engine::EngineEvent;

/// First wait before binding the port again (the failed thread has closed its sockets by
/// the time it is noticed, so the first try normally succeeds).
const FIRST_RETRY: Duration = Duration::from_millis(20);
/// Longest wait between two tries.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// A replacement worker, running.
pub(super) struct Replacement {
    pub(super) index: usize,
    pub(super) thread: WorkerThread,
}

/// What a replacement is started with.
pub(super) struct Respawn {
    pub(super) index: usize,
    /// With the failed worker's port.
    pub(super) settings: WorkerSettings,
    pub(super) commands: Arc<ArrayQueue<WorkerCommand>>,
    pub(super) pipes: PipeEnds,
    pub(super) events: Arc<ArrayQueue<EngineEvent>>,
    pub(super) notify: Notify,
    pub(super) done: Sender<Replacement>,
    /// Set when the engine is dropped: give up.
    pub(super) shutdown: Arc<AtomicBool>,
    #[cfg(any(test, feature = "fault-injection"))]
    pub(super) fault: Arc<super::fault::FaultSwitch>,
}

impl Respawn {
    /// Starts the thread that starts the replacement.
    pub(super) fn start(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name(format!("media-worker-{}-respawn", self.index))
            .spawn(move || self.run())
            .map(|_| ())
    }

    fn run(self) {
        #[cfg(any(test, feature = "fault-injection"))]
        std::thread::sleep(self.fault.take_hold());
        let mut wait = FIRST_RETRY;
        let mut tries = 0u32;
        while !self.shutdown.load(Ordering::Acquire) {
            tries += 1;
            let started = DtlsCertificate::generate()
                .map_err(|e| std::io::Error::other(format!("DTLS certificate: {e}")))
                .and_then(|certificate| {
                    WorkerThread::spawn(
                        self.index,
                        self.settings.clone(),
                        certificate,
                        WorkerLinks {
                            commands: self.commands.clone(),
                            pipes: self.pipes.clone(),
                            events: self.events.clone(),
                            notify: self.notify.clone(),
                        },
                        #[cfg(any(test, feature = "fault-injection"))]
                        self.fault.clone(),
                    )
                });
            match started {
                Ok(thread) => {
                    let replacement = Replacement {
                        index: self.index,
                        thread,
                    };
                    // Gone when the engine was dropped meanwhile: the replacement stops.
                    if self.done.send(replacement).is_ok() {
                        (self.notify)();
                    }
                    return;
                }
                Err(e) => {
                    // Logged at the first failure and then about every ten seconds.
                    if tries == 1 || tries.is_multiple_of(10) {
                        tracing::warn!(target: "kolabmeet::worker", worker = self.index, port = self.settings.port, tries, error = %e, "cannot start the replacement media worker yet, retrying");
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(MAX_RETRY);
                }
            }
        }
    }
}
