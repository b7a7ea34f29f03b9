//! Where a room's peers go (contract section 6, issue 16): a room has at most one router
//! per worker, each for at most `ROUTER_SCALE_SIZE` peers; a peer goes on the room's
//! router with the fewest peers that has room for one, else on a new router on the least
//! loaded worker that has none of the room, else (every worker has one) on the room's
//! router with the fewest peers. A router whose last peer left closes, unless it is the
//! room's last one (which closes with the room). The engine owns this table; workers
//! only hear what it decides.

use std::collections::HashMap;

use crate::ids::{PeerId, RoomId};

/// One router of a room: its worker and the peers on it.
#[derive(Debug, Clone, Default)]
struct RouterPlace {
    worker: usize,
    peers: Vec<PeerId>,
}

/// Where a peer went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerPlaced {
    /// On the worker that already has a router of the room.
    On(usize),
    /// On a new router of the room on this worker: the room is on `workers` now.
    NewRouter {
        /// The worker.
        worker: usize,
        /// The room's workers, the new one among them.
        workers: Vec<usize>,
    },
}

/// What a peer's leaving did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRemoved {
    /// The worker it was on.
    pub worker: usize,
    /// Its router emptied and closes: the room is on these workers now.
    pub router_closed: Option<Vec<usize>>,
}

/// The placement of every room; see the module documentation.
#[derive(Debug)]
pub struct Placement {
    scale: usize,
    rooms: HashMap<RoomId, Vec<RouterPlace>>,
    peers: HashMap<PeerId, (RoomId, usize)>,
}

impl Placement {
    /// Routers of at most `scale` peers (`ROUTER_SCALE_SIZE`).
    pub fn new(scale: usize) -> Self {
        Placement {
            scale: scale.max(1),
            rooms: HashMap::new(),
            peers: HashMap::new(),
        }
    }

    /// Changes `ROUTER_SCALE_SIZE` for peers placed from now on.
    pub fn set_scale(&mut self, scale: usize) {
        self.scale = scale.max(1);
    }

    /// The room's first router, made on `pick()` if the room has none; whether it was
    /// made now.
    pub fn create_room(&mut self, room: RoomId, pick: impl FnOnce() -> usize) -> (usize, bool) {
        if let Some(first) = self.rooms.get(&room).and_then(|r| r.first()) {
            return (first.worker, false);
        }
        let worker = pick();
        self.rooms.insert(
            room,
            vec![RouterPlace {
                worker,
                peers: Vec::new(),
            }],
        );
        (worker, true)
    }

    /// The worker of a placed peer.
    pub fn worker_of_peer(&self, peer: &PeerId) -> Option<usize> {
        self.peers.get(peer).map(|(_, w)| *w)
    }

    /// The workers of a room, its first router's first.
    pub fn workers_of(&self, room: &RoomId) -> Vec<usize> {
        self.rooms
            .get(room)
            .map(|r| r.iter().map(|p| p.worker).collect())
            .unwrap_or_default()
    }

    /// Peers placed on `worker` (a load measure while its stats are a second old).
    pub fn peers_on(&self, worker: usize) -> usize {
        self.peers.values().filter(|(_, w)| *w == worker).count()
    }

    /// Places a peer of `room` (which must exist) among `workers` workers, `usable`
    /// telling which may get a new router and `load` how loaded each is. `None` when the
    /// room is unknown.
    pub fn place_peer(
        &mut self,
        room: RoomId,
        peer: PeerId,
        workers: usize,
        usable: impl Fn(usize) -> bool,
        load: impl Fn(usize) -> u64,
    ) -> Option<PeerPlaced> {
        if let Some((r, w)) = self.peers.get(&peer)
            && *r == room
        {
            return Some(PeerPlaced::On(*w));
        }
        let routers = self.rooms.get_mut(&room)?;
        let fewest = routers
            .iter()
            .enumerate()
            .min_by_key(|(i, r)| (r.peers.len(), *i))
            .map(|(i, _)| i)?;
        let target = if routers[fewest].peers.len() < self.scale {
            Some(fewest)
        } else {
            None
        };
        let placed = match target {
            Some(i) => {
                routers[i].peers.push(peer);
                PeerPlaced::On(routers[i].worker)
            }
            None => {
                let free = (0..workers)
                    .filter(|w| usable(*w) && !routers.iter().any(|r| r.worker == *w))
                    .min_by_key(|w| (load(*w), *w));
                match free {
                    Some(worker) => {
                        routers.push(RouterPlace {
                            worker,
                            peers: vec![peer],
                        });
                        PeerPlaced::NewRouter {
                            worker,
                            workers: routers.iter().map(|r| r.worker).collect(),
                        }
                    }
                    None => {
                        routers[fewest].peers.push(peer);
                        PeerPlaced::On(routers[fewest].worker)
                    }
                }
            }
        };
        let worker = match &placed {
            PeerPlaced::On(w) | PeerPlaced::NewRouter { worker: w, .. } => *w,
        };
        self.peers.insert(peer, (room, worker));
        Some(placed)
    }

    /// A peer left its room.
    pub fn remove_peer(&mut self, peer: &PeerId) -> Option<PeerRemoved> {
        let (room, worker) = self.peers.remove(peer)?;
        let routers = self.rooms.get_mut(&room)?;
        let i = routers.iter().position(|r| r.worker == worker)?;
        routers[i].peers.retain(|p| p != peer);
        let router_closed = (routers[i].peers.is_empty() && routers.len() > 1).then(|| {
            routers.remove(i);
            routers.iter().map(|r| r.worker).collect()
        });
        Some(PeerRemoved {
            worker,
            router_closed,
        })
    }

