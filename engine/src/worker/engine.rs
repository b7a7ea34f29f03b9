//! The control plane's handle on the media workers: routes each command to the worker
//! that hosts its room (rooms are spread round-robin; a room stays on one worker until
//! rooms larger than `ROUTER_SCALE_SIZE` spread, which comes later) and collects every
//! worker's events from one shared queue.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::command_queue::Pushed;
use super::driver::{Notify, WorkerHandle};
use super::settings::WorkerSettings;
use crate::crypto::DtlsCertificate;
use crate::ids::{PeerId, RoomId};
use crate::media_engine::{EngineCommand, EngineError, EngineEvent, MediaEngine};
use crate::ortc::{RtpCapabilities, router_rtp_capabilities};

/// Events queued from all workers before workers hold them back.
const EVENT_QUEUE: usize = 65_536;

/// All media workers of the server.
pub struct WorkerEngine {
    capabilities: RtpCapabilities,
    workers: Vec<WorkerHandle>,
    events: Arc<ArrayQueue<EngineEvent>>,
    local: VecDeque<EngineEvent>,
    room_worker: HashMap<RoomId, usize>,
    peer_room: HashMap<PeerId, RoomId>,
    next: usize,
}

impl WorkerEngine {
    /// Starts `count` workers on consecutive ports from `settings.port` (or free ports
    /// when it is 0), each with its own DTLS certificate. `notify` wakes the control loop.
    pub fn start(settings: WorkerSettings, count: usize, notify: Notify) -> io::Result<Self> {
        let events = Arc::new(ArrayQueue::new(EVENT_QUEUE));
        let mut workers = Vec::with_capacity(count.max(1));
        for index in 0..count.max(1) {
            let mut s = settings.clone();
            if s.port != 0 {
                s.port = s.port.checked_add(index as u16).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "worker port overflow")
                })?;
            }
            let certificate = DtlsCertificate::generate()
                .map_err(|e| io::Error::other(format!("DTLS certificate: {e}")))?;
            workers.push(WorkerHandle::spawn(
                index,
                s,
                certificate,
                events.clone(),
                notify.clone(),
            )?);
        }
        Ok(WorkerEngine {
            capabilities: router_rtp_capabilities(),
            workers,
            events,
            local: VecDeque::new(),
            room_worker: HashMap::new(),
            peer_room: HashMap::new(),
            next: 0,
        })
    }

    /// The media port of every worker.
    pub fn ports(&self) -> Vec<u16> {
        self.workers.iter().map(WorkerHandle::port).collect()
    }

    fn worker_of_room(&mut self, room: RoomId) -> usize {
        if let Some(w) = self.room_worker.get(&room) {
            return *w;
        }
        let w = self.next % self.workers.len();
        self.next = self.next.wrapping_add(1);
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
        if let Pushed::Refused(tag) = self.workers[w].submit(command) {
            self.local.push_back(EngineEvent::Reply {
                tag,
                result: Err(EngineError::Busy),
            });
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        for worker in &mut self.workers {
            worker.flush();
        }
        self.local.pop_front().or_else(|| self.events.pop())
    }
}
