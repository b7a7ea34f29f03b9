//! Two worker cores in memory (issue 16: a room over two workers), each a [`Sim`] with
//! its own browsers, on one virtual clock, with the messages between them
//! ([`PipeMessage`](kolabmeet_engine::mirror::PipeMessage)) carried as the drivers carry
//! them between threads: after each step, everything each core wrote for the other.

use std::time::Duration;

use kolabmeet_engine::RoomId;
use kolabmeet_engine::mirror::{PipeMessage, WorkerIndex};

use crate::sim::Sim;

/// Worker 0 (`a`) and worker 1 (`b`).
pub struct SimPair {
    /// Worker 0.
    pub a: Sim,
    /// Worker 1.
    pub b: Sim,
    /// Messages carried from `a` to `b`, and from `b` to `a`.
    pub carried: (u64, u64),
    /// Of those from `a` to `b`: packets handed over whole, and notices of packets not
    /// handed over (issue 16: only what is watched crosses).
    pub packets: (u64, u64),
}

impl Default for SimPair {
    fn default() -> Self {
        Self::new()
    }
}

impl SimPair {
    /// Two cores with the process's shared certificates, indexed 0 and 1, on one clock.
    pub fn new() -> Self {
        let a = Sim::with_shared_certificates();
        let mut b = Sim::with_shared_certificates();
        b.core.set_index(WorkerIndex(1));
        b.now = a.now;
        SimPair {
            a,
            b,
            carried: (0, 0),
            packets: (0, 0),
        }
    }

    /// A room with a router on both workers, each told the room is on both (as the
    /// engine tells them when the room spreads): producers of either are mirrored on
    /// the other from then on.
    pub fn room(&mut self) -> RoomId {
        let room = self.a.room();
        self.b.core.handle_command(
            self.b.now,
            kolabmeet_engine::EngineCommand::CreateRouter { room },
        );
        let both = [WorkerIndex(0), WorkerIndex(1)];
        self.a.core.set_room_workers(room, &both);
        self.b.core.set_room_workers(room, &both);
        self.exchange();
        room
    }

    /// Carries every message each core wrote for the other, and what that makes them
    /// send, until both are quiet.
    pub fn exchange(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some((to, m)) = self.a.core.poll_pipe() {
                assert_eq!(to, WorkerIndex(1), "worker 0 writes only to worker 1");
                match m {
                    PipeMessage::Rtp { .. } => self.packets.0 += 1,
                    PipeMessage::Notice { .. } => self.packets.1 += 1,
                    _ => {}
                }
                self.b.core.handle_pipe(self.b.now, m);
                self.carried.0 += 1;
                moved = true;
            }
            self.b.pump();
            while let Some((to, m)) = self.b.core.poll_pipe() {
                assert_eq!(to, WorkerIndex(0), "worker 1 writes only to worker 0");
                self.a.core.handle_pipe(self.a.now, m);
                self.carried.1 += 1;
                moved = true;
            }
            self.a.pump();
            if !moved {
                return;
            }
        }
    }

    /// Moves both clocks on by `d`, runs both cores' timers, and carries what follows.
    pub fn advance(&mut self, d: Duration) {
        self.a.advance(d);
        self.b.advance(d);
        self.exchange();
    }

    /// Moves both clocks on by `d` without running timers (as a test between packets).
    pub fn step(&mut self, d: Duration) {
        self.a.now += d;
        self.b.now += d;
    }
}
