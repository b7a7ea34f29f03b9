//! Key frame requests towards producers (contract section 6, "Loss and key frames"): a
//! consumer that starts, resumes or switches layer, or whose receiver sent a PLI or FIR
//! (RFC 4585 §6.3.1, RFC 5104 §4.3.1), needs a key frame; the producer is asked with a
//! PLI at most once per [`KEY_FRAME_REQUEST_DELAY`] per stream, and a request inside the
//! delay is sent when it ends.

use std::time::{Duration, Instant};

use super::core::WorkerCore;
use crate::ids::{ConsumerId, ProducerId};
use crate::ortc::MediaKind;

/// Key frame requests to one producer stream are at most this frequent
/// (`keyFrameRequestDelay`, 3 s in the Kolab client); one more goes when it ends if
/// any came in meanwhile.
pub const KEY_FRAME_REQUEST_DELAY: Duration = Duration::from_secs(3);

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

    /// Sends a PLI for one producer stream, at most once per
    /// [`KEY_FRAME_REQUEST_DELAY`]; a request inside the delay is owed and sent when it
    /// ends (see [`WorkerCore::handle_key_frame_timers`]).
    pub(super) fn request_key_frame(&mut self, now: Instant, producer: ProducerId, stream: usize) {
        match self.media.key_frames.get_mut(&(producer, stream)) {
            Some((last, owed))
                if now.saturating_duration_since(*last) < KEY_FRAME_REQUEST_DELAY =>
            {
                *owed = true;
            }
            _ => {
                self.media
                    .key_frames
                    .insert((producer, stream), (now, false));
                self.send_pli(producer, stream);
            }
        }
    }

    /// Sends owed key frame requests whose delay ended; forgets old entries.
    pub(super) fn handle_key_frame_timers(&mut self, now: Instant) {
        let due: Vec<(ProducerId, usize)> = self
            .media
            .key_frames
            .iter()
            .filter(|(_, (last, owed))| {
                *owed && now.saturating_duration_since(*last) >= KEY_FRAME_REQUEST_DELAY
            })
            .map(|(k, _)| *k)
            .collect();
        for (p, s) in due {
            self.media.key_frames.insert((p, s), (now, false));
            self.send_pli(p, s);
        }
        self.media.key_frames.retain(|_, (last, owed)| {
            *owed || now.saturating_duration_since(*last) < KEY_FRAME_REQUEST_DELAY
        });
    }

    /// When an owed key frame request is due.
    pub(super) fn key_frame_timeout(&self) -> Option<Instant> {
        self.media
            .key_frames
            .values()
            .map(|(last, _)| *last + KEY_FRAME_REQUEST_DELAY)
            .min()
    }

    /// Sends a PLI to the producer for one of its streams; `false` when it cannot (the
    /// stream's SSRC is unknown yet, the transport is not connected).
    fn send_pli(&mut self, producer: ProducerId, stream: usize) -> bool {
        let Some(p) = self.media.producers.get(&producer) else {
            return false;
        };
        let Some(media_ssrc) = p.streams.get(stream).and_then(|s| s.ssrc) else {
            return false;
        };
        let transport = p.transport;
        let mut pli = Vec::with_capacity(12);
        kolabmeet_net::rtcp::write_pli(&mut pli, super::core::FEEDBACK_SENDER_SSRC, media_ssrc);
        if let Some(t) = self.transports.get_mut(&transport)
            && t.transport.protect_rtcp(&mut pli)
            && let Some(tuple) = t.transport.selected_tuple()
        {
            tracing::debug!(target: "kolabmeet::producer", %producer, stream, "key frame requested");
            self.transmits
                .push_back(crate::transport::Transmit { tuple, data: pli });
            return true;
        }
        false
    }
}
