//! Key frame requests towards producers (contract section 6, "Loss and key frames"): a
//! consumer that starts, resumes or switches layer, or whose receiver sent a PLI or FIR
//! (RFC 4585 §6.3.1, RFC 5104 §4.3.1), needs a key frame; each producer's
//! [`KeyFrameRequestManager`](crate::rtp_stream::KeyFrameRequestManager) decides when a
//! PLI really goes to the sender (one per `keyFrameRequestDelay` per stream, one more at
//! its end if asked meanwhile, one retry when no key frame came).

use std::time::Instant;

use super::core::WorkerCore;
use crate::ids::{ConsumerId, ProducerId};
use crate::ortc::MediaKind;
use crate::transport::FEEDBACK_SENDER_SSRC;

impl WorkerCore {
    /// A consumer needs a key frame (it starts, resumes or switches layer): ask its
    /// producer for one on the stream it is waiting for.
    pub(super) fn request_key_frame_for(&mut self, now: Instant, consumer: ConsumerId) {
        let Some(c) = self.media.consumers.get_mut(&consumer) else {
            return;
        };
        if c.kind != MediaKind::Video {
            return;
        }
        let Some(p) = self.media.producers.get(&c.producer) else {
            return;
        };
        c.update_target(now, &p.streams);
        let stream = c
            .current_layer()
            .unwrap_or(p.streams.len().saturating_sub(1));
        let target = (0..p.streams.len())
            .rev()
            .find(|&i| p.streams[i].is_active(now))
            .unwrap_or(stream);
        let producer = c.producer;
        self.request_key_frame(now, producer, target);
    }

    /// Asks the producer's key frame request manager for a key frame of one of its
    /// streams; sends the PLI if it says so now.
    pub(super) fn request_key_frame(&mut self, now: Instant, producer: ProducerId, stream: usize) {
        let Some(p) = self.media.producers.get_mut(&producer) else {
            return;
        };
        let Some(ssrc) = p.streams.get(stream).and_then(|s| s.ssrc) else {
            return;
        };
        let send = p.key_frames.request(now, ssrc);
        if let Some(t) = p.key_frames.poll_timeout()
            && self.media.key_frame_due.is_none_or(|d| t < d)
        {
            self.media.key_frame_due = Some(t);
        }
        if send {
            self.send_pli(producer, ssrc);
        }
    }

    /// Runs the managers' timers that are due: requests owed at the end of a delay, and
    /// retries of requests no key frame answered.
    pub(super) fn handle_key_frame_timers(&mut self, now: Instant) {
        if self.media.key_frame_due.is_none_or(|t| t > now) {
            return;
        }
        let mut due = Vec::new();
        for p in self.media.producers.values_mut() {
            if p.key_frames.poll_timeout().is_some_and(|t| t <= now) {
                for ssrc in p.key_frames.handle_timeout(now) {
                    due.push((p.id, ssrc));
                }
            }
        }
        for (p, ssrc) in due {
            self.send_pli(p, ssrc);
        }
        self.media.key_frame_due = self
            .media
            .producers
            .values()
            .filter_map(|p| p.key_frames.poll_timeout())
            .min();
    }

    /// When a key frame request timer is due (may be early: a visit then finds nothing
    /// due and recomputes it).
    pub(super) fn key_frame_timeout(&self) -> Option<Instant> {
        self.media.key_frame_due
    }

    /// Sends a PLI to the producer for its stream `media_ssrc`; nothing when the
    /// transport is not connected.
    fn send_pli(&mut self, producer: ProducerId, media_ssrc: u32) {
        let Some(p) = self.media.producers.get(&producer) else {
            return;
        };
        let transport = p.transport;
        let mut pli = Vec::with_capacity(12);
        kolabmeet_net::rtcp::write_pli(&mut pli, FEEDBACK_SENDER_SSRC, media_ssrc);
        tracing::debug!(target: "kolabmeet::producer", %producer, media_ssrc, "key frame requested");
        self.send_rtcp_on(transport, pli);
    }
}
