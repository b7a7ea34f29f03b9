//! Graceful drain (issue 10): what the control plane does once the server has been asked to
//! stop (SIGTERM or SIGINT at the edge).
//!
//! - No new rooms: [`ControlPlane::create_room`] fails with [`ControlError::Draining`]
//!   (`POST /meetmedia/api/sessions` answers 503). Everything else goes on for the rooms
//!   that exist: new peers for them, signaling, media, signals.
//! - A room in progress follows the contract's room rules (section 5): it closes
//!   `room_close_delay` (10 s) after its last peer left, with its `roomClosed` webhook.
//!   The contract is silent on rooms nobody is in when the drain starts (created, perhaps
//!   with peer tokens handed out, but no socket): while draining, such a room closes after
//!   the same 10 s unless a peer connects, instead of the hour a room nobody ever joins
//!   normally waits (a new peer token gives it 10 s again).
//! - At the drain deadline every room still open is closed (its peers' sockets get a
//!   Socket.IO disconnect, its `roomClosed` webhook is posted).
//!
//! The drain is over ([`ControlPlane::drained`]) once no room is left; the edge then stops
//! the process. Time is a parameter, as everywhere in the control plane.

use std::time::{Duration, Instant};

use kolabmeet_media_types::RoomId;

use super::drain_state::{Drain, DrainStatus};
use super::recovery::Scope;
use super::{ControlError, ControlPlane, Now, TimerKey};

impl ControlPlane {
    /// Starts the drain: no new rooms from now on; the rooms still open at `now + timeout`
    /// are closed then. Returns false (and changes nothing) when already draining.
    pub fn begin_drain(&mut self, now: Now, timeout: Duration) -> bool {
        if self.drain.is_some() {
            return false;
        }
        let deadline = now.mono + timeout;
        self.drain = Some(Drain {
            started: now.mono,
            deadline,
        });
        self.timers.push(deadline, TimerKey::Drain);
        // Rooms nobody is in close after the usual delay, not after the idle expiry.
        let idle_until = now.mono + self.config.room_close_delay;
        let mut idle = 0;
        for room in self.rooms.values_mut() {
            if !room.has_active_peers() && room.close_at.is_none_or(|t| t > idle_until) {
                room.close_at = Some(idle_until);
                self.timers.push(idle_until, TimerKey::Room(room.id));
                idle += 1;
            }
        }
        let (rooms, peers) = self.counts();
        tracing::info!(
            rooms,
            peers,
            empty_rooms = idle,
            timeout_s = timeout.as_secs_f64(),
            "draining: no new rooms; the rooms in progress go on until they empty or the drain timeout passes"
        );
        true
    }

    /// Whether a drain is in progress, and how far along it is.
    pub fn drain_status(&self, now: Instant) -> Option<DrainStatus> {
        let drain = self.drain?;
        let (rooms, peers) = self.counts();
        Some(DrainStatus {
            rooms,
            peers,
            closes_in: drain.deadline.saturating_duration_since(now),
        })
    }

    /// True once a drain is in progress and no room is left: the server may stop.
    pub fn drained(&self) -> bool {
        self.drain.is_some() && self.rooms.is_empty()
    }

    /// How long a room nobody is in waits for a peer: the idle expiry, or while draining
    /// the room close delay (the shorter of the two).
    pub(super) fn idle_expiry(&self) -> Duration {
        if self.drain.is_some() {
            self.config
                .room_close_delay
                .min(self.config.room_idle_expiry)
        } else {
            self.config.room_idle_expiry
        }
    }

    /// Refuses a new room while draining.
    pub(super) fn check_not_draining(&self) -> Result<(), ControlError> {
        match self.drain {
            Some(_) => Err(ControlError::Draining),
            None => Ok(()),
        }
    }

    /// Logs a room closing during a drain (called by `close_room`).
    pub(super) fn note_room_closed_while_draining(&self, room: RoomId, now: Now) {
        let Some(drain) = self.drain else {
            return;
        };
        let (rooms, peers) = self.counts();
        tracing::info!(
            room = %room,
            rooms_left = rooms,
            peers_left = peers,
            draining_for_s = now.mono.saturating_duration_since(drain.started).as_secs(),
            "draining: room closed"
        );
        if rooms == 0 {
            tracing::info!("draining: every room is closed");
        }
    }

    /// Whether the drain deadline entry `at` is the live one (timer compaction).
    fn drain_timer_is_live(&self, at: Instant) -> bool {
        self.drain.is_some_and(|d| d.deadline == at)
    }

    /// The drain deadline: closes every room still open, each with its webhook.
    pub(super) fn drain_deadline(&mut self, at: Instant, now: Now) {
        if !self.drain_timer_is_live(at) {
            return;
        }
        let mut rooms: Vec<RoomId> = self.rooms.keys().copied().collect();
        if rooms.is_empty() {
            return;
        }
        rooms.sort();
        tracing::info!(
            rooms = rooms.len(),
            peers = self.counts().1,
            "draining: drain timeout passed, closing the rooms still open"
        );
        for room in rooms {
            // A panic while closing one room costs that room only (recovery.rs).
            self.contained(Scope::Room(room), now, |cp| cp.close_room(room, now));
        }
    }
}
