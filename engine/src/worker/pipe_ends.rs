//! The pipes between worker threads (issue 16, "pipes in memory"): one bounded lock-free
//! queue per ordered pair of workers, made once by the engine, and each worker's mio
//! waker, so that a worker that hands messages to another wakes it once per loop round.
//! A worker's [`PipeEnds`] are its outbound queues (one per other worker) and its
//! inbound ones; a replacement of a failed worker gets the same ends.
//!
//! A full queue costs the message (counted in `/metrics`), never blocks the sender.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use mio::Waker;

use super::core::WorkerCore;
use crate::mirror::{PipeMessage, WorkerIndex};

/// Messages queued from one worker to another before they are dropped: about 15 ms of
/// the most one worker forwards (256k packets/s, measured 2026-12-06).
pub const PIPE_QUEUE: usize = 4096;

/// Each worker's waker, set by the worker thread that runs in its slot. The lock is
/// taken once per loop round per worker woken, and by a thread that starts.
#[derive(Default)]
pub struct WakerTable(Vec<Mutex<Option<Arc<Waker>>>>);

impl WakerTable {
    fn with_workers(n: usize) -> Self {
        WakerTable((0..n).map(|_| Mutex::new(None)).collect())
    }

    /// Worker `index` runs with `waker` now.
    pub fn set(&self, index: usize, waker: Arc<Waker>) {
        if let Some(slot) = self.0.get(index)
            && let Ok(mut w) = slot.lock()
        {
            *w = Some(waker);
        }
    }

    fn wake(&self, index: usize) {
        if let Some(slot) = self.0.get(index)
            && let Ok(w) = slot.lock()
            && let Some(w) = w.as_ref()
        {
            let _ = w.wake();
        }
    }
}

/// What crossed the pipes of one worker, shared with the engine (`/metrics`).
#[derive(Debug, Default)]
pub struct PipeCounters {
    /// Messages handed to other workers.
    pub sent: AtomicU64,
    /// Messages dropped because the queue to the other worker was full.
    pub dropped_full: AtomicU64,
    /// Messages received from other workers.
    pub received: AtomicU64,
}

/// One worker's ends of the pipes.
#[derive(Clone)]
pub struct PipeEnds {
    index: usize,
    /// To worker `i` (`None` for itself).
    outbound: Vec<Option<Arc<ArrayQueue<PipeMessage>>>>,
    /// From the other workers.
    inbound: Vec<Arc<ArrayQueue<PipeMessage>>>,
    wakers: Arc<WakerTable>,
    /// Its counters.
    pub counters: Arc<PipeCounters>,
}

/// Every worker's ends, made together.
pub fn pipe_mesh(workers: usize) -> Vec<PipeEnds> {
    let wakers = Arc::new(WakerTable::with_workers(workers));
    let queues: Vec<Vec<Option<Arc<ArrayQueue<PipeMessage>>>>> = (0..workers)
        .map(|from| {
            (0..workers)
                .map(|to| (from != to).then(|| Arc::new(ArrayQueue::new(PIPE_QUEUE))))
                .collect()
        })
        .collect();
    (0..workers)
        .map(|i| PipeEnds {
            index: i,
            outbound: queues[i].clone(),
            inbound: (0..workers)
                .filter_map(|from| queues[from][i].clone())
                .collect(),
            wakers: wakers.clone(),
            counters: Arc::default(),
        })
        .collect()
}

impl PipeEnds {
    /// The worker thread of this slot runs with `waker`.
    pub fn attach(&self, waker: Arc<Waker>) {
        self.wakers.set(self.index, waker);
    }

    /// Hands what the core wrote for other workers to their queues and wakes each one
    /// that got something. A message for a full queue (or a worker that does not exist)
    /// is dropped and counted, its buffer recycled; a dropped packet breaks a picture
    /// there, so the core asks its sender for a key frame (`WorkerCore::pipe_full`).
    pub fn flush(&self, core: &mut WorkerCore, now: Instant, woken: &mut Vec<bool>) {
        woken.clear();
        woken.resize(self.outbound.len(), false);
        while let Some((to, message)) = core.poll_pipe() {
            let to = usize::from(to.0);
            let queue = self.outbound.get(to).and_then(Option::as_ref);
            match queue.map(|q| q.push(message)) {
                Some(Ok(())) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    woken[to] = true;
                }
                Some(Err(back)) => {
                    self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                    core.pipe_full(now, back);
                }
                None => {
                    self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for (i, w) in woken.iter().enumerate() {
            if *w {
                self.wakers.wake(i);
            }
        }
    }

    /// Hands what other workers sent to the core; how many messages. Those for a room
    /// the core has no router of yet go to `unknown_room` (see `WorkerCore::try_pipe`).
    pub fn drain(
        &self,
        core: &mut WorkerCore,
        now: Instant,
        unknown_room: &mut Vec<PipeMessage>,
    ) -> usize {
        let mut n = 0;
        for q in &self.inbound {
            // At most a queue's worth each: a sender that keeps up cannot hold this
            // worker here.
            for _ in 0..PIPE_QUEUE {
                let Some(m) = q.pop() else {
                    break;
                };
                if let Some(back) = core.try_pipe(now, m) {
                    unknown_room.push(back);
                }
                n += 1;
            }
        }
        if n > 0 {
            self.counters
                .received
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        n
    }

    /// Adds its counters to a stats snapshot's.
    pub fn count_into(&self, c: &mut crate::worker_stats::PipeCounts) {
        c.sent = self.counters.sent.load(Ordering::Relaxed);
        c.received = self.counters.received.load(Ordering::Relaxed);
        c.dropped_full = self.counters.dropped_full.load(Ordering::Relaxed);
    }

    /// Its worker's index.
    pub fn index(&self) -> WorkerIndex {
        WorkerIndex(self.index as u16)
    }
}
