//! The control plane's handle on the media workers: routes each command to the worker
//! that hosts its room (rooms are spread round-robin; a room stays on one worker until
//! rooms larger than `ROUTER_SCALE_SIZE` spread, which comes later) and collects every
//! worker's events from one shared queue.
//!
//! It also notices a worker that failed (its thread ended without being asked to: a
//! panic or an error out of its loop, see [`WorkerThread::failure`]) at the next
//! [`MediaEngine::poll_event`] (the dying thread wakes the control loop). The worker's
//! rooms stay on its slot, with empty routers: their commands wait in the slot's new
//! queue while a replacement starts on the same port off the control thread
//! ([`respawn`](super::respawn)). The control plane learns it from
//! [`EngineEvent::WorkerFailed`] and [`EngineEvent::WorkerRestarted`], and
//! [`MediaEngine::health`] is degraded in between.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crossbeam_queue::ArrayQueue;

use super::command_queue::{CommandQueue, Pushed};
use super::driver::{COMMAND_QUEUE, Notify, WorkerThread};
use super::respawn::{Replacement, Respawn};
use super::settings::WorkerSettings;
use crate::crypto::DtlsCertificate;
use crate::ids::{PeerId, RoomId};
use crate::media_engine::{EngineCommand, EngineError, EngineEvent, EngineHealth, MediaEngine};
use crate::ortc::{RtpCapabilities, router_rtp_capabilities};

/// Events queued from all workers before workers hold them back.
const EVENT_QUEUE: usize = 65_536;

/// One worker's place: its port, the queue its commands go to, and its thread (none while
/// a replacement is starting).
struct Slot {
    port: u16,
    commands: CommandQueue,
    thread: Option<WorkerThread>,
    /// Why the previous thread failed, while its replacement is not running yet.
    failed: Option<String>,
}

/// All media workers of the server.
pub struct WorkerEngine {
    capabilities: RtpCapabilities,
    settings: WorkerSettings,
    notify: Notify,
    slots: Vec<Slot>,
    events: Arc<ArrayQueue<EngineEvent>>,
    local: VecDeque<EngineEvent>,
    room_worker: HashMap<RoomId, usize>,
    peer_room: HashMap<PeerId, RoomId>,
    next: usize,
    replacements: Receiver<Replacement>,
    replacement_done: Sender<Replacement>,
    /// Tells replacement threads still starting that the engine is gone.
    shutdown: Arc<AtomicBool>,
    #[cfg(any(test, feature = "fault-injection"))]
    faults: super::fault::FaultInjector,
}

