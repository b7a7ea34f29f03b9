//! What a producer's stream receives, for the reports and requests the SFU sends back:
//! reception statistics for receiver report blocks (RFC 3550 §6.4.1 and §A.3, jitter
//! §A.8), the sender's last SR (for LSR/DLSR and the NTP/RTP mapping), NACKs for gaps
//! (RFC 4585 §6.2.1, mediasoup's `NackGenerator`) and the stream's score (mediasoup's
//! `RtpStreamRecv`).

use std::time::{Duration, Instant};

use kolabmeet_net::rtcp::ReportBlockData;

use crate::rtp_stream::{NackGenerator, SeqUnwrapper, StreamScore, rtp_ticks};

/// Reception state of one producer stream.
#[derive(Debug)]
pub struct RecvStats {
    clock_rate: u32,
    unwrapper: SeqUnwrapper,
    base: Option<u64>,
    /// The first packet: its unwrapped and its raw sequence number (the extended numbers
    /// of reports start from the raw one, RFC 3550 §A.1).
    first: Option<(u64, u16)>,
    /// Media packets received, and RTX packets that filled a gap.
    pub received: u64,
    /// RTX packets received.
    pub retransmitted: u64,
    /// Packets that arrived over RTX and filled a gap (also counted in `received`).
    pub repaired: u64,
    prior_expected: u64,
    prior_received: u64,
    /// Losses reported beyond the stream's own: the intervals in which a worse loss of
    /// its receivers was reported instead (see [`RecvStats::report_with_remote_loss`]).
    remote_extra_lost: u64,
    /// RFC 3550 §A.8, scaled by 16 as in the RFC's integer form.
    jitter_q4: u32,
    /// Transit time of the previous packet (arrival in clock units minus timestamp).
    last_transit: Option<u32>,
    epoch: Option<Instant>,
    /// Last SR: NTP (64 bits), its RTP time, and when it arrived.
    pub last_sr: Option<(u64, u32, Instant)>,
    nack: Option<NackGenerator>,
    score: StreamScore,
}

impl RecvStats {
    /// Statistics of a stream at `clock_rate`; `nack` when the sender accepts NACKs.
    pub fn new(clock_rate: u32, nack: bool) -> Self {
        RecvStats {
            clock_rate: clock_rate.max(1),
            unwrapper: SeqUnwrapper::new(),
            base: None,
            first: None,
            received: 0,
            retransmitted: 0,
            repaired: 0,
            prior_expected: 0,
            prior_received: 0,
            remote_extra_lost: 0,
            jitter_q4: 0,
            last_transit: None,
            epoch: None,
            last_sr: None,
            nack: nack.then(NackGenerator::default),
            score: StreamScore::new(10),
        }
    }

    /// The stream's score (0-10).
    pub fn score(&self) -> u8 {
        self.score.score()
    }

    /// A media packet (`seq`, RTP timestamp `ts`) arrived now. Returns whether the gap
    /// it revealed is too large to repair by NACK, so a key frame is needed.
    pub fn on_packet(&mut self, now: Instant, seq: u16, ts: u32, key_frame: bool) -> bool {
        let ext = self.unwrapper.unwrap(seq);
        self.base = Some(self.base.map_or(ext, |b| b.min(ext)));
        self.first.get_or_insert((ext, seq));
        self.received += 1;
        let epoch = *self.epoch.get_or_insert(now);
        // RFC 3550 §A.8: arrival and timestamp in the same units, modulo 2^32.
        let arrival = rtp_ticks(now.saturating_duration_since(epoch), self.clock_rate);
        let transit = arrival.wrapping_sub(ts);
        if let Some(last) = self.last_transit {
            let d = (transit.wrapping_sub(last) as i32)
                .unsigned_abs()
                .min(u32::MAX >> 4);
            // J += (|D| - J) / 16, in the RFC's Q4 form.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
        self.nack
            .as_mut()
            .is_some_and(|n| n.received(now, seq, key_frame, false).key_frame_required)
    }

    /// A packet recovered over RTX arrived now. One that fills a gap counts as
    /// received (RFC 3550 §6.4.1: the loss reported is what never arrived, however it
    /// came), and as repaired for the score; a duplicate counts only as retransmitted.
    /// Returns whether it filled a gap (only then is it news to the consumers).
    pub fn on_retransmission(&mut self, now: Instant, seq: u16, key_frame: bool) -> bool {
        self.retransmitted += 1;
        let filled = self
            .nack
            .as_mut()
            .is_some_and(|n| n.received(now, seq, key_frame, true).filled_gap);
        if filled {
            self.received += 1;
            self.repaired += 1;
        }
        filled
    }

    /// The sender's SR arrived now.
    pub fn on_sender_report(&mut self, now: Instant, ntp: u64, rtp_time: u32) {
        self.last_sr = Some((ntp, rtp_time, now));
    }

    /// The sequence numbers to NACK now.
    pub fn poll_nacks(&mut self, now: Instant, out: &mut Vec<u16>) {
        if let Some(n) = self.nack.as_mut() {
            n.poll_nacks(now, out);
        }
    }

    /// When NACKs may next be due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.nack.as_ref().and_then(NackGenerator::poll_timeout)
    }

    /// Sets the round trip time the NACK retries wait for.
    pub fn set_rtt(&mut self, rtt: Duration) {
        if let Some(n) = self.nack.as_mut() {
            n.set_rtt(rtt);
        }
    }

    /// The receiver report block about this stream (the sender's `ssrc`) now, which also
    /// closes an interval of the score. `None` before the first packet. The score's
    /// change comes second.
    pub fn report(&mut self, now: Instant, ssrc: u32) -> Option<(ReportBlockData, Option<u8>)> {
        self.report_with_remote_loss(now, ssrc, 0)
    }

