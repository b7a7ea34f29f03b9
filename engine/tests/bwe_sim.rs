//! The send-side bandwidth estimator against seeded network models in virtual time
//! (issue 9), in the spirit of str0m's `tests/bwe`: a sender paced at the estimate, a path
//! ([`LinkModel`]), a receiver writing real transport-cc feedback (the engine's own
//! `TwccFeedback`, the same bytes a browser's would carry) every 100 ms, read back through
//! the `net` RTCP view into [`SendSideBwe`]. Each test prints its adaptation times beside
//! str0m's thresholds (`cargo test -p kolabmeet-engine --test bwe_sim -- --nocapture`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kolabmeet_engine::bwe::{Bitrate, BweConfig, PROBE_PACKET, ProbePlan, SendSideBwe};
use kolabmeet_engine::transport::TwccFeedback;
use kolabmeet_net::rtcp::{RtcpPacket, packets};
use kolabmeet_testkit::LinkModel;

/// Bytes per media packet.
const PACKET: usize = 1200;
/// The simulation's step.
const STEP: Duration = Duration::from_millis(1);

/// A sender, a path and a receiver in virtual time.
struct Sim {
    t0: Instant,
    now: Instant,
    bwe: SendSideBwe,
    link: LinkModel,
    receiver: TwccFeedback,
    seq: u16,
    next_send: Instant,
    in_flight: VecDeque<(Instant, u16)>,
    feedback: VecDeque<(Instant, Vec<u8>)>,
    /// The estimate every 100 ms.
    trace: Vec<(Duration, Bitrate)>,
    /// Probe padding scheduled: when, and its cluster.
    probes: VecDeque<(Instant, u32)>,
    /// Whether the sender follows the estimator's probe plans.
    probing: bool,
    /// The most the sender has to send (an application-limited sender), if anything.
    app_limit: Option<Bitrate>,
}