impl WorkerEngine {
    /// Starts `count` workers on consecutive ports from `settings.port` (or free ports
    /// when it is 0), each with its own DTLS certificate. `notify` wakes the control loop.
    pub fn start(settings: WorkerSettings, count: usize, notify: Notify) -> io::Result<Self> {
        let events = Arc::new(ArrayQueue::new(EVENT_QUEUE));
        let count = count.max(1);
        #[cfg(any(test, feature = "fault-injection"))]
        let faults = super::fault::FaultInjector {
            switches: Arc::new((0..count).map(|_| Arc::default()).collect()),
        };
        let mut slots = Vec::with_capacity(count);
        for index in 0..count {
            let mut s = settings.clone();
            if s.port != 0 {
                s.port = s.port.checked_add(index as u16).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "worker port overflow")
                })?;
            }
            let certificate = DtlsCertificate::generate()
                .map_err(|e| io::Error::other(format!("DTLS certificate: {e}")))?;
            let queue = Arc::new(ArrayQueue::new(COMMAND_QUEUE));
            let thread = WorkerThread::spawn(
                index,
                s,
                certificate,
                queue.clone(),
                events.clone(),
                notify.clone(),
                #[cfg(any(test, feature = "fault-injection"))]
                faults.switches[index].clone(),
            )?;
            slots.push(Slot {
                port: thread.port(),
                commands: CommandQueue::new(queue),
                thread: Some(thread),
                failed: None,
            });
        }
        let (replacement_done, replacements) = channel();
        Ok(WorkerEngine {
            capabilities: router_rtp_capabilities(),
            settings,
            notify,
            slots,
            events,
            local: VecDeque::new(),
            room_worker: HashMap::new(),
            peer_room: HashMap::new(),
            next: 0,
            replacements,
            replacement_done,
            shutdown: Arc::new(AtomicBool::new(false)),
            #[cfg(any(test, feature = "fault-injection"))]
            faults,
        })
    }

    /// The media port of every worker.
    pub fn ports(&self) -> Vec<u16> {
        self.slots.iter().map(|s| s.port).collect()
    }

    /// The worker hosting a room, if it has one.
    pub fn worker_of(&self, room: &RoomId) -> Option<usize> {
        self.room_worker.get(room).copied()
    }

    /// Makes workers fail on demand (test builds only).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn fault_injector(&self) -> super::fault::FaultInjector {
        self.faults.clone()
    }

    /// A new room's worker: the next in turn that runs (a slot whose replacement is
    /// starting is passed over unless none runs).
    fn worker_of_room(&mut self, room: RoomId) -> usize {
        if let Some(w) = self.room_worker.get(&room) {
            return *w;
        }
        let n = self.slots.len();
        let mut w = self.next % n;
        for k in 0..n {
            let candidate = (self.next + k) % n;
            if self.slots[candidate].thread.is_some() {
                w = candidate;
                break;
            }
        }
        self.next = w.wrapping_add(1);
        self.room_worker.insert(room, w);
        w
    }

    /// Which worker a command goes to, learning rooms and peers on the way.
    fn route(&mut self, command: &EngineCommand) -> Option<usize> {
        let peer = match command {
            EngineCommand::CreateRouter { room } => return Some(self.worker_of_room(*room)),
            EngineCommand::CloseRouter { room } => {
                self.peer_room.retain(|_, r| r != room);
                return self.room_worker.remove(room);
            }
            EngineCommand::CreateWebRtcTransport { room, peer, .. }
            | EngineCommand::CreatePlainTransport { room, peer, .. } => {
                self.peer_room.insert(*peer, *room);
                return Some(self.worker_of_room(*room));
            }
            EngineCommand::ClosePeer { room, peer } => {
                self.peer_room.remove(peer);
                return self.room_worker.get(room).copied();
            }
            EngineCommand::ConnectWebRtcTransport { peer, .. }
            | EngineCommand::RestartIce { peer, .. }
            | EngineCommand::ConnectPlainTransport { peer, .. }
            | EngineCommand::Produce { peer, .. }
            | EngineCommand::Consume { peer, .. }
            | EngineCommand::CloseProducer { peer, .. }
            | EngineCommand::SetProducerPaused { peer, .. }
            | EngineCommand::SetConsumerPaused { peer, .. }
            | EngineCommand::CloseConsumer { peer, .. }
            | EngineCommand::CloseProducersOf { peer } => peer,
        };
        let room = self.peer_room.get(peer)?;
        self.room_worker.get(room).copied()
    }

    /// Notices failed workers and installs replacements that are ready.
    fn supervise(&mut self) {
        for index in 0..self.slots.len() {
            let failure = self.slots[index]
                .thread
                .as_ref()
                .and_then(WorkerThread::failure);
            if let Some(reason) = failure {
                self.replace(index, reason);
            }
        }
        while let Ok(Replacement { index, thread }) = self.replacements.try_recv() {
            let slot = &mut self.slots[index];
            // Commands queued meanwhile (its rooms' routers first) are waiting.
            thread.wake();
            slot.thread = Some(thread);
            slot.failed = None;
            tracing::info!(target: "kolabmeet::worker", worker = index, port = slot.port, "replacement media worker running");
            self.local.push_back(EngineEvent::WorkerRestarted {
                worker: index,
                port: slot.port,
            });
        }
    }

    /// Worker `index` failed: its rooms get empty routers in a new queue that its
    /// replacement (started off this thread) will drain, and the control plane is told.
    fn replace(&mut self, index: usize, reason: String) {
        let mut rooms: Vec<RoomId> = self
            .room_worker
            .iter()
            .filter(|(_, w)| **w == index)
            .map(|(r, _)| *r)
            .collect();
        rooms.sort();
        self.peer_room.retain(|_, r| !rooms.contains(r));
        let queue = Arc::new(ArrayQueue::new(COMMAND_QUEUE));
        let slot = &mut self.slots[index];
        // The thread has ended: joining it does not wait. Commands still queued for it
        // are dropped with its queue (the control plane fails their requests).
        slot.thread = None;
        slot.commands = CommandQueue::new(queue.clone());
        for room in &rooms {
            slot.commands
                .push(EngineCommand::CreateRouter { room: *room });
        }
        slot.failed = Some(reason.clone());
        tracing::warn!(target: "kolabmeet::worker", worker = index, port = slot.port, rooms = rooms.len(), "replacing the failed media worker on its port");
        let mut settings = self.settings.clone();
        settings.port = slot.port;
        let respawn = Respawn {
            index,
            settings,
            commands: queue,
            events: self.events.clone(),
            notify: self.notify.clone(),
            done: self.replacement_done.clone(),
            shutdown: self.shutdown.clone(),
            #[cfg(any(test, feature = "fault-injection"))]
            fault: self.faults.switches[index].clone(),
        };
        if let Err(e) = respawn.start() {
            tracing::error!(target: "kolabmeet::worker", worker = index, error = %e, "cannot start a thread to replace the media worker");
        }
        self.local.push_back(EngineEvent::WorkerFailed {
            worker: index,
            rooms,
            reason,
        });
    }
}