    /// [`RecvStats::report`], reporting `remote` (fraction lost in 1/256, the worst its
    /// receivers reported) when that is worse than the stream's own loss, with the
    /// cumulative count grown by as much (it never goes back): an Opus sender with in-band
    /// FEC negotiated turns its FEC on by the loss it is told of (libwebrtc reads the loss
    /// from the cumulative counts), and without this it hears only of its own uplink's.
    /// mediasoup's `RtpStreamRecv` does the same for `useinbandfec=1` streams.
    pub fn report_with_remote_loss(
        &mut self,
        now: Instant,
        ssrc: u32,
        remote: u8,
    ) -> Option<(ReportBlockData, Option<u8>)> {
        let base = self.base?;
        let highest = self.unwrapper.max()?;
        let expected = highest - base + 1;
        let lost = expected.saturating_sub(self.received);
        let expected_interval = expected.saturating_sub(self.prior_expected);
        let received_interval = self.received.saturating_sub(self.prior_received);
        self.prior_expected = expected;
        self.prior_received = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let own_fraction = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8);
        let fraction_lost = own_fraction.max(remote);
        if remote > own_fraction {
            let remote_interval = (u64::from(remote) * expected_interval) >> 8;
            self.remote_extra_lost += remote_interval.saturating_sub(lost_interval);
        }
        let lost = lost + self.remote_extra_lost;
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((ntp, _, at)) => {
                let d = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
                ((ntp >> 16) as u32, d.min(f64::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        let score = self.score.on_receive_interval(
            expected,
            self.received,
            self.repaired,
            self.retransmitted,
        );
        Some((
            ReportBlockData {
                ssrc,
                fraction_lost,
                cumulative_lost: lost.min(0x7f_ffff) as i32,
                highest_seq: self
                    .first
                    .map_or(0, |(ext, raw)| (highest - ext + u64::from(raw)) as u32),
                jitter: self.jitter_q4 >> 4,
                last_sr,
                delay_since_last_sr,
            },
            score,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_and_nacks_gaps() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000, true);
        assert!(s.report(t0, 1).is_none());
        // 65530..=65535 then 0..=9 with 2, 3 and 4 lost: across the wrap.
        let seqs: Vec<u16> = (65530..=65535).chain([0, 1]).chain(5..10).collect();
        for (i, seq) in seqs.iter().enumerate() {
            let at = t0 + Duration::from_millis(10 * i as u64);
            s.on_packet(at, *seq, 900 * i as u32, false);
        }
        let later = t0 + Duration::from_millis(200);
        let mut nacks = Vec::new();
        s.poll_nacks(later, &mut nacks);
        assert_eq!(nacks, vec![2, 3, 4]);
        let (b, _) = s.report(later, 1).unwrap();
        assert_eq!(b.highest_seq, 65536 + 9);
        assert_eq!(b.cumulative_lost, 3);
        assert_eq!(b.fraction_lost, (3 * 256 / 16) as u8);
        assert_eq!(b.jitter, 0, "packets exactly on their clock");
        assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0));
        // No new loss in the next interval: fraction 0, cumulative stays.
        for seq in 10..20u16 {
            s.on_packet(later, seq, 0, false);
        }
        let (b, _) = s.report(later, 1).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 3));
    }

    #[test]
    fn a_worse_remote_loss_is_reported_and_the_cumulative_count_grows_by_it() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(48_000, false);
        // 100 packets, none lost; the receivers lost 5 % (13/256).
        for seq in 0..100u16 {
            s.on_packet(t0, seq, 0, false);
        }
        let (b, _) = s.report_with_remote_loss(t0, 1, 13).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost), (13, 5));
        // Next interval: 100 more with 10 of its own lost (26/256) beat the remote 13.
        for seq in (100..200u16).filter(|q| q % 10 != 0) {
            s.on_packet(t0, seq, 0, false);
        }
        let (b, _) = s.report_with_remote_loss(t0, 1, 13).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost), (25, 15));
        // No remote loss: its own, and the count never goes back.
        for seq in 200..300u16 {
            s.on_packet(t0, seq, 0, false);
        }
        let (b, _) = s.report_with_remote_loss(t0, 1, 0).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 15));
    }

    #[test]
    fn last_sr_and_delay_since() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(48_000, false);
        s.on_packet(t0, 1, 0, false);
        s.on_sender_report(t0, 0xaaaa_bbbb_cccc_dddd, 77);
        let (b, _) = s.report(t0 + Duration::from_millis(500), 1).unwrap();
        assert_eq!(b.last_sr, 0xbbbb_cccc);
        assert_eq!(b.delay_since_last_sr, 32768);
        let mut nacks = Vec::new();
        s.poll_nacks(t0 + Duration::from_secs(1), &mut nacks);
        assert!(nacks.is_empty(), "audio without NACK");
    }

    #[test]
    fn heavy_loss_lowers_the_score_and_jitter_grows_with_irregular_arrival() {
        let t0 = Instant::now();
        let mut s = RecvStats::new(90_000, false);
        let mut at = t0;
        for i in 0..100u16 {
            // Every other packet lost; arrivals 0 or 30 ms off their clock.
            at += Duration::from_millis(if i % 3 == 0 { 40 } else { 10 });
            s.on_packet(at, i * 2, u32::from(i) * 1800, false);
        }
        let (b, score) = s.report(at, 1).unwrap();
        assert!(b.jitter > 100, "{}", b.jitter);
        assert!(score.is_some_and(|v| v < 10), "{score:?}");
        assert!(s.score() < 10);
    }
}
