//! The control plane's handle on the media workers: places each room's peers on routers
//! of at most `ROUTER_SCALE_SIZE` peers, one router of the room per worker (contract
//! section 6; issue 16: a new router goes on the least loaded worker that has none of
//! the room, load being what the worker forwards, not its peers), routes each command to
//! the worker of its peer or room, tells a room's workers where the room is (they mirror
//! their producers on each other, see [`crate::mirror`]), and collects every worker's
//! events from one shared queue.
//!
//! It also notices a worker that failed (its thread ended without being asked to: a
//! panic or an error out of its loop, see [`WorkerThread::failure`]) at the next
//! [`MediaEngine::poll_event`] (the dying thread wakes the control loop). The worker's
//! rooms stay on its slot, with empty routers: their commands wait in the slot's new
//! queue while a replacement starts on the same port off the control thread
//! ([`respawn`](super::respawn)). The control plane learns it from
//! [`EngineEvent::WorkerFailed`] and [`EngineEvent::WorkerRestarted`], and
//! [`MediaEngine::health`] is degraded in between.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crossbeam_queue::ArrayQueue;

use super::command_queue::{CommandQueue, Pushed};
use super::driver::{COMMAND_QUEUE, Notify, WorkerLinks, WorkerThread};
use super::pipe_ends::{PipeEnds, pipe_mesh};
use super::placement::{PeerPlaced, Placement};
use super::respawn::{Replacement, Respawn};
use super::settings::WorkerSettings;
use super::worker_command::WorkerCommand;
use crate::crypto::DtlsCertificate;
use crate::ids::RoomId;
use crate::media_engine::{EngineCommand, EngineError, EngineEvent, EngineHealth, MediaEngine};
use crate::mirror::WorkerIndex;
use crate::ortc::{RtpCapabilities, router_rtp_capabilities};

