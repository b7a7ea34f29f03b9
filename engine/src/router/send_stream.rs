//! A consumer's outgoing RTP stream: what it sent (for NACK answers, RFC 4585 §6.2.1, over
//! RTX where negotiated, RFC 4588 §4), its counters and RTP clock for sender reports
//! (RFC 3550 §6.4.1), and its score from the receiver's reports (mediasoup's
//! `RtpStreamSend`).

use std::time::{Duration, Instant};

use kolabmeet_net::rtp::RtpPacket;

use crate::rtp_stream::{
    RetransmissionBuffer, RetransmissionBufferConfig, StoredRef, StreamScore, rtp_ticks, ts_newer,
};

/// A receiver report block about this stream, as the worker read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportFigures {
    /// Cumulative packets lost (RFC 3550 §6.4.1, 24-bit signed).
    pub cumulative_lost: i32,
    /// Middle 32 bits of the NTP time of our last SR the receiver saw (0: none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
    /// Fraction lost since the receiver's previous report, in 1/256.
    pub fraction_lost: u8,
}

/// A receiver's fraction lost older than this says nothing about its link now.
pub const FRACTION_LOST_FRESH: Duration = Duration::from_secs(15);

/// The consumer's outgoing stream.
#[derive(Debug)]
pub struct SendStream {
    ssrc: u32,
    clock_rate: u32,
    /// Packets kept for NACK answers (when `nack` was negotiated).
    buffer: Option<RetransmissionBuffer<StoredRef>>,
    /// (RTX SSRC, RTX payload type, next RTX sequence number).
    rtx: Option<(u32, u8, u16)>,
    /// Media packets and payload octets sent (SR counts).
    pub packets: u64,
    /// Payload octets sent.
    pub octets: u64,
    /// Packets resent in answer to NACKs.
    pub retransmitted: u64,
    /// NACKed sequence numbers that could be resent.
    pub repaired: u64,
    /// The cumulative loss the receiver last reported (stats).
    pub reported_lost: i32,
    /// The receiver's last fraction lost and when it came.
    reported_fraction: Option<(u8, Instant)>,
    /// The RTP timestamp of the newest packet sent and when it was sent.
    last: Option<(u32, Instant)>,
    /// NTP middle 32 bits of SRs sent, with when (for RTT, RFC 3550 §6.4.1).
    sent_srs: [(u32, Option<Instant>); 4],
    rtt: Option<Duration>,
    score: StreamScore,
}

impl SendStream {
    /// A stream with SSRC `ssrc` at `clock_rate`; `nack` keeps a retransmission buffer
    /// (video), `rtx` is (RTX SSRC, RTX payload type) when negotiated.
    pub fn new(
        ssrc: u32,
        clock_rate: u32,
        nack: Option<RetransmissionBufferConfig>,
        rtx: Option<(u32, u8)>,
    ) -> Self {
        SendStream {
            ssrc,
            clock_rate: clock_rate.max(1),
            buffer: nack.map(RetransmissionBuffer::new),
            rtx: rtx.map(|(s, pt)| (s, pt, 0)),
            packets: 0,
            octets: 0,
            retransmitted: 0,
            repaired: 0,
            reported_lost: 0,
            reported_fraction: None,
            last: None,
            sent_srs: [(0, None); 4],
            rtt: None,
            score: StreamScore::new(10),
        }
    }

    /// Its SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The score (0-10) from the receiver's reports.
    pub fn score(&self) -> u8 {
        self.score.score()
    }

    /// The round-trip time learnt from the receiver's reports.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Whether anything was sent (an SR is due only then).
    pub fn has_sent(&self) -> bool {
        self.last.is_some()
    }

    /// A packet (`seq`, RTP timestamp `ts`, `payload_len` bytes of payload) was sent now,
    /// written from the router's packet that `stored` finds in its producer's store: the
    /// reference is kept for NACK answers.
    pub fn on_sent(
        &mut self,
        now: Instant,
        seq: u16,
        ts: u32,
        payload_len: usize,
        stored: Option<StoredRef>,
    ) {
        self.packets += 1;
        self.octets += payload_len as u64;
        if self.last.is_none_or(|(last, _)| !ts_newer(last, ts)) {
            self.last = Some((ts, now));
        }
        if let Some(b) = self.buffer.as_mut()
            && let Some(stored) = stored
        {
            // A duplicate or a too old number is simply not kept.
            let _ = b.insert(now, seq, stored);
        }
    }

