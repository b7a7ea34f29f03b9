//! The media clocks an SFU converts between: elapsed time in RTP timestamp ticks (RFC 3550
//! §5.1: a stream's clock runs at its codec's clock rate and wraps at 2^32), NTP
//! timestamps (RFC 5905 §6: seconds since 1900 in 32.32 fixed point, what sender reports
//! carry, RFC 3550 §6.4.1) and abs-send-time (6.18 fixed-point seconds, 24 bits,
//! `http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time`). Every conversion of the
//! engine goes through these, so they all round the same way; [`MediaClock`] holds the
//! worker's time bases, set from outside (no clock is read here).

use std::time::{Duration, Instant};

/// Which NTP/RTP mapping the sender reports of consumers carry (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SenderReportClock {
    /// The producer's own mapping (its sender's capture clock) carried forward: receivers
    /// sync audio and video by when they were captured. The default.
    #[default]
    Capture,
    /// The worker's wall clock against the last timestamp forwarded, moved on by the time
    /// since (mediasoup's `RtpStreamSend::GetRtcpSenderReport`): receivers sync by when
    /// the server forwarded each stream, which hides the sender's differences between
    /// its audio and video paths. Kept for side-by-side measurements (issue 15).
    Forwarding,
}

/// A worker's time bases: the wall clock at one instant (for NTP timestamps) and the
/// epoch of abs-send-time (the first packet sent), and the mapping sender reports carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct MediaClock {
    wall: Option<(Instant, Duration)>,
    epoch: Option<Instant>,
    /// What consumers' sender reports map.
    pub sender_reports: SenderReportClock,
}

impl MediaClock {
    /// The wall clock (time since the Unix epoch) at `now`; without it NTP time starts at
    /// the Unix epoch.
    pub fn set_wall_clock(&mut self, now: Instant, since_unix_epoch: Duration) {
        self.wall = Some((now, since_unix_epoch));
    }

    /// The NTP timestamp of `now`.
    pub fn ntp(&self, now: Instant) -> u64 {
        let (at, unix) = self.wall.unwrap_or((now, Duration::ZERO));
        let unix = if now >= at {
            unix + (now - at)
        } else {
            unix.saturating_sub(at - now)
        };
        ntp_from_unix(unix)
    }

    /// abs-send-time at `now`: 6.18 fixed-point seconds since the first call, 24 bits.
    pub fn abs_send_time(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        let d = now.saturating_duration_since(epoch);
        let fixed = (d.as_secs() << 18) + ((u64::from(d.subsec_nanos()) << 18) / 1_000_000_000);
        (fixed & 0x00ff_ffff) as u32
    }
}

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

    #[test]
    fn media_clock_bases() {
        let t0 = Instant::now();
        let mut c = MediaClock::default();
        assert_eq!(c.ntp(t0) >> 32, NTP_UNIX_OFFSET);
        c.set_wall_clock(t0, Duration::from_secs(100));
        assert_eq!(
            c.ntp(t0 + Duration::from_secs(1)) >> 32,
            NTP_UNIX_OFFSET + 101
        );
        assert_eq!(c.abs_send_time(t0 + Duration::from_secs(3)), 0);
        assert_eq!(c.abs_send_time(t0 + Duration::from_millis(3500)), 1 << 17);
    }
}
