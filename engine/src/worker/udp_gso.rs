//! UDP generic segmentation offload (`UDP_SEGMENT`, Linux 4.18+), as an experiment of
//! issue 16's big rooms: a run of datagrams of one size to one destination (the last may
//! be shorter) goes to the kernel as ONE message whose `UDP_SEGMENT` control message
//! tells it the size, and the kernel cuts it into datagrams late in its send path (one
//! route lookup, one pass through the socket layer for the run). Off unless the
//! environment says `KOLABMEET_UDP_GSO=1`; probed once per socket (`getsockopt`), and
//! given up for good on `EIO` (a device that cannot checksum segments), as `quinn-udp`
//! does. `UdpBatch` uses it; this file holds the state, the run finder and the counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Segments per message at most (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Bytes per message at most (a UDP datagram's 64 KiB, less headers and margin).
pub const MAX_BYTES: usize = 60_000;

/// Datagrams sent in runs through GSO, and the runs, by every worker of the process
/// (for the load tools).
static SEGMENTS: AtomicU64 = AtomicU64::new(0);
static RUNS: AtomicU64 = AtomicU64::new(0);

/// (datagrams sent in GSO runs, runs) by every worker of this process so far.
pub fn counts() -> (u64, u64) {
    (
        SEGMENTS.load(Ordering::Relaxed),
        RUNS.load(Ordering::Relaxed),
    )
}

/// Counts a run of `segments` datagrams sent as one message.
pub fn count_run(segments: usize) {
    SEGMENTS.fetch_add(segments as u64, Ordering::Relaxed);
    RUNS.fetch_add(1, Ordering::Relaxed);
}

/// Whether a socket's sends use GSO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gso {
    /// Not asked for (the default).
    Off,
    /// Asked for; the socket is not probed yet.
    Unprobed,
    /// The socket takes `UDP_SEGMENT`.
    On,
    /// Asked for, but the kernel refused it (probe, or `EIO` once).
    Refused,
}

impl Gso {
    /// What the environment asks for (`KOLABMEET_UDP_GSO=1` or `on`).
    pub fn from_env() -> Self {
        match std::env::var("KOLABMEET_UDP_GSO").as_deref() {
            Ok("1") | Ok("on") | Ok("true") => Gso::Unprobed,
            _ => Gso::Off,
        }
    }

    /// Whether runs are to be looked for.
    pub fn wanted(self) -> bool {
        matches!(self, Gso::Unprobed | Gso::On)
    }
}

/// Where the run that starts at `order[k]` ends (exclusive): the following datagrams in
/// `order` to the same destination with the same length, the last one possibly shorter,
/// within [`MAX_SEGMENTS`] and [`MAX_BYTES`].
pub fn run_end<D: AsRef<[u8]>>(datagrams: &[(SocketAddr, D)], order: &[u32], k: usize) -> usize {
    let (to, first) = &datagrams[order[k] as usize];
    let size = first.as_ref().len();
    let mut total = size;
    let mut end = k + 1;
    while end < order.len() && end - k < MAX_SEGMENTS {
        let (t, d) = &datagrams[order[end] as usize];
        let len = d.as_ref().len();
        if t != to || len > size || len == 0 || total + len > MAX_BYTES {
            break;
        }
        total += len;
        end += 1;
        if len < size {
            break;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_one_destination_one_size_the_last_maybe_shorter() {
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let d = |to, n: usize| (to, vec![0u8; n]);
        let datagrams = vec![
            d(a, 100),
            d(a, 100),
            d(a, 60),
            d(a, 100),
            d(b, 100),
            d(b, 200),
        ];
        let order: Vec<u32> = (0..datagrams.len() as u32).collect();
        assert_eq!(
            run_end(&datagrams, &order, 0),
            3,
            "two of 100, then a shorter last"
        );
        assert_eq!(
            run_end(&datagrams, &order, 3),
            4,
            "another destination ends it"
        );
        assert_eq!(run_end(&datagrams, &order, 4), 5, "a longer one ends it");
        let many = vec![d(a, 1000); 100];
        let order: Vec<u32> = (0..100).collect();
        assert_eq!(run_end(&many, &order, 0), 60, "at most MAX_BYTES");
    }
}