    /// The packet sent as `seq`, if it is kept and may be resent now (not within one RTT
    /// of its last resend, not too often); the consumer writes it again and hands it to
    /// [`SendStream::wrap_retransmission`].
    pub fn resend(&mut self, now: Instant, seq: u16) -> Option<StoredRef> {
        self.buffer.as_mut().and_then(|b| b.resend(now, seq))
    }

    /// Turns the rewritten packet `seq` in `out` into its retransmission: an RTX packet
    /// (RFC 4588 §4: RTX SSRC, payload type and sequence number, the original sequence
    /// number first in the payload) where RTX was negotiated, else the packet as it was.
    pub fn wrap_retransmission(&mut self, seq: u16, out: &mut Vec<u8>) -> bool {
        let header_len = {
            let Ok(mut p) = RtpPacket::parse(&mut out[..]) else {
                return false;
            };
            if let Some((rtx_ssrc, rtx_pt, next)) = self.rtx.as_mut() {
                p.set_ssrc(*rtx_ssrc);
                p.set_payload_type(*rtx_pt);
                p.set_sequence_number(*next);
                *next = next.wrapping_add(1);
            }
            p.header_len()
        };
        if self.rtx.is_some() {
            out.splice(header_len..header_len, seq.to_be_bytes());
        }
        self.retransmitted += 1;
        self.repaired += 1;
        true
    }

    /// The RTP timestamp matching `now` on this stream's clock (for an SR): the newest
    /// sent timestamp advanced by the time since it was sent.
    pub fn rtp_time_at(&self, now: Instant) -> Option<u32> {
        let (ts, at) = self.last?;
        Some(ts.wrapping_add(rtp_ticks(
            now.saturating_duration_since(at),
            self.clock_rate,
        )))
    }

    /// An SR with NTP time `ntp` (64-bit) is being sent now: remember it for the RTT.
    pub fn on_sr_sent(&mut self, now: Instant, ntp: u64) {
        let middle = (ntp >> 16) as u32;
        self.sent_srs.rotate_right(1);
        self.sent_srs[0] = (middle, Some(now));
    }

    /// A receiver report block about this stream arrived: RTT (RFC 3550 §6.4.1, from
    /// LSR/DLSR) and score. Returns the new score if it changed.
    pub fn on_receiver_report(&mut self, now: Instant, r: ReportFigures) -> Option<u8> {
        if r.last_sr != 0
            && let Some(sent_at) = self
                .sent_srs
                .iter()
                .find(|(m, at)| *m == r.last_sr && at.is_some())
                .and_then(|(_, at)| *at)
        {
            let dlsr = Duration::from_secs_f64(f64::from(r.delay_since_last_sr) / 65536.0);
            let rtt = now.saturating_duration_since(sent_at).saturating_sub(dlsr);
            self.rtt = Some(rtt);
            if let Some(b) = self.buffer.as_mut() {
                b.set_rtt(rtt);
            }
        }
        self.reported_lost = r.cumulative_lost;
        self.reported_fraction = Some((r.fraction_lost, now));
        self.score.on_receiver_report(
            self.packets,
            r.cumulative_lost,
            self.repaired,
            self.retransmitted,
        )
    }

    /// The receiver's fraction lost (1/256) of its last report, if within
    /// [`FRACTION_LOST_FRESH`] of `now`.
    pub fn fresh_fraction_lost(&self, now: Instant) -> Option<u8> {
        self.reported_fraction
            .filter(|(_, at)| now.saturating_duration_since(*at) < FRACTION_LOST_FRESH)
            .map(|(f, _)| f)
    }

