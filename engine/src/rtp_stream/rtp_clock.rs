//! The media clocks an SFU converts between: elapsed time in RTP timestamp ticks (RFC 3550
//! §5.1: a stream's clock runs at its codec's clock rate and wraps at 2^32) and NTP
//! timestamps (RFC 5905 §6: seconds since 1900 in 32.32 fixed point, what sender reports
//! carry, RFC 3550 §6.4.1). Every conversion of the engine goes through these, so they
//! all round the same way.

use std::time::Duration;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// `elapsed` on an RTP clock of `clock_rate` Hz, in whole ticks, modulo 2^32 (RTP
/// timestamps wrap). Exact integer arithmetic: no drift over long streams.
pub fn rtp_ticks(elapsed: Duration, clock_rate: u32) -> u32 {
    let rate = u64::from(clock_rate);
    let whole = elapsed.as_secs().wrapping_mul(rate);
    let frac = u64::from(elapsed.subsec_nanos()) * rate / 1_000_000_000;
    whole.wrapping_add(frac) as u32
}

/// `ntp` (64-bit fixed point seconds, RFC 5905 §6) plus `d`.
pub fn ntp_add(ntp: u64, d: Duration) -> u64 {
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    ntp.wrapping_add(d.as_secs() << 32).wrapping_add(frac)
}

/// The NTP timestamp of a time given as its distance from the Unix epoch.
pub fn ntp_from_unix(since_unix_epoch: Duration) -> u64 {
    ntp_add(NTP_UNIX_OFFSET << 32, since_unix_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_exact_and_wrap() {
        assert_eq!(rtp_ticks(Duration::from_millis(100), 90_000), 9_000);
        assert_eq!(rtp_ticks(Duration::from_millis(20), 48_000), 960);
        assert_eq!(rtp_ticks(Duration::from_nanos(11_111), 90_000), 0);
        assert_eq!(rtp_ticks(Duration::from_nanos(11_112), 90_000), 1);
        // 2^32 ticks at 90 kHz is 47,721.86 s: the count wraps.
        let wrap = Duration::from_secs(47_721) + Duration::from_micros(858_900);
        assert_eq!(rtp_ticks(wrap, 90_000), 5);
    }

    #[test]
    fn ntp_fixed_point() {
        assert_eq!(ntp_add(0, Duration::from_millis(500)), 1 << 31);
        assert_eq!(ntp_add(5 << 32, Duration::from_secs(2)), 7 << 32);
        assert_eq!(ntp_from_unix(Duration::ZERO) >> 32, NTP_UNIX_OFFSET);
    }
}
