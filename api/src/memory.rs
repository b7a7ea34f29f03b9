//! Giving freed heap memory back to the operating system after churn.
//!
//! glibc's allocator keeps freed memory inside the heap, so after thousands of sockets
//! open and close the resident size stays at the high-water mark even though the server
//! holds far less. `malloc_trim` releases the free pages; the service calls it at most
//! every [`TRIM_INTERVAL`] and only after sockets have closed.

use std::time::{Duration, Instant};

/// Least time between two trims.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(2);

/// Decides when to trim: after closes, not more often than [`TRIM_INTERVAL`].
#[derive(Debug)]
pub struct HeapTrimmer {
    closed_since: u64,
    last: Instant,
}

impl HeapTrimmer {
    /// A trimmer that has just trimmed.
    pub fn new(now: Instant) -> Self {
        Self {
            closed_since: 0,
            last: now,
        }
    }

    /// A socket (or anything sizable) was freed.
    pub fn note_close(&mut self) {
        self.closed_since += 1;
    }

    /// When a trim is pending: the time it is due.
    pub fn due_at(&self) -> Option<Instant> {
        (self.closed_since > 0).then_some(self.last + TRIM_INTERVAL)
    }

    /// Trims if due; returns whether it did.
    pub fn maybe_trim(&mut self, now: Instant) -> bool {
        if self.due_at().is_some_and(|t| t <= now) {
            trim_heap();
            self.closed_since = 0;
            self.last = now;
            true
        } else {
            false
        }
    }
}

/// Releases free heap pages to the OS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim_heap() {
    // SAFETY: malloc_trim takes no pointers from the caller and has no preconditions; it
    // only walks glibc's own heap under glibc's lock and advises the kernel about free
    // pages, which no live allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Releases free heap pages to the OS (nothing to do outside glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim_heap() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_closes_and_not_too_often() {
        let t0 = Instant::now();
        let mut t = HeapTrimmer::new(t0);
        assert_eq!(t.due_at(), None);
        assert!(!t.maybe_trim(t0 + Duration::from_secs(10)));
        t.note_close();
        assert_eq!(t.due_at(), Some(t0 + TRIM_INTERVAL));
        assert!(!t.maybe_trim(t0 + Duration::from_millis(100)));
        assert!(t.maybe_trim(t0 + TRIM_INTERVAL));
        assert_eq!(t.due_at(), None);
    }
}
