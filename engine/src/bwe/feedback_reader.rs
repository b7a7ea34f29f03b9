//! A transport-cc feedback packet
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1) matched against what was
//! sent: for each packet it reports, the send time and size we recorded and the arrival time
//! on the receiver's clock. The receiver's reference time (24 bits of 64 ms) is unwrapped
//! across packets; a report of a number we never sent, or already had reported, is
//! skipped and counted (hostile or confused receivers must not move the estimate).

use std::time::Instant;

use kolabmeet_net::rtcp::TransportCc;

use super::sent_history::SentHistory;

/// One receive delta tick (§3.1.5): 250 µs.
const TICK_US: i64 = 250;
/// One reference time unit (§3.1): 64 ms.
const REFERENCE_US: i64 = 64_000;
/// The reference time field's range (24 bits).
const REFERENCE_WRAP: i64 = 1 << 24;

/// One packet a feedback reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketResult {
    /// Its extended transport-wide number.
    pub seq: i64,
    /// When we sent it.
    pub sent: Instant,
    /// Its size in bytes.
    pub size: u32,
    /// When it arrived, in µs on the receiver's (unwrapped) clock; `None`: lost.
    pub arrival_us: Option<i64>,
    /// The probe cluster it belonged to.
    pub cluster: Option<u32>,
}

/// Reads feedback packets of one transport's receiver.
#[derive(Debug, Default)]
pub struct FeedbackReader {
    /// The last reference time seen, unwrapped (64 ms units).
    last_reference: Option<i64>,
    /// Reports of numbers we did not send (or no longer remember), or reported twice.
    pub unknown: u64,
}

impl FeedbackReader {
    /// The packets `fb` reports, in sequence order, with their send records marked
    /// reported. Appends to `out`.
    pub fn read(
        &mut self,
        fb: &TransportCc<'_>,
        history: &mut SentHistory,
        out: &mut Vec<PacketResult>,
    ) {
        let reference = self.unwrap_reference(i64::from(fb.reference_time()));
        let mut arrival = reference.saturating_mul(REFERENCE_US);
        for (seq, delta) in fb.packets() {
            let arrival_us = delta.map(|d| {
                arrival = arrival.saturating_add(i64::from(d) * TICK_US);
                arrival
            });
            let Some(ext) = history.extend(seq) else {
                self.unknown += 1;
                continue;
            };
            match history.get(ext) {
                Some(p) if !(p.reported && arrival_us.is_some()) => {
                    if arrival_us.is_some() {
                        history.mark_reported(ext);
                    }
                    out.push(PacketResult {
                        seq: ext,
                        sent: p.sent,
                        size: p.size,
                        arrival_us,
                        cluster: p.cluster,
                    });
                }
                _ => self.unknown += 1,
            }
        }
    }

    fn unwrap_reference(&mut self, reference: i64) -> i64 {
        let reference = reference.rem_euclid(REFERENCE_WRAP);
        let unwrapped = match self.last_reference {
            None => reference,
            Some(last) => {
                let mut diff = (reference - last).rem_euclid(REFERENCE_WRAP);
                if diff >= REFERENCE_WRAP / 2 {
                    diff -= REFERENCE_WRAP;
                }
                last + diff
            }
        };
        self.last_reference = Some(unwrapped);
        unwrapped
    }
}
