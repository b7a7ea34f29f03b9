//! Key frame requests towards a router's producers (contract section 6, "Loss and key
//! frames"): a consumer that starts, resumes or switches layer, or whose receiver sent a
//! PLI or FIR (RFC 4585 §6.3.1, RFC 5104 §4.3.1), needs a key frame; each producer's
//! [`KeyFrameRequestManager`](crate::rtp_stream::KeyFrameRequestManager) decides when a
//! PLI really goes to the sender (one per `keyFrameRequestDelay` per stream, one more at
//! its end if asked meanwhile, one retry when no key frame came).

use std::time::Instant;

use kolabmeet_net::rtcp::write_pli;

use super::egress::Egress;
use super::producer::ProducerOrigin;
use super::room::Router;
use crate::arena::{ConsumerKey, ProducerKey};
use crate::mirror::PipeMessage;
use crate::ortc::MediaKind;
use crate::transport::FEEDBACK_SENDER_SSRC;

impl Router {
    /// A consumer needs a key frame (it starts, resumes or switches layer): ask its
    /// producer for one on the stream it is waiting for.
    pub(super) fn request_key_frame_for(
        &mut self,
        now: Instant,
        ck: ConsumerKey,
        egress: &mut Egress<'_>,
    ) {
        let Some(c) = self.consumers.get_mut(ck) else {
            return;
        };
        if c.kind != MediaKind::Video {
            return;
        }
        let Some(p) = self.producers.get(c.producer) else {
            return;
        };
        c.update_target(now, &p.streams);
        let stream = c
            .current_layer()
            .unwrap_or(p.streams.len().saturating_sub(1));
        let target = (0..p.streams.len())
            .rev()
            .find(|&i| super::recv_stream::is_usable(&p.streams, i, now))
            .unwrap_or(stream);
        let pk = c.producer;
        self.request_key_frame(now, pk, target, egress);
    }

    /// Asks the producer's key frame request manager for a key frame of one of its
    /// streams; sends the PLI if it says so now.
    pub(super) fn request_key_frame(
        &mut self,
        now: Instant,
        pk: ProducerKey,
        stream: usize,
        egress: &mut Egress<'_>,
    ) {
        let Some(p) = self.producers.get_mut(pk) else {
            return;
        };
        // A mirror's requests go to its origin worker, keyed by the router-side SSRC (a
        // mirror never learns its sender's); the origin's manager throttles them again.
        let ssrc = match p.origin {
            ProducerOrigin::Transport(_) => p.streams.get(stream).and_then(|s| s.ssrc),
            ProducerOrigin::Mirror(_) => p.streams.get(stream).map(|s| s.mapped_ssrc),
        };
        if p.is_mirror() {
            // The stream a consumer waits for a key frame of must cross whole first.
            if let Some(at) = p.mirror_want.requested.get_mut(stream) {
                *at = Some(now);
            }
            self.update_want(now, pk, egress);
        }
        let Some(p) = self.producers.get_mut(pk) else {
            return;
        };
        let Some(ssrc) = ssrc else {
            return;
        };
        let send = p.key_frames.request(now, ssrc);
        if let Some(t) = p.key_frames.poll_timeout()
            && self.key_frame_due.is_none_or(|d| t < d)
        {
            self.key_frame_due = Some(t);
        }
        if send {
            self.send_pli(pk, ssrc, egress);
        } else {
            tracing::trace!(target: "kolabmeet::producer", producer = %p.id, media_ssrc = ssrc, "key frame request held (pending, or within the delay)");
        }
    }

    /// Runs the managers' timers that are due: requests owed at the end of a delay, and
    /// retries of requests no key frame answered.
    pub(super) fn handle_key_frame_timers(&mut self, now: Instant, egress: &mut Egress<'_>) {
        if self.key_frame_due.is_none_or(|t| t > now) {
            return;
        }
        let mut due = Vec::new();
        for (pk, p) in self.producers.iter_mut() {
            if p.key_frames.poll_timeout().is_some_and(|t| t <= now) {
                for ssrc in p.key_frames.handle_timeout(now) {
                    due.push((pk, ssrc));
                }
            }
        }
        for (pk, ssrc) in due {
            self.send_pli(pk, ssrc, egress);
        }
        self.key_frame_due = self
            .producers
            .values()
            .filter_map(|p| p.key_frames.poll_timeout())
            .min();
    }

    /// Sends a PLI to the producer for its stream `media_ssrc` (nothing when its
    /// transport is not connected); a mirror's request goes to its origin worker.
    fn send_pli(&mut self, pk: ProducerKey, media_ssrc: u32, egress: &mut Egress<'_>) {
        let Some(p) = self.producers.get(pk) else {
            return;
        };
        let transport = match p.origin {
            ProducerOrigin::Transport(t) => t,
            ProducerOrigin::Mirror(origin) => {
                if let Some(stream) = p.streams.iter().position(|s| s.mapped_ssrc == media_ssrc) {
                    let message = PipeMessage::KeyFrameRequest {
                        room: self.room,
                        producer: p.id,
                        stream: stream as u8,
                    };
                    tracing::debug!(target: "kolabmeet::producer", producer = %p.id, stream, %origin, "key frame requested from the origin worker");
                    let _ = egress.pipes.push(origin, message);
                }
                return;
            }
        };
        let mut pli = Vec::with_capacity(12);
        write_pli(&mut pli, FEEDBACK_SENDER_SSRC, media_ssrc);
        tracing::debug!(target: "kolabmeet::producer", producer = %p.id, media_ssrc, "key frame requested");
        egress.counters.plis_sent += 1;
        egress.send_rtcp(transport, pli);
    }
}
