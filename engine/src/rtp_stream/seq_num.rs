//! Serial-number arithmetic for RTP sequence numbers (16 bits) and RTP timestamps
//! (32 bits), and "unwrappers" that extend them to 64 bits.
//!
//! RTP sequence numbers and timestamps wrap around (RFC 3550 §5.1, §A.1); ordering them
//! uses serial-number arithmetic (RFC 1982 §3.2): `a` is newer than `b` when the forward
//! distance from `b` to `a` is non-zero and less than half the number space. At exactly
//! half the space RFC 1982 leaves the comparison undefined; here neither is newer.
//!
//! mediasoup's `SeqManager<T>::IsSeqHigherThan` is the same test (it differs only at the
//! undefined half-way point, where it is asymmetric).

/// Whether sequence number `a` is newer than `b` (RFC 1982 serial arithmetic, 16 bits).
pub fn seq_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000
}

/// Whether sequence number `a` is older than `b`; `seq_older(a, b) == seq_newer(b, a)`.
pub fn seq_older(a: u16, b: u16) -> bool {
    seq_newer(b, a)
}

/// Signed distance `a - b` of two sequence numbers, in `-32768..=32767`.
pub fn seq_delta(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

/// Whether RTP timestamp `a` is newer than `b` (RFC 1982 serial arithmetic, 32 bits).
pub fn ts_newer(a: u32, b: u32) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < 0x8000_0000
}

/// Shared logic of the unwrappers: `BITS`-wide values extended to `u64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Unwrapper<const BITS: u32> {
    max: Option<u64>,
}

impl<const BITS: u32> Unwrapper<BITS> {
    const CYCLE: u64 = 1 << BITS;
    const HALF: u64 = 1 << (BITS - 1);

    fn peek(&self, v: u64) -> u64 {
        let v = v & (Self::CYCLE - 1);
        match self.max {
            // Start one cycle up so a value reordered across the initial wrap still gets a
            // distinct, smaller, non-negative extension.
            None => Self::CYCLE + v,
            Some(max) => {
                let forward = v.wrapping_sub(max) & (Self::CYCLE - 1);
                if forward < Self::HALF {
                    max.saturating_add(forward)
                } else {
                    max.saturating_sub(Self::CYCLE - forward)
                }
            }
        }
    }

    fn unwrap(&mut self, v: u64) -> u64 {
        let ext = self.peek(v);
        if self.max.is_none_or(|m| ext > m) {
            self.max = Some(ext);
        }
        ext
    }
}

/// Extends 16-bit RTP sequence numbers to a monotonic `u64` space.
///
/// Each value is placed nearest the highest value seen so far (within half the space,
/// RFC 1982), so wraparound and reordering of up to 32767 packets are handled. The first
/// value `v` maps to `65536 + v`; only differences and order of extended values matter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqUnwrapper(Unwrapper<16>);

impl SeqUnwrapper {
    /// A fresh unwrapper with no reference value.
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `seq` and, when it is the newest so far, makes it the reference.
    pub fn unwrap(&mut self, seq: u16) -> u64 {
        self.0.unwrap(u64::from(seq))
    }

    /// Extends `seq` without changing the reference.
    pub fn peek(&self, seq: u16) -> u64 {
        self.0.peek(u64::from(seq))
    }

    /// The highest extended value produced by [`Self::unwrap`] so far.
    pub fn max(&self) -> Option<u64> {
        self.0.max
    }

    /// Forgets the reference (e.g. on a new SSRC).
    pub fn reset(&mut self) {
        self.0.max = None;
    }
}

/// Extends 32-bit RTP timestamps to a monotonic `u64` space; see [`SeqUnwrapper`].
/// The first value `v` maps to `2^32 + v`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimestampUnwrapper(Unwrapper<32>);

impl TimestampUnwrapper {
    /// A fresh unwrapper with no reference value.
    pub fn new() -> Self {
        Self::default()
    }

    /// Extends `ts` and, when it is the newest so far, makes it the reference.
    pub fn unwrap(&mut self, ts: u32) -> u64 {
        self.0.unwrap(u64::from(ts))
    }

    /// Extends `ts` without changing the reference.
    pub fn peek(&self, ts: u32) -> u64 {
        self.0.peek(u64::from(ts))
    }

    /// The highest extended value produced by [`Self::unwrap`] so far.
    pub fn max(&self) -> Option<u64> {
        self.0.max
    }

    /// Forgets the reference.
    pub fn reset(&mut self) {
        self.0.max = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_comparison() {
        assert!(seq_newer(1, 0));
        assert!(!seq_newer(0, 1));
        assert!(!seq_newer(5, 5));
        assert!(seq_newer(0, 65535));
        assert!(seq_newer(10, 65530));
        assert!(seq_older(65530, 10));
        assert!(seq_newer(0x7FFF, 0));
        // Exactly half the space: undefined, neither is newer.
        assert!(!seq_newer(0x8000, 0));
        assert!(!seq_newer(0, 0x8000));
        assert_eq!(seq_delta(2, 65534), 4);
        assert_eq!(seq_delta(65534, 2), -4);
        assert!(ts_newer(5, u32::MAX - 5));
        assert!(!ts_newer(u32::MAX - 5, 5));
        assert!(!ts_newer(0x8000_0000, 0));
    }

    #[test]
    fn seq_unwrap_wraps_forward() {
        let mut u = SeqUnwrapper::new();
        let a = u.unwrap(65534);
        assert_eq!(u.unwrap(65535), a + 1);
        assert_eq!(u.unwrap(0), a + 2);
        assert_eq!(u.unwrap(1), a + 3);
        assert_eq!(u.max(), Some(a + 3));
    }

    #[test]
    fn seq_unwrap_reordered_and_duplicates() {
        let mut u = SeqUnwrapper::new();
        let a = u.unwrap(2);
        // Reordered across the initial wrap: still distinct and smaller.
        assert_eq!(u.unwrap(65535), a - 3);
        assert_eq!(u.unwrap(0), a - 2);
        assert_eq!(u.max(), Some(a));
        assert_eq!(u.unwrap(2), a);
        assert_eq!(u.unwrap(3), a + 1);
        assert_eq!(u.peek(1), a - 1);
    }

    #[test]
    fn seq_unwrap_large_jumps() {
        let mut u = SeqUnwrapper::new();
        let mut last = u.unwrap(0);
        let mut seq = 0u16;
        for _ in 0..10 {
            seq = seq.wrapping_add(0x7FFF);
            let e = u.unwrap(seq);
            assert_eq!(e, last + 0x7FFF);
            last = e;
        }
        // Exactly half behind is treated as older.
        assert_eq!(u.peek(seq.wrapping_add(0x8000)), last - 0x8000);
        u.reset();
        assert_eq!(u.max(), None);
        assert_eq!(u.unwrap(7), 65536 + 7);
    }

    #[test]
    fn timestamp_unwrap_wraps() {
        let mut u = TimestampUnwrapper::new();
        let a = u.unwrap(u32::MAX - 1000);
        assert_eq!(u.unwrap(2000), a + 3001);
        assert_eq!(u.unwrap(u32::MAX), a + 1000);
        assert_eq!(u.max(), Some(a + 3001));
        assert_eq!(u.peek(3000), a + 4001);
    }
}
