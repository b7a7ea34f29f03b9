//! A router's timers: NACKs towards producers (whenever a stream's NACK generator has
//! numbers due), key frame requests owed or retried, and the round of RTCP reports every
//! [`REPORT_INTERVAL`](super::report_interval::REPORT_INTERVAL). Each deadline is kept
//! cheaply (possibly early: a visit then finds nothing due and recomputes it), so
//! [`Router::poll_timeout`] costs nothing per call.

use std::time::Instant;

use super::egress::Egress;
use super::room::Router;

impl Router {
    /// When [`Router::handle_timeout`] must run next; never while the room has no
    /// producer and no consumer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.producers.is_empty() && self.consumers.is_empty() {
            return None;
        }
        [self.nack_due, self.key_frame_due, self.next_report]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs what is due: key frame requests, NACKs, reports.
    pub fn handle_timeout(&mut self, now: Instant, egress: &mut Egress<'_>) {
        self.handle_key_frame_timers(now, egress);
        if self.nack_due.is_some_and(|t| t <= now) {
            self.send_nacks(now, egress);
        }
        if self.next_report.is_some_and(|t| t <= now) {
            self.send_reports(now, egress);
            self.update_wants(now, egress);
        }
    }
}
