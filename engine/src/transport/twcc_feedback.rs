//! Transport-wide congestion control feedback towards senders
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): the receiving transport
//! records when each packet with a transport-wide sequence number arrived and reports
//! the arrivals every [`FEEDBACK_INTERVAL`], so the browser's send-side bandwidth
//! estimation can work (without it, Chromium lowers its estimate to a minimum and drops
//! its upper simulcast layers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rtp_stream::SeqUnwrapper;

/// How often feedback is sent while packets arrive.
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(100);
/// Arrivals kept unreported at most (older ones are dropped first).
const MAX_PENDING: usize = 2048;
/// Packet statuses in one feedback packet at most.
const MAX_STATUSES: usize = 1000;
/// RTPFB (RFC 4585 §6.1) and its transport-cc FMT.
const PT_RTPFB: u8 = 205;
const FMT_TRANSPORT_CC: u8 = 15;

/// One 250 µs receive-delta tick, the unit of the feedback's deltas.
const TICK_US: i64 = 250;

/// Records arrivals and writes transport-cc feedback packets.
#[derive(Debug, Default)]
pub struct TwccFeedback {
    /// Arrival time (µs since `epoch`) by extended sequence number.
    arrivals: BTreeMap<i64, i64>,
    /// Transport-wide sequence numbers extended to 64 bits; its maximum is the highest
    /// seen.
    seqs: SeqUnwrapper,
    /// The first sequence number the next feedback starts at.
    next_base: Option<i64>,
    epoch: Option<Instant>,
    media_ssrc: u32,
    fb_count: u8,
    due: Option<Instant>,
}

impl TwccFeedback {
    /// A recorder with nothing received.
    pub fn new() -> Self {
        Self::default()
    }

    /// A packet with transport-wide sequence number `seq` arrived from the sender's
    /// stream `media_ssrc`.
    pub fn on_packet(&mut self, now: Instant, seq: u16, media_ssrc: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        let mut ext = self.seqs.peek(seq) as i64;
        if let Some(base) = self.next_base {
            if ext < base - MAX_STATUSES as i64 {
                // Far behind what was reported: the sender restarted its numbering
                // (a new sender behind the same transport). Start over from it.
                self.arrivals.clear();
                self.seqs.reset();
                ext = self.seqs.peek(seq) as i64;
                self.next_base = Some(ext);
            } else if ext < base {
                return; // already reported (or lost and given up on)
            }
        }
        self.seqs.unwrap(seq);
        self.next_base.get_or_insert(ext);
        let at = now.saturating_duration_since(epoch).as_micros() as i64;
        self.arrivals.entry(ext).or_insert(at);
        while self.arrivals.len() > MAX_PENDING {
            self.arrivals.pop_first();
            self.next_base = self.arrivals.first_key_value().map(|(k, _)| *k);
        }
        self.media_ssrc = media_ssrc;
        self.due.get_or_insert(now + FEEDBACK_INTERVAL);
    }

    /// When feedback is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    /// Writes the feedback packets that are due into `out` (each a complete RTCP packet);
    /// returns how many.
    pub fn poll_feedback(
        &mut self,
        now: Instant,
        sender_ssrc: u32,
        out: &mut Vec<Vec<u8>>,
    ) -> usize {
        if self.due.is_none_or(|d| now < d) {
            return 0;
        }
        self.due = None;
        let mut n = 0;
        while !self.arrivals.is_empty() && n < 8 {
            match self.write_one(sender_ssrc) {
                Some(p) => {
                    out.push(p);
                    n += 1;
                }
                None => break,
            }
        }
        if !self.arrivals.is_empty() {
            self.due = Some(now + FEEDBACK_INTERVAL);
        }
        n
    }

