//! RTCP a router's transports receive, read through the `kolabmeet_net::rtcp` views (contract
//! section 6, "Loss and key frames"):
//! - from receivers of its consumers: PLI (RFC 4585 §6.3.1) and FIR (RFC 5104 §4.3.1)
//!   become one key frame request to the producer per `keyFrameRequestDelay`; generic
//!   NACK (RFC 4585 §6.2.1) is answered from the consumer's retransmission buffer (over
//!   RTX where negotiated); report blocks (RFC 3550 §6.4) give the consumer's RTT and
//!   score (`consumerScoreChanged`);
//! - from senders of its producers: SR (RFC 3550 §6.4.1), whose NTP/RTP pair the
//!   consumers' own SRs carry on and whose time the RR blocks echo (LSR/DLSR).
//!
//! - from receivers: transport-cc feedback and REMB, into the transport's bandwidth
//!   estimate, whose allocation is redone when the estimate moved enough (issue 9).
//!
//! A compound packet that does not parse to its end is counted (the worker's
//! `malformed_rtcp`); the packets before the fault still count.

use std::time::Instant;

use kolabmeet_net::rtcp::{ReportBlockData, RtcpPacket, packets};

use super::consumer::SendContext;
use super::egress::Egress;
use super::room::Router;
use super::send_stream::ReportFigures;
use crate::arena::{ConsumerKey, TransportKey};

impl Router {
    /// Decrypted RTCP from transport `tk` of this room; returns how many of its packets
    /// were malformed (the rest of the compound packet is then skipped).
    pub fn on_rtcp(
        &mut self,
        now: Instant,
        tk: TransportKey,
        buf: &[u8],
        egress: &mut Egress<'_>,
    ) -> u64 {
        let mut malformed = 0;
        let mut bandwidth_news = false;
        let consumer = |egress: &Egress<'_>, ssrc: u32| -> Option<ConsumerKey> {
            egress.transports.get(tk)?.consumer(ssrc)
        };
        for packet in packets(buf) {
            match packet {
                Err(e) => {
                    malformed += 1;
                    tracing::debug!(target: "kolabmeet::rtcp", error = %e, "malformed RTCP dropped");
                }
                Ok(RtcpPacket::SenderReport(sr)) => {
                    self.on_sender_report(now, tk, sr.ssrc(), sr.ntp(), sr.rtp_time(), egress);
                    for b in sr.blocks() {
                        self.on_report_block(now, tk, b.data(), egress);
                    }
                }
                Ok(RtcpPacket::ReceiverReport(rr)) => {
                    for b in rr.blocks() {
                        self.on_report_block(now, tk, b.data(), egress);
                    }
                }
                Ok(RtcpPacket::Pli(pli)) => {
                    egress.counters.plis_received += 1;
                    if let Some(c) = consumer(egress, pli.media_ssrc()) {
                        self.request_key_frame_for(now, c, egress);
                    }
                }
                Ok(RtcpPacket::Fir(fir)) => {
                    for (ssrc, _) in fir.entries() {
                        egress.counters.firs_received += 1;
                        if let Some(c) = consumer(egress, ssrc) {
                            self.request_key_frame_for(now, c, egress);
                        }
                    }
                }
                Ok(RtcpPacket::Nack(nack)) => {
                    egress.counters.nacks_received += 1;
                    if let Some(c) = consumer(egress, nack.media_ssrc()) {
                        self.retransmit(now, c, nack.lost(), egress);
                    }
                }
                Ok(RtcpPacket::TransportCc(fb)) => {
                    if let Some(t) = egress.transports.get_mut(tk) {
                        t.bandwidth.on_transport_cc(now, &fb);
                        bandwidth_news = true;
                    }
                }
                Ok(RtcpPacket::Remb(remb)) => {
                    if let Some(t) = egress.transports.get_mut(tk) {
                        t.bandwidth.on_remb(now, remb.bitrate());
                        bandwidth_news = true;
                    }
                }
                Ok(_) => {}
            }
        }
        if bandwidth_news
            && egress
                .transports
                .get(tk)
                .is_some_and(|t| t.consumer_count() > 0 && t.bandwidth.needs_allocation(now))
        {
            self.allocate(now, tk, egress);
        }
        malformed
    }

    /// An SR from the sender of one of the transport's producer streams.
    fn on_sender_report(
        &mut self,
        now: Instant,
        tk: TransportKey,
        ssrc: u32,
        ntp: u64,
        rtp: u32,
        egress: &mut Egress<'_>,
    ) {
        let Some(pk) = egress
            .transports
            .get(tk)
            .and_then(|t| t.listener.producer_of_ssrc(ssrc))
        else {
            return;
        };
        if let Some(p) = self.producers.get_mut(pk)
            && let Some(i) = p.streams.iter().position(|s| s.ssrc == Some(ssrc))
        {
            p.streams[i].stats.on_sender_report(now, ntp, rtp);
            // Its mirrors' consumers report the same mapping (issue 16).
            for to in p.mirrors.iter().map(|m| m.worker) {
                let message = crate::mirror::PipeMessage::SenderReport {
                    room: self.room,
                    producer: p.id,
                    stream: i as u8,
                    ntp,
                    rtp,
                    at: now,
                };
                let _ = egress.pipes.push(to, message);
            }
        }
    }

    /// A report block about one of the transport's consumer streams.
    fn on_report_block(
        &mut self,
        now: Instant,
        tk: TransportKey,
        b: ReportBlockData,
        egress: &mut Egress<'_>,
    ) {
        let Some(ck) = egress.transports.get(tk).and_then(|t| t.consumer(b.ssrc)) else {
            return;
        };
        let Some(c) = self.consumers.get_mut(ck) else {
            return;
        };
        let changed = c.stream.on_receiver_report(
            now,
            ReportFigures {
                cumulative_lost: b.cumulative_lost,
                last_sr: b.last_sr,
                delay_since_last_sr: b.delay_since_last_sr,
                fraction_lost: b.fraction_lost,
            },
        );
        if let Some(rtt) = c.stream.rtt()
            && let Some(t) = egress.transports.get_mut(tk)
        {
            t.bandwidth.on_rtt(rtt);
        }
        if changed.is_some() {
            self.emit_consumer_score(ck, egress);
        }
    }

    /// Resends what a receiver NACKed from the consumer's retransmission buffer, each
    /// with a fresh transport-wide sequence number (RFC 4588 RTX where negotiated).
    fn retransmit(
        &mut self,
        now: Instant,
        ck: ConsumerKey,
        lost: impl Iterator<Item = u16>,
        egress: &mut Egress<'_>,
    ) {
        let abs_send_time = egress.clock.abs_send_time(now);
        let Router {
            producers,
            consumers,
            ..
        } = self;
        let Some(c) = consumers.get_mut(ck) else {
            return;
        };
        let streams = producers
            .get(c.producer)
            .map_or(&[][..], |p| &p.streams[..]);
        let Some(transport) = egress.transports.get_mut(c.transport) else {
            return;
        };
        // A NACK names at most 17 packets per entry; a hostile one cannot make more
        // work than its own size, and the buffer answers each packet once per RTT.
        for lost in lost {
            let mut out = egress.pool.take();
            let ctx = SendContext {
                transport_seq: transport.transport_seq(),
                abs_send_time,
            };
            if !c.retransmit(now, lost, streams, ctx, &mut out) {
                egress.pool.give(out);
                continue;
            }
            egress.counters.retransmitted += 1;
            if let Err(out) =
                transport.send_rtp(now, out, c.carries_transport_seq(), egress.transmits)
            {
                egress.pool.give(out);
            }
        }
    }
}
