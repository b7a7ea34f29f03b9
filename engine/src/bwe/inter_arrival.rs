//! Packets grouped by send time, and the delay variation between consecutive groups
//! (draft-ietf-rmcat-gcc-02 §5.2; libwebrtc's `InterArrivalDelta`). A group is what the
//! sender sent within [`GROUP_SPAN`] of its first packet: the pacer's bursts, which the
//! network smears out; comparing whole groups keeps that from looking like congestion.

use std::time::{Duration, Instant};

use super::feedback_reader::PacketResult;

/// Packets sent within this span of a group's first one belong to it.
const GROUP_SPAN: Duration = Duration::from_millis(5);
/// An arrival delta this much beyond its send delta means the receiver's clock jumped (or
/// it lies): start over (libwebrtc's `kArrivalTimeOffsetThreshold`).
const CLOCK_JUMP_US: i64 = 3_000_000;
/// Out-of-order groups tolerated before starting over.
const MAX_REORDERED: u32 = 3;

/// The difference between two consecutive groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupDelta {
    /// Send time of the later group minus the earlier one's, in ms.
    pub send_ms: f64,
    /// Arrival time difference, in ms.
    pub arrival_ms: f64,
    /// The later group's arrival, in ms on the receiver's clock.
    pub arrival_time_ms: f64,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    first_sent: Instant,
    last_sent: Instant,
    last_arrival_us: i64,
}

/// Groups received packets (in the order the feedback reports them) and yields the delta
/// between each completed group and the one before.
#[derive(Debug, Default)]
pub struct InterArrival {
    previous: Option<Group>,
    current: Option<Group>,
    reordered: u32,
    /// Group deltas dropped because the later group arrived first (diagnostics).
    pub negative: u64,
}

impl InterArrival {
    /// Takes one received packet; returns the delta of the group it completed, if any.
    pub fn on_packet(&mut self, p: &PacketResult) -> Option<GroupDelta> {
        let arrival = p.arrival_us?;
        let Some(current) = self.current.as_mut() else {
            self.current = Some(Group {
                first_sent: p.sent,
                last_sent: p.sent,
                last_arrival_us: arrival,
            });
            return None;
        };
        if p.sent < current.first_sent {
            // Sent before the current group began: a reordered packet, not part of any
            // group now.
            return None;
        }
        if p.sent.duration_since(current.first_sent) <= GROUP_SPAN {
            current.last_sent = current.last_sent.max(p.sent);
            current.last_arrival_us = current.last_arrival_us.max(arrival);
            return None;
        }
        // A new group begins: the current one is complete.
        let done = *current;
        self.current = Some(Group {
            first_sent: p.sent,
            last_sent: p.sent,
            last_arrival_us: arrival,
        });
        let Some(prev) = self.previous else {
            self.previous = Some(done);
            return None;
        };
        let send_us = done.last_sent.duration_since(prev.last_sent).as_micros() as i64;
        let arrival_us = done.last_arrival_us - prev.last_arrival_us;
        if arrival_us - send_us > CLOCK_JUMP_US || arrival_us < -CLOCK_JUMP_US {
            self.reset();
            return None;
        }
        if arrival_us < 0 {
            // The group arrived before the one sent ahead of it. It is left out, and the
            // next delta is measured from the group before it (as libwebrtc's
            // `InterArrivalDelta` keeps its previous group): measured from the early group,
            // the next delta would carry the reordering as delay, and every reordering
            // would add to the queue the detector believes in (a relay whose timers
            // swapped packets now and then made 200 ms of it in a minute, 2026-12-07).
            self.negative += 1;
            self.reordered += 1;
            if self.reordered > MAX_REORDERED {
                self.reset();
            }
            return None;
        }
        self.previous = Some(done);
        self.reordered = 0;
        Some(GroupDelta {
            send_ms: send_us as f64 / 1000.0,
            arrival_ms: arrival_us as f64 / 1000.0,
            arrival_time_ms: done.last_arrival_us as f64 / 1000.0,
        })
    }

    fn reset(&mut self) {
        self.previous = None;
        self.current = None;
        self.reordered = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: i64, t0: Instant, sent_ms: u64, arrival_ms: i64) -> PacketResult {
        PacketResult {
            seq,
            sent: t0 + Duration::from_millis(sent_ms),
            size: 1000,
            arrival_us: Some(arrival_ms * 1000),
            cluster: None,
        }
    }

    /// A constant path delay with a pair of groups swapped every so often: the deltas add
    /// up to no delay at all, not to one reordering's worth per swap.
    #[test]
    fn reordered_groups_do_not_add_up_to_delay() {
        let t0 = Instant::now();
        let mut ia = InterArrival::default();
        let mut accumulated = 0.0;
        for k in 0..1000u64 {
            // A group every 10 ms, 40 ms on the path; every 10th group arrives 12 ms
            // early, before the group sent ahead of it.
            let sent = k * 10;
            let arrival = sent as i64 + 40 - if k % 10 == 5 { 12 } else { 0 };
            if let Some(d) = ia.on_packet(&packet(k as i64, t0, sent, arrival)) {
                accumulated += d.arrival_ms - d.send_ms;
            }
        }
        assert_eq!(ia.negative, 100, "the early groups are seen and left out");
        assert!(accumulated.abs() < 1.0, "accumulated {accumulated} ms");
    }
}