impl Sim {
    fn new(start: Bitrate, link: LinkModel) -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            bwe: SendSideBwe::new(BweConfig {
                start,
                min: Bitrate::kbps(30),
                max: Bitrate::mbps(30),
            }),
            link,
            receiver: TwccFeedback::new(),
            seq: 0,
            next_send: t0,
            in_flight: VecDeque::new(),
            feedback: VecDeque::new(),
            trace: Vec::new(),
            probes: VecDeque::new(),
            probing: false,
            app_limit: None,
        }
    }

    /// Sends the estimator's probe plans too (from the start).
    fn with_probing(mut self) -> Self {
        self.probing = true;
        let plans = self.bwe.start_probes(self.now);
        for p in plans {
            self.schedule(p);
        }
        self
    }

    fn schedule(&mut self, plan: ProbePlan) {
        let gap = Duration::from_nanos(PROBE_PACKET * 8 * 1_000_000_000 / plan.rate.bps().max(1));
        let start = self
            .probes
            .back()
            .map_or(self.now, |(t, _)| (*t + gap).max(self.now));
        for i in 0..plan.bytes.div_ceil(PROBE_PACKET) {
            self.probes.push_back((start + gap * i as u32, plan.id));
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Runs for `d`, sending at the estimate.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += STEP;
            while self.next_send <= self.now {
                self.seq = self.seq.wrapping_add(1);
                self.bwe.on_packet_sent(self.next_send, self.seq, PACKET);
                if let Some(at) = self.link.send(self.next_send, PACKET) {
                    self.in_flight.push_back((at, self.seq));
                }
                let rate = self
                    .app_limit
                    .map_or(self.bwe.estimate(), |l| l.min(self.bwe.estimate()))
                    .bps()
                    .max(1);
                self.next_send += Duration::from_nanos(PACKET as u64 * 8 * 1_000_000_000 / rate);
            }
            while self.probes.front().is_some_and(|(at, _)| *at <= self.now) {
                let (at, cluster) = self.probes.pop_front().unwrap();
                self.seq = self.seq.wrapping_add(1);
                self.bwe
                    .on_probe_sent(at, self.seq, PROBE_PACKET as usize, cluster);
                if let Some(arrival) = self.link.send(at, PROBE_PACKET as usize) {
                    self.in_flight.push_back((arrival, self.seq));
                }
            }
            while self
                .in_flight
                .front()
                .is_some_and(|(at, _)| *at <= self.now)
            {
                let (at, seq) = self.in_flight.pop_front().unwrap();
                self.receiver.on_packet(at, seq, 1234);
            }
            let mut out = Vec::new();
            self.receiver.poll_feedback(self.now, 1, &mut out);
            for p in out {
                // The feedback path: same delay, no loss.
                self.feedback.push_back((self.now + self.link.delay, p));
            }
            while self.feedback.front().is_some_and(|(at, _)| *at <= self.now) {
                let (_, p) = self.feedback.pop_front().unwrap();
                for packet in packets(&p) {
                    if let Ok(RtcpPacket::TransportCc(fb)) = packet {
                        self.bwe.on_transport_cc(self.now, &fb);
                    }
                }
                if self.probing
                    && let Some(plan) = self.bwe.next_probe()
                {
                    self.schedule(plan);
                }
            }
            if self.elapsed().as_millis().is_multiple_of(100) {
                self.trace.push((self.elapsed(), self.bwe.estimate()));
            }
        }
    }

    /// When the estimate first reached `rate` at or after `from`.
    fn reached(&self, rate: Bitrate, from: Duration) -> Option<Duration> {
        self.trace
            .iter()
            .find(|(t, r)| *t >= from && *r >= rate)
            .map(|(t, _)| *t - from)
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// str0m: from a 250 kbps start, at least 750 kbps within 20 s on a 30 Mbps link.
#[test]
fn ramps_up_from_250_kbps_on_a_30_mbps_link() {
    let mut sim = Sim::new(
        Bitrate::kbps(250),
        LinkModel::new(30_000_000, Duration::from_millis(25), 1),
    );
    sim.run(Duration::from_secs(30));
    let t = sim.reached(Bitrate::kbps(750), Duration::ZERO);
    println!(
        "bwe: 250 kbps start, 30 Mbps link: 750 kbps after {} (str0m's threshold: 20 s); {} after 30 s",
        secs(t),
        sim.bwe.estimate()
    );
    assert!(
        t.is_some_and(|t| t <= Duration::from_secs(20)),
        "{:?}",
        sim.trace
    );
}

/// The same with probing at the start (three and six times the start rate, then twice
/// each successful result): the call need not climb 8 % a second.
#[test]
fn probing_ramps_up_in_seconds() {
    let mut sim = Sim::new(
        Bitrate::kbps(250),
        LinkModel::new(30_000_000, Duration::from_millis(25), 1),
    )
    .with_probing();
    sim.run(Duration::from_secs(20));
    let t750 = sim.reached(Bitrate::kbps(750), Duration::ZERO);
    let t3m = sim.reached(Bitrate::mbps(3), Duration::ZERO);
    println!(
        "bwe: with probing, 250 kbps start, 30 Mbps link: 750 kbps after {}, 3 Mbps after {} (str0m: 750 kbps within 20 s); {} after 20 s; queue drops {}",
        secs(t750),
        secs(t3m),
        sim.bwe.estimate(),
        sim.link.queue_drops
    );
    assert!(
        t750.is_some_and(|t| t <= Duration::from_secs(3)),
        "{:?}",
        &sim.trace[..30]
    );
}

/// Probing on a narrow path does not overshoot it: a 1 Mbps link stays near 1 Mbps.
#[test]
fn probing_does_not_overshoot_a_narrow_link() {
    let mut sim = Sim::new(
        Bitrate::kbps(300),
        LinkModel::new(1_000_000, Duration::from_millis(25), 6),
    )
    .with_probing();
    sim.run(Duration::from_secs(20));
    let est = sim.bwe.estimate();
    println!(
        "bwe: with probing, 300 kbps start, 1 Mbps link: {est} after 20 s, queue drops {}",
        sim.link.queue_drops
    );
    assert!(
        est <= Bitrate::kbps(1200) && est >= Bitrate::kbps(500),
        "{est}"
    );
}

/// str0m: after a 10 Mbps -> 800 kbps cut, at least 500 kbps after 5 s, and back to at
/// least 3 Mbps within 40 s once restored. Also: the cut is followed (not above the link
/// for long) and the queue does not overflow for long.
#[test]
fn follows_a_capacity_cut_and_recovers() {
    let mut sim = Sim::new(
        Bitrate::mbps(2),
        LinkModel::new(10_000_000, Duration::from_millis(25), 2),
    );
    sim.run(Duration::from_secs(40));
    let before = sim.bwe.estimate();
    let cut_at = sim.elapsed();
    sim.link.capacity_bps = 800_000;
    sim.run(Duration::from_secs(5));
    let after_5s = sim.bwe.estimate();
    let drops_during_cut = sim.link.queue_drops;
    sim.run(Duration::from_secs(15));
    let settled = sim.bwe.estimate();
    let restored_at = sim.elapsed();
    sim.link.capacity_bps = 10_000_000;
    sim.run(Duration::from_secs(45));
    let back = sim.reached(Bitrate::mbps(3), restored_at);
    if std::env::var("BWE_TRACE").is_ok() {
        for (t, r) in sim.trace.iter().filter(|(t, _)| *t >= cut_at) {
            println!("{:.1} {r}", t.as_secs_f64());
        }
    }
    println!(
        "bwe: 10 Mbps link: {before} after 40 s; cut to 800 kbps at {:.0} s: {after_5s} 5 s later (str0m: >= 500 kbps), {settled} after 20 s; restored: 3 Mbps after {} (str0m: 40 s); queue drops during the cut: {drops_during_cut}",
        cut_at.as_secs_f64(),
        secs(back)
    );
    assert!(before >= Bitrate::mbps(5), "{before}");
    assert!(after_5s >= Bitrate::kbps(500), "{after_5s}");
    assert!(settled <= Bitrate::kbps(1000), "follows the cut: {settled}");
    assert!(back.is_some_and(|t| t <= Duration::from_secs(40)));
}

/// 5 % random loss without queueing (a lossy radio link): the loss-based control holds,
/// it does not collapse the estimate (NACK and RTX repair such losses).
#[test]
fn random_loss_alone_does_not_collapse_the_estimate() {
    let mut link = LinkModel::new(5_000_000, Duration::from_millis(20), 3);
    link.loss = 0.05;
    let mut sim = Sim::new(Bitrate::mbps(1), link);
    sim.run(Duration::from_secs(30));
    let est = sim.bwe.estimate();
    println!(
        "bwe: 5 Mbps link with 5 % random loss: {est} after 30 s from 1 Mbps (loss seen {:.1} %)",
        sim.bwe.loss() * 100.0
    );
    assert!(est >= Bitrate::mbps(1), "{est}");
}

/// 15 % burst loss: the loss-based control cuts the estimate.
#[test]
fn heavy_burst_loss_cuts_the_estimate() {
    let mut link = LinkModel::new(5_000_000, Duration::from_millis(20), 4);
    link.burst = Some((0.03, 0.15));
    let mut sim = Sim::new(Bitrate::mbps(2), link);
    sim.run(Duration::from_secs(20));
    let est = sim.bwe.estimate();
    println!(
        "bwe: 5 Mbps link with burst loss ({} of the packets lost): {est} after 20 s from 2 Mbps",
        sim.link.random_drops
    );
    assert!(est < Bitrate::mbps(2), "{est}");
}

/// Jitter of up to 10 ms per packet on a roomy link: no false over-use that would pin the
/// estimate. (Measured, not asserted: with 20 or 30 ms of independent per-packet jitter the
/// trendline sees over-use and the estimate stays under 1 Mbps; printed below.)
#[test]
fn jitter_alone_is_not_congestion() {
    let run = |jitter_ms: u64| {
        let mut link = LinkModel::new(20_000_000, Duration::from_millis(30), 5);
        link.jitter = Duration::from_millis(jitter_ms);
        let mut sim = Sim::new(Bitrate::kbps(500), link);
        sim.run(Duration::from_secs(30));
        let est = sim.bwe.estimate();
        println!("bwe: 20 Mbps link with {jitter_ms} ms jitter: {est} after 30 s from 500 kbps");
        est
    };
    let est = run(10);
    assert!(est >= Bitrate::mbps(2), "{est}");
    run(30);
}

/// A sender that goes quiet (a trial's padding stopped, a camera between frames) while a
/// queue builds elsewhere on the path: the over-use cut starts from what the link carried
/// over the last second, smoothed, not from the quiet moment (before 2026-12-07 it went to
/// 0.85 times the last 500 ms: 1.2 Mbit/s to 180-250 kbit/s within a second in the
/// Chromium jitter test).
#[test]
fn a_quiet_moment_is_not_the_links_rate() {
    let mut sim = Sim::new(
        Bitrate::kbps(1500),
        LinkModel::new(5_000_000, Duration::from_millis(20), 9),
    );
    sim.run(Duration::from_secs(5));
    let before = sim.bwe.estimate();
    sim.app_limit = Some(Bitrate::kbps(200));
    // 150 ms of queue building over 1.5 s, not of our making.
    for _ in 0..150 {
        sim.link.delay += Duration::from_millis(1);
        sim.run(Duration::from_millis(10));
    }
    let after = sim.bwe.estimate();
    println!("bwe: sending {before} then 200 kbps while a queue builds: {after}");
    assert!(after < before, "the queue was seen: {before} -> {after}");
    assert!(
        after >= Bitrate::kbps(300),
        "cut below what the link carried: {after}"
    );
}

/// Hostile feedback: random bytes shaped as transport-cc, lies about arrival times,
/// numbers never sent, wraps and floods cannot push the estimate out of its bounds or
/// panic.
#[test]
fn hostile_feedback_keeps_the_estimate_in_bounds() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let t0 = Instant::now();
    let config = BweConfig {
        start: Bitrate::kbps(300),
        min: Bitrate::kbps(30),
        max: Bitrate::mbps(30),
    };
    let mut bwe = SendSideBwe::new(config);
    let mut now = t0;
    let mut seq = 0u16;
    for round in 0..20_000u32 {
        now += Duration::from_millis(1);
        for _ in 0..3 {
            seq = seq.wrapping_add(1);
            bwe.on_packet_sent(now, seq, 1200);
        }
        // A transport-cc packet: real header, random base, count, reference and chunks.
        let mut p = vec![0x8f, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        let body_words = rng.random_range(2..40usize);
        let mut body = vec![0u8; body_words * 4];
        rng.fill(&mut body[..]);
        if round % 2 == 0 {
            // A plausible base near what was sent.
            body[0..2].copy_from_slice(&seq.wrapping_sub(rng.random_range(0..200)).to_be_bytes());
        }
        p.extend_from_slice(&body);
        let words = (p.len() / 4 - 1) as u16;
        p[2..4].copy_from_slice(&words.to_be_bytes());
        for packet in packets(&p) {
            if let Ok(RtcpPacket::TransportCc(fb)) = packet {
                bwe.on_transport_cc(now, &fb);
            }
        }
        if round % 97 == 0 {
            bwe.on_remb(now, rng.random());
        }
        let e = bwe.estimate();
        assert!(e >= config.min && e <= config.max, "{e} at round {round}");
    }
    println!(
        "bwe: 20,000 hostile feedback packets: estimate {} (bounds 30 kbps - 30 Mbps), {} reports of unknown numbers ignored",
        bwe.estimate(),
        bwe.unknown_reports()
    );
}
