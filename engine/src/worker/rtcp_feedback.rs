//! RTCP the worker receives, read through the `kolabmeet_net::rtcp` views (contract
//! section 6, "Loss and key frames"):
//! - from receivers of its consumers: PLI (RFC 4585 §6.3.1) and FIR (RFC 5104 §4.3.1)
//!   become one key frame request to the producer per `keyFrameRequestDelay`; generic
//!   NACK (RFC 4585 §6.2.1) is answered from the consumer's retransmission buffer (over
//!   RTX where negotiated); report blocks (RFC 3550 §6.4) give the consumer's RTT and
//!   score (`consumerScoreChanged`);
//! - from senders of its producers: SR (RFC 3550 §6.4.1), whose NTP/RTP pair the
//!   consumers' own SRs carry on and whose time the RR blocks echo (LSR/DLSR).
//!
//! REMB and transport-cc feedback from receivers wait for bandwidth estimation (next
//! issue). A compound packet that does not parse to its end is counted
//! (`malformed_rtcp`); the packets before the fault still count.

use std::time::Instant;

use kolabmeet_net::rtcp::{RtcpPacket, packets};

use super::core::WorkerCore;
use crate::ids::{ConsumerId, TransportId};
use crate::router::{ReportFigures, SendContext};

impl WorkerCore {
    /// Decrypted RTCP from `transport`.
    pub(super) fn handle_rtcp(&mut self, now: Instant, transport: TransportId, buf: &[u8]) {
        for packet in packets(buf) {
            match packet {
                Err(e) => {
                    self.counters.malformed_rtcp += 1;
                    tracing::debug!(target: "kolabmeet::rtcp", %transport, error = %e, "malformed RTCP dropped");
                }
                Ok(RtcpPacket::SenderReport(sr)) => {
                    self.on_sender_report(now, transport, sr.ssrc(), sr.ntp(), sr.rtp_time());
                    for b in sr.blocks() {
                        self.on_report_block(now, transport, b.data());
                    }
                }
                Ok(RtcpPacket::ReceiverReport(rr)) => {
                    for b in rr.blocks() {
                        self.on_report_block(now, transport, b.data());
                    }
                }
                Ok(RtcpPacket::Pli(pli)) => {
                    if let Some(c) = self.consumer_by_ssrc(transport, pli.media_ssrc()) {
                        self.request_key_frame_for(now, c);
                    }
                }
                Ok(RtcpPacket::Fir(fir)) => {
                    for (ssrc, _) in fir.entries() {
                        if let Some(c) = self.consumer_by_ssrc(transport, ssrc) {
                            self.request_key_frame_for(now, c);
                        }
                    }
                }
                Ok(RtcpPacket::Nack(nack)) => {
                    if let Some(c) = self.consumer_by_ssrc(transport, nack.media_ssrc()) {
                        self.retransmit(now, c, nack.lost());
                    }
                }
                Ok(_) => {}
            }
        }
    }

    fn consumer_by_ssrc(&self, transport: TransportId, ssrc: u32) -> Option<ConsumerId> {
        self.transports.get(&transport)?.consumer(ssrc)
    }

    /// An SR from the sender of one of the transport's producer streams.
    fn on_sender_report(
        &mut self,
        now: Instant,
        transport: TransportId,
        ssrc: u32,
        ntp: u64,
        rtp: u32,
    ) {
        let Some(pid) = self
            .transports
            .get(&transport)
            .and_then(|t| t.listener.producer_of_ssrc(ssrc))
        else {
            return;
        };
        if let Some(p) = self.media.producers.get_mut(&pid)
            && let Some(s) = p.streams.iter_mut().find(|s| s.ssrc == Some(ssrc))
        {
            s.stats.on_sender_report(now, ntp, rtp);
        }
    }

    /// A report block about one of the transport's consumer streams.
    fn on_report_block(
        &mut self,
        now: Instant,
        transport: TransportId,
        b: kolabmeet_net::rtcp::ReportBlockData,
    ) {
        let Some(id) = self.consumer_by_ssrc(transport, b.ssrc) else {
            return;
        };
        let Some(c) = self.media.consumers.get_mut(&id) else {
            return;
        };
        let changed = c.stream.on_receiver_report(
            now,
            ReportFigures {
                cumulative_lost: b.cumulative_lost,
                last_sr: b.last_sr,
                delay_since_last_sr: b.delay_since_last_sr,
            },
        );
        if changed.is_some() {
            self.emit_consumer_score(id);
        }
    }

    /// Resends what a receiver NACKed from the consumer's retransmission buffer, each
    /// with a fresh transport-wide sequence number (RFC 4588 RTX where negotiated).
    fn retransmit(&mut self, now: Instant, id: ConsumerId, lost: impl Iterator<Item = u16>) {
        let abs_send_time = self.abs_send_time(now);
        let Some(c) = self.media.consumers.get_mut(&id) else {
            return;
        };
        let Some(entry) = self.transports.get_mut(&c.transport) else {
            return;
        };
        // A NACK names at most 17 packets per entry; a hostile one cannot make more
        // work than its own size, and the buffer answers each packet once per RTT.
        for lost in lost {
            let mut out = self.pool.take();
            let ctx = SendContext {
                transport_seq: entry.transport_seq(),
                abs_send_time,
            };
            if !c.retransmit(now, lost, ctx, &mut out) {
                self.pool.give(out);
                continue;
            }
            if let Err(out) = entry.send_rtp(out, &mut self.transmits) {
                self.pool.give(out);
            }
        }
    }
}
