//! What the server does with stop signals (issue 10, graceful drain): the first `SIGTERM`
//! or `SIGINT` starts a drain (no new rooms; the rooms in progress go on until they empty
//! or `DRAIN_TIMEOUT` passes, then the process exits 0); a second one stops at once.
//!
//! This is the decision only; the listener delivers the signals
//! ([`Front::watch_signals`](crate::front::Front::watch_signals)) and the control plane
//! drains the rooms ([`ControlPlane::begin_drain`](kolabmeet_signaling::control::ControlPlane::begin_drain)).

use std::time::Duration;

/// The signals that stop the server.
pub const STOP_SIGNALS: [i32; 2] = [libc::SIGTERM, libc::SIGINT];

/// Default of `DRAIN_TIMEOUT`: 10 minutes (see docs/operations.md, "Graceful drain").
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a stopping server waits for its last webhooks (the `roomClosed` of the rooms
/// the drain closed) before it exits anyway.
pub const WEBHOOK_FLUSH: Duration = Duration::from_secs(20);

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// The first stop signal: start draining.
    BeginDrain,
    /// A stop signal during the drain: stop now.
    StopAtOnce,
    /// Nothing (not a stop signal, or already stopping at once).
    Ignore,
}

/// The stop state of the server.
#[derive(Debug, Default, Clone)]
pub struct Shutdown {
    /// The signal that started the drain.
    draining: Option<i32>,
    /// The signal that asked to stop at once.
    forced: Option<i32>,
}

impl Shutdown {
    /// Records `signal` and says what to do.
    pub fn on_signal(&mut self, signal: i32) -> SignalAction {
        if !STOP_SIGNALS.contains(&signal) || self.forced.is_some() {
            return SignalAction::Ignore;
        }
        if self.draining.is_none() {
            self.draining = Some(signal);
            SignalAction::BeginDrain
        } else {
            self.forced = Some(signal);
            SignalAction::StopAtOnce
        }
    }

    /// Whether a drain was asked for.
    pub fn draining(&self) -> bool {
        self.draining.is_some()
    }

    /// The exit status of a stop at once: 128 + the signal, the shell's convention for a
    /// process ended by a signal (the rooms were not closed, their webhooks not sent).
    pub fn forced_exit_status(&self) -> Option<u8> {
        self.forced
            .map(|s| u8::try_from(128 + s).unwrap_or(u8::MAX))
    }
}

/// A signal's name for the logs.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_drains_second_stops_at_once() {
        let mut s = Shutdown::default();
        assert!(!s.draining());
        assert_eq!(s.on_signal(libc::SIGTERM), SignalAction::BeginDrain);
        assert!(s.draining());
        assert_eq!(s.forced_exit_status(), None);
        assert_eq!(s.on_signal(libc::SIGINT), SignalAction::StopAtOnce);
        assert_eq!(s.forced_exit_status(), Some(130));
        assert_eq!(s.on_signal(libc::SIGTERM), SignalAction::Ignore);
        assert_eq!(s.forced_exit_status(), Some(130));
    }

    #[test]
    fn other_signals_change_nothing() {
        let mut s = Shutdown::default();
        assert_eq!(s.on_signal(libc::SIGHUP), SignalAction::Ignore);
        assert!(!s.draining());
        assert_eq!(s.on_signal(libc::SIGINT), SignalAction::BeginDrain);
        assert_eq!(s.on_signal(libc::SIGTERM), SignalAction::StopAtOnce);
        assert_eq!(s.forced_exit_status(), Some(143));
    }
}