    /// Writes one feedback packet covering sequence numbers from `next_base`, and forgets
    /// what it reported.
    fn write_one(&mut self, sender_ssrc: u32) -> Option<Vec<u8>> {
        let mut base = self.next_base?;
        let (&first, &first_at) = self.arrivals.range(base..).next()?;
        if first - base >= MAX_STATUSES as i64 {
            // A gap longer than one packet can describe (the sender jumped ahead, or a
            // burst was lost whole): report from the first arrival after it, so feedback
            // resumes at once; the numbers in the gap are never acknowledged, which the
            // sender's estimator treats like any unreported packet.
            base = first;
        }
        // Reference time: 64 ms units, 24 bits; deltas run from it.
        let reference = first_at / 64_000;
        let mut prev_ticks = reference * 64_000 / TICK_US;
        let last = self.seqs.max()? as i64;
        let mut symbols: Vec<u8> = Vec::new(); // 0 not received, 1 small, 2 large
        let mut deltas: Vec<u8> = Vec::new();
        let mut seq = base;
        while seq <= last && symbols.len() < MAX_STATUSES {
            match self.arrivals.get(&seq) {
                None => symbols.push(0),
                Some(&at) => {
                    let ticks = at / TICK_US;
                    let delta = ticks - prev_ticks;
                    if (0..=255).contains(&delta) {
                        symbols.push(1);
                        deltas.push(delta as u8);
                    } else if let Ok(d) = i16::try_from(delta) {
                        symbols.push(2);
                        deltas.extend_from_slice(&d.to_be_bytes());
                    } else {
                        break; // the next feedback packet takes it, with its own reference
                    }
                    prev_ticks = ticks;
                }
            }
            seq += 1;
        }
        // Trailing losses are not reported yet: they may still arrive.
        while symbols.last() == Some(&0) {
            symbols.pop();
            seq -= 1;
        }
        if symbols.is_empty() {
            return None;
        }
        let mut p = Vec::with_capacity(20 + symbols.len() / 7 * 2 + deltas.len() + 4);
        p.extend_from_slice(&[0x80 | FMT_TRANSPORT_CC, PT_RTPFB, 0, 0]);
        p.extend_from_slice(&sender_ssrc.to_be_bytes());
        p.extend_from_slice(&self.media_ssrc.to_be_bytes());
        p.extend_from_slice(&(base as u16).to_be_bytes());
        p.extend_from_slice(&(symbols.len() as u16).to_be_bytes());
        let r = (reference as u32) & 0x00ff_ffff;
        p.extend_from_slice(&[(r >> 16) as u8, (r >> 8) as u8, r as u8, self.fb_count]);
        self.fb_count = self.fb_count.wrapping_add(1);
        // Status vector chunks with 2-bit symbols: T=1, S=1, seven symbols.
        for chunk in symbols.chunks(7) {
            let mut v: u16 = 0xc000;
            for (i, s) in chunk.iter().enumerate() {
                v |= u16::from(*s) << (12 - 2 * i);
            }
            p.extend_from_slice(&v.to_be_bytes());
        }
        p.extend_from_slice(&deltas);
        let pad = (4 - p.len() % 4) % 4;
        if pad > 0 {
            p.resize(p.len() + pad, 0);
            let len = p.len();
            p[len - 1] = pad as u8;
            p[0] |= 0x20;
        }
        let words = (p.len() / 4 - 1) as u16;
        p[2..4].copy_from_slice(&words.to_be_bytes());
        // Forget what was reported.
        self.arrivals = self.arrivals.split_off(&seq);
        self.next_base = Some(seq);
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a feedback packet written above with the `net` view (which checks it):
    /// (base, statuses, deltas in ticks). A delta that fits a byte was written small.
    fn decode(p: &[u8]) -> (u16, Vec<u8>, Vec<i64>) {
        let mut all = kolabmeet_net::rtcp::packets(p);
        let Some(Ok(kolabmeet_net::rtcp::RtcpPacket::TransportCc(t))) = all.next() else {
            panic!("not a transport-cc packet: {p:?}");
        };
        assert!(all.next().is_none(), "one packet, no trailing bytes");
        let mut symbols = Vec::new();
        let mut deltas = Vec::new();
        for (_, d) in t.packets() {
            symbols.push(match d {
                None => 0,
                Some(d) if (0..=255).contains(&d) => 1,
                Some(_) => 2,
            });
            deltas.extend(d.map(i64::from));
        }
        (t.base_seq(), symbols, deltas)
    }

    #[test]
    fn reports_arrivals_losses_and_wraparound() {
        let t0 = Instant::now();
        let mut f = TwccFeedback::new();
        // 65534, 65535, (0 lost), 1, 2: across the wrap, 5 ms apart; 3 lost at the end.
        for (i, seq) in [65534u16, 65535, 1, 2].into_iter().enumerate() {
            f.on_packet(t0 + Duration::from_millis(5 * i as u64), seq, 77);
        }
        assert_eq!(f.poll_timeout(), Some(t0 + FEEDBACK_INTERVAL));
        let mut out = Vec::new();
        assert_eq!(
            f.poll_feedback(t0 + Duration::from_millis(50), 1, &mut out),
            0,
            "not due yet"
        );
        assert_eq!(f.poll_feedback(t0 + FEEDBACK_INTERVAL, 1, &mut out), 1);
        let (base, symbols, deltas) = decode(&out[0]);
        assert_eq!(base, 65534);
        assert_eq!(symbols, vec![1, 1, 0, 1, 1]);
        assert_eq!(deltas[1..], [20, 20, 20], "5 ms = 20 ticks");
        assert_eq!(
            u32::from_be_bytes([out[0][8], out[0][9], out[0][10], out[0][11]]),
            77
        );
        // Nothing more until new packets; the next feedback continues after 2.
        assert_eq!(f.poll_timeout(), None);
        f.on_packet(t0 + Duration::from_millis(400), 3, 77);
        out.clear();
        f.poll_feedback(t0 + Duration::from_millis(500), 1, &mut out);
        let (base, symbols, _) = decode(&out[0]);
        assert_eq!((base, symbols), (3, vec![1]));
        assert_eq!(out[0][19], 1, "feedback packet count increments");
    }

    #[test]
    fn large_and_negative_deltas_and_reordering() {
        let t0 = Instant::now();
        let mut f = TwccFeedback::new();
        f.on_packet(t0, 10, 1);
        f.on_packet(t0 + Duration::from_millis(200), 12, 1); // 800 ticks: large
        f.on_packet(t0 + Duration::from_millis(201), 11, 1); // late, earlier seq
        let mut out = Vec::new();
        f.poll_feedback(t0 + Duration::from_secs(1), 1, &mut out);
        let (_, symbols, deltas) = decode(&out[0]);
        assert_eq!(symbols, vec![1, 2, 2]);
        // 11 arrived at 201 ms after 10 (0 ms); 12 at 200 ms, 1 ms before 11.
        assert_eq!(deltas[1..], [804, -4]);
        // Already reported numbers are ignored.
        f.on_packet(t0 + Duration::from_secs(2), 10, 1);
        assert_eq!(f.poll_timeout(), None);
    }

    /// Issue 8: after a jump of more than 1,000 sequence numbers, feedback resumes with the
    /// next poll instead of stalling until 2,048 arrivals pushed the gap out.
    #[test]
    fn feedback_resumes_at_once_after_a_long_gap() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut f = TwccFeedback::new();
        for seq in 0..10u16 {
            f.on_packet(ms(u64::from(seq)), seq, 5);
        }
        let mut out = Vec::new();
        assert_eq!(f.poll_feedback(ms(100), 1, &mut out), 1);
        for (i, seq) in (1510..1520u16).enumerate() {
            f.on_packet(ms(200 + i as u64), seq, 5);
        }
        out.clear();
        assert_eq!(f.poll_feedback(ms(300), 1, &mut out), 1, "feedback at once");
        let (base, symbols, _) = decode(&out[0]);
        assert_eq!((base, symbols), (1510, vec![1; 10]));
        // A sender that restarts its numbering far behind is followed too.
        for (i, seq) in (100..105u16).enumerate() {
            f.on_packet(ms(400 + i as u64), seq, 5);
        }
        out.clear();
        assert_eq!(f.poll_feedback(ms(500), 1, &mut out), 1);
        let (base, symbols, _) = decode(&out[0]);
        assert_eq!((base, symbols), (100, vec![1; 5]));
    }

    #[test]
    fn bounded_under_floods() {
        let t0 = Instant::now();
        let mut f = TwccFeedback::new();
        for i in 0..20_000u32 {
            f.on_packet(
                t0 + Duration::from_micros(u64::from(i) * 100),
                (i * 7) as u16,
                1,
            );
        }
        assert!(f.arrivals.len() <= MAX_PENDING);
        let mut out = Vec::new();
        assert!(f.poll_feedback(t0 + Duration::from_secs(5), 1, &mut out) >= 1);
        for p in &out {
            decode(p);
        }
    }
}
