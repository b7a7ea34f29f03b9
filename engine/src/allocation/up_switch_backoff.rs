//! How long a consumer waits before trying a spatial layer again after a down-switch for
//! bandwidth (issue 17, "an up-switch that had to be undone holds back the next one for
//! longer each time"). A token-bucket shaper (cable, DSL, Wi-Fi; `tc tbf burst`) lets a
//! short probe and the first moments of a higher layer through at full speed; only then
//! does the queue build and the delay detector undo the switch. With one fixed hold the
//! consumer tried again every 10-15 s, forever (7-11 switches a minute in the virtual-time
//! test with 15 and 30 KB buckets). An up-switch undone within [`UNDONE_WITHIN`] doubles
//! the next hold, up to [`MAX_HOLD`]; a down-switch after a layer held longer than that
//! (the link changed) starts again from the base hold.
//!
//! It also says how long a consumer's next trial lasts (see `layer_allocator`): a
//! consumer set back lately (moved down for bandwidth, or a trial failed) is on a link
//! that may hide its rate behind a bucket, and its trials last [`LONG_TRIAL`]: with 2 s, a
//! 30 KB bucket in front of a 450 kbit/s link let one trial in a minute pass (Chromium,
//! 2026-12-07), which the switch then overran.

use std::time::{Duration, Instant};

/// A down-switch this soon after the up-switch undoes it.
pub const UNDONE_WITHIN: Duration = Duration::from_secs(15);
/// The longest hold.
pub const MAX_HOLD: Duration = Duration::from_secs(120);
/// A trial after a setback this recent lasts [`LONG_TRIAL`].
pub const SETBACK_MEMORY: Duration = Duration::from_secs(120);
/// How long such a trial lasts.
pub const LONG_TRIAL: Duration = Duration::from_secs(4);

/// One consumer's up-switch history.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpSwitchBackoff {
    last_up: Option<Instant>,
    undone: u32,
    last_setback: Option<Instant>,
}

impl UpSwitchBackoff {
    /// The consumer moved up a spatial layer at `now`.
    pub fn on_up(&mut self, now: Instant) {
        self.last_up = Some(now);
    }

    /// The consumer moved down a spatial layer for bandwidth at `now`: how long to hold
    /// the next up-switch back (`base`, doubled for every up-switch in a row that was
    /// undone within [`UNDONE_WITHIN`]).
    pub fn on_down(&mut self, now: Instant, base: Duration) -> Duration {
        self.last_setback = Some(now);
        let undone = self
            .last_up
            .take()
            .is_some_and(|up| now.saturating_duration_since(up) < UNDONE_WITHIN);
        self.undone = if undone { self.undone + 1 } else { 0 };
        base.saturating_mul(1 << self.undone.min(8))
            .min(MAX_HOLD.max(base))
    }

    /// A trial failed at `now` (the link could not carry it).
    pub fn on_failed_trial(&mut self, now: Instant) {
        self.last_setback = Some(now);
    }

    /// How long the next trial lasts: `base`, or [`LONG_TRIAL`] after a setback within
    /// [`SETBACK_MEMORY`].
    pub fn trial_length(&self, now: Instant, base: Duration) -> Duration {
        match self.last_setback {
            Some(t) if now.saturating_duration_since(t) < SETBACK_MEMORY => LONG_TRIAL.max(base),
            _ => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(10);

    #[test]
    fn undone_up_switches_double_the_hold_and_a_lasting_one_resets_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = UpSwitchBackoff::default();
        // A first down-switch (the link was cut): the base hold.
        assert_eq!(b.on_down(t0, BASE), s(10));
        // Up, undone 2 s later, three times: 20, 40, 80 s.
        for (k, hold) in [(1, 20), (2, 40), (3, 80)] {
            b.on_up(t0 + s(100 * k));
            assert_eq!(b.on_down(t0 + s(100 * k + 2), BASE), s(hold));
        }
        // Capped.
        for k in 4..8 {
            b.on_up(t0 + s(100 * k));
            assert!(b.on_down(t0 + s(100 * k + 2), BASE) <= MAX_HOLD);
        }
        // An up-switch that held a minute: the next down-switch is the link's, base hold.
        b.on_up(t0 + s(1000));
        assert_eq!(b.on_down(t0 + s(1060), BASE), s(10));
        // Trials after a setback last longer, for two minutes.
        assert_eq!(b.trial_length(t0 + s(1061), s(2)), LONG_TRIAL);
        assert_eq!(b.trial_length(t0 + s(1200), s(2)), s(2));
        b.on_failed_trial(t0 + s(1300));
        assert_eq!(b.trial_length(t0 + s(1301), s(2)), LONG_TRIAL);
        assert_eq!(UpSwitchBackoff::default().trial_length(t0, s(2)), s(2));
    }
}