    /// Forgets what was sent before a pause (nothing kept is worth resending after).
    pub fn clear(&mut self) {
        if let Some(b) = self.buffer.as_mut() {
            b.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x90, 101];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&555u32.to_be_bytes());
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x51, 0, 7, 0]); // tcc id 5 = 7
        p.extend_from_slice(&[1, 2, 3, 4]);
        p
    }

    /// What the consumer does with a NACKed number: takes the kept source, writes it
    /// again (here: the sent packet, rebuilt), and wraps it.
    fn resend(s: &mut SendStream, now: Instant, seq: u16, out: &mut Vec<u8>) -> bool {
        let Some(stored) = s.resend(now, seq) else {
            return false;
        };
        *out = packet(seq, stored.timestamp);
        s.wrap_retransmission(seq, out)
    }

    /// A reference to packet `i` of producer stream 0's store.
    fn stored(i: u16, ts: u32) -> Option<StoredRef> {
        Some(StoredRef {
            store: 0,
            seq: 70_000 + u32::from(i),
            timestamp: ts,
            len: 30,
        })
    }

    #[test]
    fn keeps_references_and_answers_nacks_over_rtx_once_per_rtt() {
        let t0 = Instant::now();
        let mut s = SendStream::new(
            555,
            90_000,
            Some(RetransmissionBufferConfig::video()),
            Some((666, 102)),
        );
        for i in 0..10u16 {
            let ts = 3000 * u32::from(i);
            s.on_sent(t0, 100 + i, ts, 4, stored(i, ts));
        }
        assert_eq!((s.packets, s.octets), (10, 40));
        let r = s.resend(t0, 104).unwrap();
        assert_eq!(r.seq, 70_004, "where the router's packet is");
        assert_eq!(r.timestamp, 12_000, "the timestamp it was sent with");
        let mut out = packet(104, 12_000);
        assert!(s.wrap_retransmission(104, &mut out));
        let p = RtpPacket::parse(&out[..]).unwrap();
        assert_eq!(
            (p.ssrc(), p.payload_type(), p.sequence_number()),
            (666, 102, 0)
        );
        assert_eq!(p.payload(), &[0, 104, 1, 2, 3, 4], "OSN, then the payload");
        assert_eq!(p.timestamp(), 12_000);
        // Within an RTT: not again; after: yes, with the next RTX number.
        assert!(!resend(
            &mut s,
            t0 + Duration::from_millis(50),
            104,
            &mut out
        ));
        assert!(resend(
            &mut s,
            t0 + Duration::from_millis(150),
            104,
            &mut out
        ));
        assert_eq!(RtpPacket::parse(&out[..]).unwrap().sequence_number(), 1);
        // Never sent, or too old: nothing.
        assert!(!resend(&mut s, t0, 99, &mut out));
        assert!(!resend(&mut s, t0 + Duration::from_secs(3), 105, &mut out));
        assert_eq!(s.retransmitted, 2);
        s.clear();
        assert!(
            s.resend(t0 + Duration::from_secs(1), 106).is_none(),
            "cleared"
        );
    }

    #[test]
    fn without_rtx_the_packet_is_resent_as_it_was() {
        let t0 = Instant::now();
        let mut s = SendStream::new(555, 90_000, Some(RetransmissionBufferConfig::video()), None);
        s.on_sent(t0, 7, 1, 4, stored(7, 1));
        let mut out = Vec::new();
        assert!(resend(&mut s, t0, 7, &mut out));
        assert_eq!(out, packet(7, 1));
        // Audio without NACK keeps nothing.
        let mut a = SendStream::new(1, 48_000, None, None);
        a.on_sent(t0, 7, 1, 4, stored(7, 1));
        assert!(!resend(&mut a, t0, 7, &mut out));
        assert_eq!(a.packets, 1);
    }

    #[test]
    fn rtp_clock_rtt_and_score_from_reports() {
        let t0 = Instant::now();
        let mut s = SendStream::new(555, 90_000, Some(RetransmissionBufferConfig::video()), None);
        assert_eq!(s.rtp_time_at(t0), None);
        for i in 0..100u16 {
            s.on_sent(t0, i, 1000, 4, None);
        }
        assert_eq!(s.rtp_time_at(t0 + Duration::from_millis(100)), Some(10_000));
        let ntp: u64 = 0x0123_4567_89ab_cdef;
        s.on_sr_sent(t0, ntp);
        // Report 150 ms later, the receiver held the SR 100 ms: RTT 50 ms.
        let score = s.on_receiver_report(
            t0 + Duration::from_millis(150),
            ReportFigures {
                cumulative_lost: 50,
                last_sr: 0x4567_89ab,
                delay_since_last_sr: 6554, // 100 ms
                fraction_lost: 85,
            },
        );
        let rtt = s.rtt().unwrap();
        assert!(
            rtt > Duration::from_millis(49) && rtt < Duration::from_millis(51),
            "{rtt:?}"
        );
        // Half the packets lost: the score falls.
        assert!(score.is_some_and(|v| v < 10), "{score:?}");
        assert_eq!(s.score(), score.unwrap());
        // The fraction lost is kept while fresh.
        assert_eq!(
            s.fresh_fraction_lost(t0 + Duration::from_secs(10)),
            Some(85)
        );
        assert_eq!(
            s.fresh_fraction_lost(t0 + FRACTION_LOST_FRESH + Duration::from_secs(1)),
            None
        );
    }
}