impl Drop for WorkerEngine {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Release);
    }
}

impl MediaEngine for WorkerEngine {
    fn router_rtp_capabilities(&self) -> &RtpCapabilities {
        &self.capabilities
    }

    fn submit(&mut self, command: EngineCommand) {
        let tag = command.tag();
        let Some(w) = self.route(&command) else {
            // Nothing of this peer or room exists on any worker.
            if let Some(tag) = tag {
                self.local.push_back(EngineEvent::Reply {
                    tag,
                    result: Err(command.not_found()),
                });
            }
            return;
        };
        let slot = &mut self.slots[w];
        match slot.commands.push(command) {
            Pushed::Queued => {
                if let Some(t) = &slot.thread {
                    t.wake();
                }
            }
            Pushed::Deferred => {}
            Pushed::Refused(tag) => self.local.push_back(EngineEvent::Reply {
                tag,
                result: Err(EngineError::Busy),
            }),
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.supervise();
        for slot in &mut self.slots {
            // Moves deferred commands to the worker as it drains its queue.
            if slot.commands.deferred() > 0
                && slot.commands.flush()
                && let Some(t) = &slot.thread
            {
                t.wake();
            }
        }
        self.local.pop_front().or_else(|| self.events.pop())
    }

    fn bandwidth_stats(
        &self,
    ) -> Vec<kolabmeet_media_types::bandwidth_stats::TransportBandwidthStats> {
        self.slots
            .iter()
            .filter_map(|s| s.thread.as_ref())
            .flat_map(WorkerThread::bandwidth_stats)
            .collect()
    }

    fn pending_events(&self) -> usize {
        self.local.len() + self.events.len()
    }

    fn worker_stats(&self) -> Vec<kolabmeet_media_types::worker_stats::WorkerStats> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let mut stats = s.thread.as_ref()?.stats();
                stats.worker = i;
                Some(stats)
            })
            .collect()
    }

    fn health(&self) -> EngineHealth {
        let problems: Vec<String> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| match (&slot.failed, &slot.thread) {
                (Some(reason), _) => Some(format!(
                    "media worker {i} failed ({reason}); its replacement is starting"
                )),
                (None, Some(t)) => t
                    .failure()
                    .map(|reason| format!("media worker {i} failed ({reason})")),
                (None, None) => Some(format!("media worker {i} is not running")),
            })
            .collect();
        if problems.is_empty() {
            EngineHealth::Healthy
        } else {
            EngineHealth::Degraded(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::media_engine::EngineReply;

    use super::*;
    use crate::media_engine::RequestTag;
    use crate::worker::{Fault, FaultInjector};

    fn engine(count: usize) -> (WorkerEngine, FaultInjector) {
        let settings = WorkerSettings {
            listen_ip: "127.0.0.1".parse().unwrap(),
            announced_address: "127.0.0.1".into(),
            port: 0,
            sender_report_clock: Default::default(),
        };
        let e = WorkerEngine::start(settings, count, Arc::new(|| {})).unwrap();
        let f = e.fault_injector();
        (e, f)
    }

    /// Polls until `pick` takes an event (others are kept for later picks).
    fn wait_for<T>(
        e: &mut WorkerEngine,
        seen: &mut Vec<EngineEvent>,
        what: &str,
        mut pick: impl FnMut(&EngineEvent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(i) = seen.iter().position(|ev| pick(ev).is_some()) {
                return pick(&seen.remove(i)).unwrap();
            }
            assert!(Instant::now() < deadline, "no {what}; events: {seen:?}");
            match e.poll_event() {
                Some(ev) => seen.push(ev),
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }

    fn reply(e: &mut WorkerEngine, seen: &mut Vec<EngineEvent>, tag: u64) -> EngineReply {
        wait_for(e, seen, "reply", |ev| match ev {
            EngineEvent::Reply { tag: t, result } if t.0 == tag => Some(result.clone()),
            _ => None,
        })
        .unwrap_or_else(|err| panic!("request {tag} failed: {err}"))
    }

    fn create_transport(e: &mut WorkerEngine, room: RoomId, tag: u64) {
        e.submit(EngineCommand::CreateWebRtcTransport {
            tag: RequestTag(tag),
            room,
            peer: PeerId::random(),
            force_tcp: false,
            producing: true,
            consuming: false,
        });
    }

    fn port_of(transport: &EngineReply) -> u64 {
        match transport {
            EngineReply::WebRtcTransportCreated(t) => u64::from(t.ice_candidates[0].port),
            other => panic!("not a transport: {other:?}"),
        }
    }

    /// Issue 8: a worker that panics is noticed (`WorkerFailed` naming its rooms), health
    /// is degraded until its replacement runs on the same port, the rooms' commands sent
    /// meanwhile are served by the replacement, and the other worker keeps serving.
    #[test]
    fn panicking_worker_is_replaced_on_its_port() {
        let (mut e, faults) = engine(2);
        let mut seen = Vec::new();
        let (a, b) = (RoomId::random(), RoomId::random());
        e.submit(EngineCommand::CreateRouter { room: a });
        e.submit(EngineCommand::CreateRouter { room: b });
        assert_eq!((e.worker_of(&a), e.worker_of(&b)), (Some(0), Some(1)));
        create_transport(&mut e, a, 1);
        let before = port_of(&reply(&mut e, &mut seen, 1));
        assert_eq!(before, u64::from(e.ports()[0]));
        assert_eq!(e.health(), EngineHealth::Healthy);

        // The replacement is held back a little, so that the window is seen.
        assert!(faults.inject(0, Fault::Panic, Duration::from_millis(300)));
        // Health knows as soon as the thread is gone, before any poll.
        let deadline = Instant::now() + Duration::from_secs(5);
        while e.health() == EngineHealth::Healthy {
            assert!(Instant::now() < deadline, "health never degraded");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (worker, rooms, reason) = wait_for(&mut e, &mut seen, "WorkerFailed", |ev| match ev {
            EngineEvent::WorkerFailed {
                worker,
                rooms,
                reason,
            } => Some((*worker, rooms.clone(), reason.clone())),
            _ => None,
        });
        assert_eq!((worker, rooms), (0, vec![a]));
        assert!(reason.contains("injected fault"), "{reason}");
        // Until the replacement runs, health says why.
        match e.health() {
            EngineHealth::Degraded(why) => assert!(why.contains("media worker 0 failed"), "{why}"),
            h => panic!("{h:?}"),
        }
        // The other worker serves on; room A's request waits for the replacement.
        create_transport(&mut e, b, 2);
        create_transport(&mut e, a, 3);
        reply(&mut e, &mut seen, 2);
        let port = wait_for(&mut e, &mut seen, "WorkerRestarted", |ev| match ev {
            EngineEvent::WorkerRestarted { worker: 0, port } => Some(*port),
            _ => None,
        });
        assert_eq!(u64::from(port), before, "same port");
        assert_eq!(e.health(), EngineHealth::Healthy);
        assert_eq!(port_of(&reply(&mut e, &mut seen, 3)), before);
        assert_eq!(e.worker_of(&a), Some(0), "the room stays on its slot");
    }

    /// A worker whose loop returns an error is replaced the same way, and a replacement
    /// that fails again is replaced again.
    #[test]
    fn failed_loop_is_replaced_again_and_again() {
        let (mut e, faults) = engine(1);
        let mut seen = Vec::new();
        let room = RoomId::random();
        e.submit(EngineCommand::CreateRouter { room });
        for (round, fault) in [Fault::LoopError, Fault::Panic, Fault::LoopError]
            .into_iter()
            .enumerate()
        {
            faults.inject(0, fault, Duration::ZERO);
            let reason = wait_for(&mut e, &mut seen, "WorkerFailed", |ev| match ev {
                EngineEvent::WorkerFailed { reason, rooms, .. } if rooms == &vec![room] => {
                    Some(reason.clone())
                }
                _ => None,
            });
            let expected = match fault {
                Fault::LoopError => "its loop failed",
                Fault::Panic => "it panicked",
            };
            assert!(reason.contains(expected), "{reason}");
            wait_for(&mut e, &mut seen, "WorkerRestarted", |ev| {
                matches!(ev, EngineEvent::WorkerRestarted { worker: 0, .. }).then_some(())
            });
            let tag = 10 + round as u64;
            create_transport(&mut e, room, tag);
            assert_eq!(
                port_of(&reply(&mut e, &mut seen, tag)),
                u64::from(e.ports()[0])
            );
        }
        assert_eq!(e.health(), EngineHealth::Healthy);
    }
}
