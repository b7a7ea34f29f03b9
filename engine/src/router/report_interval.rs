//! When a room's rounds of RTCP reports go out (RFC 3550 §6.2, §6.3.1): about every
//! [`REPORT_INTERVAL`], each interval drawn anew (see [`ReportInterval`]).

use std::time::Duration;

use crate::ids::RoomId;

/// How often reports go out. RFC 3550 §6.2 scales the interval with the session; at
/// WebRTC rates the 5 % RTCP share allows far more, and mediasoup reports video streams
/// every second (at most), which keeps receivers' RTT and lip sync fresh.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The intervals between a room's rounds of reports: [`REPORT_INTERVAL`] times a factor
/// drawn in [0.5, 1.5) each time (RFC 3550 §6.3.1; mediasoup does the same). Rooms whose
/// media started within the same timer tick would otherwise report in the same loop
/// round every second for as long as they last: with tens of meetings on a worker, a
/// stall of 11-16 ms once a second (issue 15's density benchmark). Seeded from the room's
/// id, so that runs are repeatable; no security rests on it.
#[derive(Debug, Clone)]
pub struct ReportInterval {
    state: u64,
}

impl ReportInterval {
    /// The intervals of `room`'s reports.
    pub fn for_room(room: RoomId) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        room.hash(&mut h);
        // xorshift's state must not be zero.
        ReportInterval {
            state: h.finish() | 1,
        }
    }

    /// The next interval (xorshift64 for the factor).
    pub fn draw(&mut self) -> Duration {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
        REPORT_INTERVAL.mul_f64(0.5 + unit)
    }
}
