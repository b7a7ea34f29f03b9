//! Coalescing and retransmission of key-frame requests towards a producer, after
//! mediasoup's `RTC::KeyFrameRequestManager` (with `PendingKeyFrameInfo` and
//! `KeyFrameRequestDelayer`).
//!
//! Consumers ask for a key frame of one of the producer's streams (by SSRC) when they
//! start, switch layers or receive a PLI/FIR (RFC 4585 §6.3.1, RFC 5104 §4.3.1). The
//! producer-side manager decides when a PLI/FIR really goes to the sender:
//!
//! * **Pending**: after a request is sent, further requests wait for the key frame. If
//!   none arrives within [`KEY_FRAME_RETRANSMISSION_WAIT`] (1 s) the request is sent
//!   once more, best effort in case the PLI was lost; mediasoup's `retryOnTimeout` is
//!   set on creation and again by every request coalesced into the pending one.
//! * **Delay** (`keyFrameRequestDelay`, the Kolab client uses 3000 ms, 0 disables): the
//!   first request opens a window; requests during it are coalesced, and at its end one
//!   more request is made if any came in.
//!
//! Tracked SSRCs are bounded by [`MAX_SSRCS`]; a request for another SSRC while the
//! table is full of active entries is refused (not sent).

use std::time::{Duration, Instant};

/// Wait for a key frame before re-requesting (mediasoup `KeyFrameRetransmissionWaitTime`).
pub const KEY_FRAME_RETRANSMISSION_WAIT: Duration = Duration::from_millis(1000);
/// Most SSRCs tracked at once.
pub const MAX_SSRCS: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Pending {
    deadline: Instant,
    retry_on_timeout: bool,
}

#[derive(Debug, Clone, Copy)]
struct Delayer {
    until: Instant,
    requested: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ssrc: u32,
    pending: Option<Pending>,
    delayer: Option<Delayer>,
}

/// Key-frame request state of one producer; see the module docs.
#[derive(Debug, Clone)]
pub struct KeyFrameRequestManager {
    delay: Duration,
    entries: Vec<Entry>,
}

impl KeyFrameRequestManager {
    /// A manager with mediasoup's `keyFrameRequestDelay` (zero: no delay).
    pub fn new(key_frame_request_delay: Duration) -> Self {
        Self {
            delay: key_frame_request_delay,
            entries: Vec::new(),
        }
    }

    /// A consumer needs a key frame of `ssrc` (mediasoup `KeyFrameNeeded`). Returns
    /// whether to send a PLI/FIR to the producer now.
    pub fn request(&mut self, now: Instant, ssrc: u32) -> bool {
        match self.entry_index(ssrc) {
            Some(i) => self.needed(i, now),
            None => false,
        }
    }

    /// Requests a key frame regardless of pending requests and delay, restarting both
    /// (mediasoup `ForceKeyFrameNeeded`). Returns whether to send a PLI/FIR now (false
    /// only when the SSRC table is full).
    pub fn force_request(&mut self, now: Instant, ssrc: u32) -> bool {
        let Some(i) = self.entry_index(ssrc) else {
            return false;
        };
        let delay = self.delay;
        let Some(entry) = self.entries.get_mut(i) else {
            return false;
        };
        if !delay.is_zero() {
            entry.delayer = Some(Delayer {
                until: later(now, delay),
                requested: false,
            });
        }
        entry.pending = Some(Pending {
            deadline: later(now, KEY_FRAME_RETRANSMISSION_WAIT),
            retry_on_timeout: true,
        });
        true
    }

    /// A key frame of `ssrc` arrived from the producer: nothing is pending any more.
    pub fn key_frame_received(&mut self, ssrc: u32) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.ssrc == ssrc) {
            entry.pending = None;
        }
        self.entries
            .retain(|e| e.pending.is_some() || e.delayer.is_some());
    }

    /// When [`Self::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|e| [e.pending.map(|p| p.deadline), e.delayer.map(|d| d.until)])
            .flatten()
            .min()
    }

    /// Runs expired timers; returns the SSRCs to send a PLI/FIR for now (each once).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        for i in 0..self.entries.len() {
            let Some(entry) = self.entries.get_mut(i) else {
                break;
            };
            let ssrc = entry.ssrc;
            if let Some(pending) = entry.pending.as_mut()
                && now >= pending.deadline
            {
                if pending.retry_on_timeout {
                    pending.retry_on_timeout = false;
                    pending.deadline = later(now, KEY_FRAME_RETRANSMISSION_WAIT);
                    out.push(ssrc);
                } else {
                    entry.pending = None;
                }
            }
            if let Some(delayer) = entry.delayer
                && now >= delayer.until
            {
                entry.delayer = None;
                if delayer.requested && self.needed(i, now) && !out.contains(&ssrc) {
                    out.push(ssrc);
                }
            }
        }
        self.entries
            .retain(|e| e.pending.is_some() || e.delayer.is_some());
        out
    }

    /// Forgets all state.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of SSRCs with a pending request or an open delay window.
    pub fn active_ssrcs(&self) -> usize {
        self.entries.len()
    }

    fn entry_index(&mut self, ssrc: u32) -> Option<usize> {
        if let Some(i) = self.entries.iter().position(|e| e.ssrc == ssrc) {
            return Some(i);
        }
        if self.entries.len() >= MAX_SSRCS {
            return None;
        }
        self.entries.push(Entry {
            ssrc,
            pending: None,
            delayer: None,
        });
        Some(self.entries.len() - 1)
    }

    /// mediasoup `KeyFrameNeeded` on an existing entry.
    fn needed(&mut self, i: usize, now: Instant) -> bool {
        let delay = self.delay;
        let Some(entry) = self.entries.get_mut(i) else {
            return false;
        };
        if !delay.is_zero() {
            match entry.delayer.as_mut() {
                Some(d) if now < d.until => {
                    d.requested = true;
                    return false;
                }
                _ => {
                    entry.delayer = Some(Delayer {
                        until: later(now, delay),
                        requested: false,
                    });
                }
            }
        }
        if let Some(pending) = entry.pending.as_mut() {
            pending.retry_on_timeout = true;
            return false;
        }
        entry.pending = Some(Pending {
            deadline: later(now, KEY_FRAME_RETRANSMISSION_WAIT),
            retry_on_timeout: true,
        });
        true
    }
}

fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_delay_coalesces_while_pending() {
        let t0 = Instant::now();
        let mut m = KeyFrameRequestManager::new(Duration::ZERO);
        assert!(m.request(t0, 1));
        assert!(!m.request(t0 + ms(10), 1));
        assert!(m.request(t0 + ms(10), 2));
        m.key_frame_received(1);
        m.key_frame_received(2);
        assert_eq!(m.active_ssrcs(), 0);
        assert_eq!(m.poll_timeout(), None);
        assert!(m.request(t0 + ms(20), 1));
    }

    #[test]
    fn retransmits_once_when_no_key_frame_arrives() {
        let t0 = Instant::now();
        let mut m = KeyFrameRequestManager::new(Duration::ZERO);
        assert!(m.request(t0, 7));
        assert_eq!(m.poll_timeout(), Some(t0 + ms(1000)));
        assert!(m.handle_timeout(t0 + ms(999)).is_empty());
        assert_eq!(m.handle_timeout(t0 + ms(1000)), vec![7]);
        // Not retried again unless asked.
        assert!(m.handle_timeout(t0 + ms(2000)).is_empty());
        assert_eq!(m.active_ssrcs(), 0);
        // A request coalesced into the pending one re-arms the retry.
        assert!(m.request(t0 + ms(3000), 7));
        assert_eq!(m.handle_timeout(t0 + ms(4000)), vec![7]);
        assert!(!m.request(t0 + ms(4100), 7));
        assert_eq!(m.handle_timeout(t0 + ms(5000)), vec![7]);
        m.key_frame_received(7);
        assert!(m.handle_timeout(t0 + ms(6000)).is_empty());
    }

    #[test]
    fn delay_window_coalesces_and_sends_one_at_its_end() {
        let t0 = Instant::now();
        let mut m = KeyFrameRequestManager::new(ms(3000));
        assert!(m.request(t0, 5));
        m.key_frame_received(5);
        for i in 1..10 {
            assert!(!m.request(t0 + ms(100 * i), 5));
        }
        assert_eq!(m.poll_timeout(), Some(t0 + ms(3000)));
        assert_eq!(m.handle_timeout(t0 + ms(3000)), vec![5]);
        // That request opened a new window.
        assert!(!m.request(t0 + ms(3100), 5));
        m.key_frame_received(5);
        assert_eq!(m.handle_timeout(t0 + ms(6000)), vec![5]);
    }

    #[test]
    fn delay_window_without_requests_sends_nothing() {
        let t0 = Instant::now();
        let mut m = KeyFrameRequestManager::new(ms(3000));
        assert!(m.request(t0, 5));
        m.key_frame_received(5);
        assert!(m.handle_timeout(t0 + ms(3000)).is_empty());
        assert_eq!(m.active_ssrcs(), 0);
        assert!(m.request(t0 + ms(3001), 5));
    }

    #[test]
    fn pending_retry_and_delay_end_together_send_once() {
        let t0 = Instant::now();
        let mut m = KeyFrameRequestManager::new(ms(1000));
        assert!(m.request(t0, 9));
        assert!(!m.request(t0 + ms(500), 9));
        assert_eq!(m.handle_timeout(t0 + ms(1000)), vec![9]);
    }

    #[test]
    fn force_request_always_sends() {
        let t0 = Instant::now();
        let mut m = KeyFrameRequestManager::new(ms(3000));
        assert!(m.request(t0, 3));
        assert!(m.force_request(t0 + ms(10), 3));
        assert!(!m.request(t0 + ms(20), 3));
        assert_eq!(m.poll_timeout(), Some(t0 + ms(1010)));
    }

    #[test]
    fn ssrc_table_is_bounded() {
        let t0 = Instant::now();
        let mut m = KeyFrameRequestManager::new(ms(3000));
        for ssrc in 0..MAX_SSRCS as u32 {
            assert!(m.request(t0, ssrc));
        }
        assert!(!m.request(t0, 1000));
        assert!(!m.force_request(t0, 1000));
        assert_eq!(m.active_ssrcs(), MAX_SSRCS);
        let _ = m.handle_timeout(t0 + ms(1000));
        m.key_frame_received(0);
        let _ = m.handle_timeout(t0 + ms(5000));
        assert_eq!(m.active_ssrcs(), 0);
        assert!(m.request(t0 + ms(5000), 1000));
        m.clear();
        assert_eq!(m.poll_timeout(), None);
    }
}
