//! Overload shed by layer (issue 16): when a worker falls behind, its consumers are
//! moved to lower layers by the allocation that handles bandwidth, instead of its
//! packets queueing and then dropping at random; they climb back when the load falls.
//!
//! The driver tells this state machine, every [`LoadShed::WINDOW`], how much CPU its thread
//! used (its running total) and whether its socket still held datagrams after a quarter of
//! its rounds (a backlog). A window in which the thread was on a CPU more than
//! [`LoadShed::HIGH`] of the time raises the level by one (at most [`MAX_LEVEL`]), or to
//! [`MAX_LEVEL`] at once when its socket also kept a backlog; so does a backlog while it
//! was on a CPU more than [`LoadShed::LOW`] of the time (a backlog
//! of a thread that other processes kept off the CPU is not this worker's to shed);
//! [`LoadShed::CALM`] windows in a row under [`LoadShed::LOW`] lower it by one. What each level caps is in
//! [`shed_cap`]. Time is a parameter: no clock is read here.

use std::time::{Duration, Instant};

use super::layer_allocator::Priority;

/// The highest shed level.
pub const MAX_LEVEL: u8 = 3;

/// The shed level of a worker; see the module documentation.
#[derive(Debug, Clone)]
pub struct LoadShed {
    level: u8,
    calm: u32,
    last: Option<(Instant, Duration)>,
}

impl Default for LoadShed {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadShed {
    /// How often the load is looked at.
    pub const WINDOW: Duration = Duration::from_millis(500);
    /// Busier than this: overloaded.
    pub const HIGH: f64 = 0.9;
    /// Under this: calm.
    pub const LOW: f64 = 0.6;
    /// Calm windows in a row before the level goes down one (2 s: from the top level
    /// back to none in 6 s).
    pub const CALM: u32 = 4;

    /// No shedding.
    pub fn new() -> Self {
        LoadShed {
            level: 0,
            calm: 0,
            last: None,
        }
    }

    /// The current level (0: nothing shed).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The worker's thread had used `busy` of CPU in all at `now` (its running total)
    /// and its socket held a backlog after a quarter of the window's rounds (`backlog`).
    /// Returns the new level when it changed.
    pub fn observe(&mut self, now: Instant, busy: Duration, backlog: bool) -> Option<u8> {
        let Some((then, busy_then)) = self.last else {
            self.last = Some((now, busy));
            return None;
        };
        let window = now.saturating_duration_since(then);
        if window < Self::WINDOW {
            return None;
        }
        self.last = Some((now, busy));
        let ratio = busy.saturating_sub(busy_then).as_secs_f64() / window.as_secs_f64();
        let before = self.level;
        if ratio > Self::HIGH && backlog {
            // Saturated and already behind: every window spent climbing a step at a time
            // deepens the backlog, and a worker whose socket overflows asks for what it
            // dropped and gets asked for what it never forwarded (the overload runs fell
            // into that in about half the starts). All the way at once.
            self.calm = 0;
            self.level = MAX_LEVEL;
        } else if ratio > Self::HIGH || (backlog && ratio >= Self::LOW) {
            self.calm = 0;
            self.level = (self.level + 1).min(MAX_LEVEL);
        } else if ratio < Self::LOW {
            self.calm += 1;
            if self.calm >= Self::CALM {
                self.calm = 0;
                self.level = self.level.saturating_sub(1);
            }
        } else {
            self.calm = 0;
        }
        (self.level != before).then_some(self.level)
    }
}

/// The highest spatial and temporal layer a consumer of `priority` may forward at shed
/// `level` (`None`: no cap). Top layers go first, screen shares before webcams, audio
/// never: level 1 takes screen shares one spatial layer down; level 2 takes screen
/// shares two and webcams one down; level 3 leaves every video its lowest spatial layer
/// and webcams their base temporal layer. A video is never paused for load.
pub fn shed_cap(
    level: u8,
    priority: Priority,
    top_spatial: u8,
    top_temporal: u8,
) -> Option<(u8, u8)> {
    let (down, temporal) = match (priority, level) {
        (Priority::Audio, _) | (_, 0) => return None,
        (Priority::Screen, 1) => (1, top_temporal),
        (Priority::Screen, 2) => (2, top_temporal),
        (Priority::Webcam, 1) => return None,
        (Priority::Webcam, 2) => (1, top_temporal),
        (Priority::Screen, _) => (u8::MAX, top_temporal),
        (Priority::Webcam, _) => (u8::MAX, 0),
    };
    Some((top_spatial.saturating_sub(down), temporal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_windows_raise_the_level_and_calm_ones_bring_it_back() {
        let t0 = Instant::now();
        let mut s = LoadShed::new();
        let ms = Duration::from_millis;
        assert_eq!(s.observe(t0, ms(0), false), None);
        // 95% busy: up one per window, to the top.
        assert_eq!(s.observe(t0 + ms(500), ms(475), false), Some(1));
        assert_eq!(s.observe(t0 + ms(1000), ms(950), false), Some(2));
        assert_eq!(s.observe(t0 + ms(1500), ms(1425), false), Some(3));
        assert_eq!(
            s.observe(t0 + ms(2000), ms(1900), false),
            None,
            "at the top"
        );
        // 70%: held; a backlog raises it even when not busy.
        let mut busy = ms(1900);
        let mut t = t0 + ms(2000);
        for _ in 0..10 {
            t += ms(500);
            busy += ms(350);
            assert_eq!(s.observe(t, busy, false), None);
        }
        // 20%: down one every 4 windows (2 s): from 3 to 0 in 6 s.
        let mut changes = Vec::new();
        for _ in 0..12 {
            t += ms(500);
            busy += ms(100);
            if let Some(l) = s.observe(t, busy, false) {
                changes.push(l);
            }
        }
        assert_eq!(changes, vec![2, 1, 0]);
        t += ms(500);
        assert_eq!(
            s.observe(t, busy, true),
            None,
            "a backlog of an idle thread"
        );
        t += ms(500);
        busy += ms(350);
        assert_eq!(
            s.observe(t, busy, true),
            Some(1),
            "a backlog of a working thread"
        );
        // A window shorter than WINDOW is not judged.
        assert_eq!(s.observe(t + ms(100), busy + ms(100), false), None);
        // Saturated with a backlog: straight to the top.
        t += ms(500);
        busy += ms(480);
        assert_eq!(s.observe(t, busy, true), Some(MAX_LEVEL));
    }

    #[test]
    fn screens_go_first_audio_never_and_no_video_is_paused() {
        let cap = |l, p| shed_cap(l, p, 2, 2);
        assert_eq!(cap(0, Priority::Webcam), None);
        assert_eq!(cap(3, Priority::Audio), None);
        assert_eq!(cap(1, Priority::Screen), Some((1, 2)));
        assert_eq!(cap(1, Priority::Webcam), None);
        assert_eq!(cap(2, Priority::Screen), Some((0, 2)));
        assert_eq!(cap(2, Priority::Webcam), Some((1, 2)));
        assert_eq!(cap(3, Priority::Webcam), Some((0, 0)));
        assert_eq!(cap(3, Priority::Screen), Some((0, 2)));
    }
}