/// `ROUTER_SCALE_SIZE` unless told otherwise (the contract's default).
pub const DEFAULT_ROUTER_SCALE_SIZE: usize = 16;

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
    /// Where each room's peers are.
    placement: Placement,
    /// Each slot's ends of the pipes between workers (a replacement gets the same).
    pipes: Vec<PipeEnds>,
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
        let pipes = pipe_mesh(count);
        for (index, ends) in pipes.iter().enumerate() {
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
                WorkerLinks {
                    commands: queue.clone(),
                    pipes: ends.clone(),
                    events: events.clone(),
                    notify: notify.clone(),
                },
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
            placement: Placement::new(DEFAULT_ROUTER_SCALE_SIZE),
            pipes,
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

    /// The first worker of a room, if it has one.
    pub fn worker_of(&self, room: &RoomId) -> Option<usize> {
        self.placement.workers_of(room).first().copied()
    }

    /// The workers of a room, its first router's first.
    pub fn workers_of(&self, room: &RoomId) -> Vec<usize> {
        self.placement.workers_of(room)
    }

    /// Sets `ROUTER_SCALE_SIZE`: peers of a room per router before it spreads onto
    /// another worker.
    pub fn set_router_scale_size(&mut self, n: usize) {
        self.placement.set_scale(n);
    }

    /// Makes workers fail on demand (test builds only).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn fault_injector(&self) -> super::fault::FaultInjector {
        self.faults.clone()
    }

    /// How loaded a worker is, for placing a new router: the consumers it forwards to
    /// (its last stats, at most a second old), and the peers and rooms placed on it
    /// (which its stats may not show yet; an empty room soon has peers).
    fn load(&self, worker: usize) -> u64 {
        let consumers = self.slots[worker]
            .thread
            .as_ref()
            .map_or(0, |t| t.stats().consumers.len());
        (consumers + self.placement.peers_on(worker) + self.placement.rooms_on(worker).len()) as u64
    }

    /// A new room's first worker: the least loaded that runs (any when none runs).
    fn pick_worker(&self) -> usize {
        let running = |w: &usize| self.slots[*w].thread.is_some();
        (0..self.slots.len())
            .filter(running)
            .min_by_key(|w| (self.load(*w), *w))
            .unwrap_or(0)
    }

    /// Queues an engine command for worker `w` (never refused: it waits in the
    /// overflow when the queue is full).
    fn push_internal(&mut self, w: usize, command: WorkerCommand) {
        let slot = &mut self.slots[w];
        if slot.commands.push(command) == Pushed::Queued
            && let Some(t) = &slot.thread
        {
            t.wake();
        }
    }

    /// Tells every worker of `room` which workers it is on.
    fn announce_room_workers(&mut self, room: RoomId) {
        let workers = self.placement.workers_of(&room);
        let indexes: Vec<WorkerIndex> = workers.iter().map(|w| WorkerIndex(*w as u16)).collect();
        for w in workers {
            self.push_internal(
                w,
                WorkerCommand::RoomWorkers {
                    room,
                    workers: indexes.clone(),
                },
            );
        }
    }

    /// Which worker a command goes to, placing rooms and peers on the way (and queueing
    /// the routers and room announcements that placement makes).
    fn route(&mut self, command: &EngineCommand) -> Option<usize> {
        let peer = match command {
            EngineCommand::CreateRouter { room } => {
                let first = self.pick_worker();
                return Some(self.placement.create_room(*room, || first).0);
            }
            EngineCommand::CloseRouter { room } => {
                let workers = self.placement.close_room(room);
                let (first, rest) = workers.split_first()?;
                for w in rest {
                    self.push_internal(*w, EngineCommand::CloseRouter { room: *room }.into());
                }
                return Some(*first);
            }
            EngineCommand::CreateWebRtcTransport { room, peer, .. }
            | EngineCommand::CreatePlainTransport { room, peer, .. } => {
                let first = self.pick_worker();
                self.placement.create_room(*room, || first);
                let n = self.slots.len();
                let running: Vec<bool> = self.slots.iter().map(|s| s.thread.is_some()).collect();
                let loads: Vec<u64> = (0..n).map(|w| self.load(w)).collect();
                let placed =
                    self.placement
                        .place_peer(*room, *peer, n, |w| running[w], |w| loads[w])?;
                return Some(match placed {
                    PeerPlaced::On(w) => w,
                    PeerPlaced::NewRouter { worker, .. } => {
                        tracing::info!(target: "kolabmeet::worker", room = %room, worker, "room spreads onto another worker");
                        self.push_internal(
                            worker,
                            EngineCommand::CreateRouter { room: *room }.into(),
                        );
                        self.announce_room_workers(*room);
                        worker
                    }
                });
            }
            EngineCommand::ClosePeer { room, peer } => {
                let removed = self.placement.remove_peer(peer);
                let Some(removed) = removed else {
                    return self.placement.workers_of(room).first().copied();
                };
                if removed.router_closed.is_some() {
                    // Its close first, then the router's: one queue, in order.
                    let w = removed.worker;
                    self.push_internal(
                        w,
                        EngineCommand::ClosePeer {
                            room: *room,
                            peer: *peer,
                        }
                        .into(),
                    );
                    self.push_internal(w, EngineCommand::CloseRouter { room: *room }.into());
                    tracing::info!(target: "kolabmeet::worker", room = %room, worker = w, "the room's router on this worker emptied and closed");
                    self.announce_room_workers(*room);
                    return None;
                }
                return Some(removed.worker);
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
        self.placement.worker_of_peer(peer)
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
        let mut rooms = Vec::new();
        let mut spread_peers = Vec::new();
        for room in self.placement.rooms_on(index) {
            if self.placement.is_spread(&room) {
                // Only this worker's peers of the room start over; its other workers
                // close the mirrors of this one's producers and keep the rest.
                let peers = self.placement.drop_router(room, index);
                self.announce_room_workers(room);
                spread_peers.push((room, peers));
            } else {
                self.placement.restart_room(room, index);
                rooms.push(room);
            }
        }
        // Nothing more goes to it; what came from it is closed (the rooms above already
        // told their workers; this covers whatever else they mirrored).
        for w in (0..self.slots.len()).filter(|w| *w != index) {
            self.push_internal(w, WorkerCommand::WorkerLost(WorkerIndex(index as u16)));
        }
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
        let pipes = self.pipes[index].clone();
        slot.failed = Some(reason.clone());
        tracing::warn!(target: "kolabmeet::worker", worker = index, port = slot.port, rooms = rooms.len(), "replacing the failed media worker on its port");
        let mut settings = self.settings.clone();
        settings.port = slot.port;
        let respawn = Respawn {
            index,
            settings,
            commands: queue,
            pipes,
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
            spread_peers,
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
    use crate::ids::PeerId;
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
                ..
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

    /// Issue 16: a worker holding one router of a spread room fails: only its peers of
    /// the room are named (`spread_peers`), the room stays on the other worker, and a peer
    /// coming back is placed again.
    #[test]
    fn a_failed_worker_of_a_spread_room_costs_only_its_peers() {
        let (mut e, faults) = engine(2);
        e.set_router_scale_size(1);
        let mut seen = Vec::new();
        let room = RoomId::random();
        e.submit(EngineCommand::CreateRouter { room });
        let (a, b) = (PeerId::random(), PeerId::random());
        for (tag, peer) in [(1, a), (2, b)] {
            e.submit(EngineCommand::CreateWebRtcTransport {
                tag: RequestTag(tag),
                room,
                peer,
                force_tcp: false,
                producing: true,
                consuming: true,
            });
            reply(&mut e, &mut seen, tag);
        }
        assert_eq!(e.workers_of(&room), vec![0, 1]);
        assert!(faults.inject(1, Fault::Panic, Duration::ZERO));
        let (rooms, spread) = wait_for(&mut e, &mut seen, "WorkerFailed", |ev| match ev {
            EngineEvent::WorkerFailed {
                worker: 1,
                rooms,
                spread_peers,
                ..
            } => Some((rooms.clone(), spread_peers.clone())),
            _ => None,
        });
        assert!(rooms.is_empty(), "no room restarts whole");
        assert_eq!(spread, vec![(room, vec![b])]);
        assert_eq!(
            e.workers_of(&room),
            vec![0],
            "the room lives on on worker 0"
        );
        // b comes back: placed again (worker 0's router is full: a new one on 1).
        wait_for(&mut e, &mut seen, "WorkerRestarted", |ev| {
            matches!(ev, EngineEvent::WorkerRestarted { worker: 1, .. }).then_some(())
        });
        e.submit(EngineCommand::CreateWebRtcTransport {
            tag: RequestTag(3),
            room,
            peer: b,
            force_tcp: false,
            producing: true,
            consuming: true,
        });
        assert_eq!(
            port_of(&reply(&mut e, &mut seen, 3)),
            u64::from(e.ports()[1])
        );
        assert_eq!(e.workers_of(&room), vec![0, 1]);
    }
}