    /// The room closes: its workers.
    pub fn close_room(&mut self, room: &RoomId) -> Vec<usize> {
        let workers = self.workers_of(room);
        self.rooms.remove(room);
        self.peers.retain(|_, (r, _)| r != room);
        workers
    }

    /// The rooms with a router on `worker`.
    pub fn rooms_on(&self, worker: usize) -> Vec<RoomId> {
        let mut rooms: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, r)| r.iter().any(|p| p.worker == worker))
            .map(|(room, _)| *room)
            .collect();
        rooms.sort();
        rooms
    }

    /// Whether `room` has routers on several workers.
    pub fn is_spread(&self, room: &RoomId) -> bool {
        self.rooms.get(room).is_some_and(|r| r.len() > 1)
    }

    /// Takes `room`'s router on `worker` away (the worker failed; the room has others):
    /// the peers that were on it, forgotten (they are placed again when they come back).
    pub fn drop_router(&mut self, room: RoomId, worker: usize) -> Vec<PeerId> {
        let Some(routers) = self.rooms.get_mut(&room) else {
            return Vec::new();
        };
        let Some(i) = routers.iter().position(|r| r.worker == worker) else {
            return Vec::new();
        };
        let gone = routers.remove(i);
        for p in &gone.peers {
            self.peers.remove(p);
        }
        gone.peers
    }

    /// Forgets where `room`'s peers are and leaves it one router, on `worker` (its
    /// media restarts there after a worker failure).
    pub fn restart_room(&mut self, room: RoomId, worker: usize) {
        self.peers.retain(|_, (r, _)| *r != room);
        self.rooms.insert(
            room,
            vec![RouterPlace {
                worker,
                peers: Vec::new(),
            }],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(p: &mut Placement, room: RoomId, loads: &[u64]) -> (PeerId, PeerPlaced) {
        let peer = PeerId::random();
        let placed = p
            .place_peer(room, peer, loads.len(), |_| true, |w| loads[w])
            .unwrap();
        (peer, placed)
    }

    #[test]
    fn a_room_spreads_by_scale_size_onto_the_least_loaded_workers() {
        let mut p = Placement::new(2);
        let room = RoomId::random();
        assert_eq!(p.create_room(room, || 1), (1, true));
        assert_eq!(p.create_room(room, || 0), (1, false));
        let loads = [50, 10, 0];
        assert_eq!(place(&mut p, room, &loads).1, PeerPlaced::On(1));
        assert_eq!(place(&mut p, room, &loads).1, PeerPlaced::On(1));
        // Full: a new router, on the least loaded worker without one (2, not 0).
        let (c, placed) = place(&mut p, room, &loads);
        assert_eq!(
            placed,
            PeerPlaced::NewRouter {
                worker: 2,
                workers: vec![1, 2]
            }
        );
        assert_eq!(place(&mut p, room, &loads).1, PeerPlaced::On(2));
        assert_eq!(
            place(&mut p, room, &loads).1,
            PeerPlaced::NewRouter {
                worker: 0,
                workers: vec![1, 2, 0]
            }
        );
        place(&mut p, room, &loads);
        // Every worker has a router and all are full: the one with the fewest peers.
        assert_eq!(place(&mut p, room, &loads).1, PeerPlaced::On(1));
        // A router that empties closes (not the room's last).
        let removed = p.remove_peer(&c).unwrap();
        assert_eq!(removed.worker, 2);
        assert_eq!(removed.router_closed, None, "one peer still on worker 2");
        assert_eq!(p.peers_on(2), 1);
    }

    #[test]
    fn an_emptied_router_closes_but_the_rooms_last_stays() {
        let mut p = Placement::new(1);
        let room = RoomId::random();
        p.create_room(room, || 0);
        let (a, _) = place(&mut p, room, &[0, 0]);
        let (b, placed) = place(&mut p, room, &[0, 0]);
        assert_eq!(
            placed,
            PeerPlaced::NewRouter {
                worker: 1,
                workers: vec![0, 1]
            }
        );
        assert_eq!(
            p.remove_peer(&a).unwrap().router_closed,
            Some(vec![1]),
            "worker 0's router closes; the room is on worker 1"
        );
        assert_eq!(p.remove_peer(&b).unwrap().router_closed, None);
        assert_eq!(p.workers_of(&room), vec![1]);
        assert_eq!(p.close_room(&room), vec![1]);
        assert!(p.rooms_on(1).is_empty());
    }

    #[test]
    fn a_failed_workers_router_of_a_spread_room_goes_with_its_peers_only() {
        let mut p = Placement::new(1);
        let room = RoomId::random();
        p.create_room(room, || 0);
        let (a, _) = place(&mut p, room, &[0, 0]);
        let (b, _) = place(&mut p, room, &[0, 0]);
        assert!(p.is_spread(&room));
        assert_eq!(p.drop_router(room, 1), vec![b]);
        assert!(!p.is_spread(&room));
        assert_eq!(p.worker_of_peer(&a), Some(0));
        assert_eq!(
            p.worker_of_peer(&b),
            None,
            "placed again when it comes back"
        );
        assert_eq!(p.workers_of(&room), vec![0]);
    }

    #[test]
    fn a_worker_that_is_not_running_gets_no_new_router() {
        let mut p = Placement::new(1);
        let room = RoomId::random();
        p.create_room(room, || 0);
        place(&mut p, room, &[0, 0]);
        let placed = p
            .place_peer(room, PeerId::random(), 2, |w| w != 1, |_| 0)
            .unwrap();
        assert_eq!(placed, PeerPlaced::On(0), "over the scale size rather");
    }
}
