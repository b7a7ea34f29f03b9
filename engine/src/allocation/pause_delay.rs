//! How long a video consumer that no longer fits keeps its lowest layer before it is
//! paused (issue 18 §3, the soak's freezes at rejoins). Pausing is the costliest step
//! down: the consumer's picture stops, and its return needs a key frame, which the
//! producer's key frame request delay (3 s in the Kolab client) can hold back. A new
//! receiver's estimate swings for its first seconds (three Chromiums on two cores: 513 to
//! 611 kbit/s every few hundred milliseconds), and its webcam consumers were paused and
//! resumed within 31-830 ms, the resumed one then frozen 2.8 s waiting for its key frame
//! (2026-12-07). A consumer that had a layer is paused only once it has not fitted for
//! [`PAUSE_AFTER`] on end; meanwhile it overshoots with its lowest layer.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A shortfall this long pauses a video that had a layer.
pub const PAUSE_AFTER: Duration = Duration::from_secs(2);

/// Since when each consumer's lowest layer has not fitted.
#[derive(Debug)]
pub struct PauseDelay<K> {
    short_since: HashMap<K, Instant>,
}

impl<K> Default for PauseDelay<K> {
    fn default() -> Self {
        Self {
            short_since: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> PauseDelay<K> {
    /// `key`'s lowest layer does not fit at `now`: whether it may keep it a while longer
    /// (`had_layer`: it was not paused already).
    pub fn keep(&mut self, now: Instant, key: K, had_layer: bool) -> bool {
        if !had_layer {
            self.short_since.remove(&key);
            return false;
        }
        let since = *self.short_since.entry(key).or_insert(now);
        now.saturating_duration_since(since) < PAUSE_AFTER
    }

    /// `key`'s lowest layer fits (or it is not a video): the shortfall, if any, is over.
    pub fn fits(&mut self, key: &K) {
        // Called for every video at every allocation: no hashing while nothing is short.
        if !self.short_since.is_empty() {
            self.short_since.remove(key);
        }
    }

    /// A consumer that closed.
    pub fn forget(&mut self, key: &K) {
        self.short_since.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortfall_pauses_only_once_it_lasts() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = PauseDelay::default();
        assert!(p.keep(t0, 1, true));
        assert!(p.keep(t0 + ms(1999), 1, true));
        assert!(!p.keep(t0 + ms(2000), 1, true));
        // Paused: it stays paused while short, and a new shortfall starts afresh.
        assert!(!p.keep(t0 + ms(2100), 1, false));
        assert!(p.keep(t0 + ms(2200), 1, true));
        // A moment of fitting ends the shortfall.
        p.fits(&1);
        assert!(p.keep(t0 + ms(5000), 1, true));
        assert!(p.keep(t0 + ms(6999), 1, true));
        p.forget(&1);
        assert!(p.keep(t0 + ms(9000), 1, true));
        // Never paused before: nothing to keep.
        assert!(!p.keep(t0, 2, false));
    }
}
