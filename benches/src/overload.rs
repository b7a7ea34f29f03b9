//! The overload run of `density-load` (issue 16, "Overload is shed by layer"): a worker
//! offered more than it forwards at saturation, then the load dropped. The receiver
//! thread files what arrives into one [`Second`] per second of the run; [`OverloadReport`]
//! turns them into the figures the issue asks for: audio loss, video consumers left with
//! nothing, added latency while overloaded, and how long after the drop the kept
//! meetings' video is back on the top layer.

use std::fmt::Write as _;

/// Added latency buckets of a second: 100 µs each, up to 100 ms (the last: beyond).
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 1001;

/// What arrived in one second of the run, at every receive transport.
#[derive(Clone)]
pub struct Second {
    /// Video packets of the kept meetings, by the layer they came from (r0, r1).
    pub kept_video: [u64; 2],
    /// Video packets of the meetings that stop at the drop, by layer.
    pub dropped_video: [u64; 2],
    /// Audio packets lost (gaps in the consumers' sequence numbers).
    pub audio_lost: u64,
    /// Audio packets received.
    pub audio_received: u64,
    /// Video consumers whose publisher was sending and which got no packet in this second.
    pub video_silent: u64,
    latency: Vec<u32>,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            kept_video: [0; 2],
            dropped_video: [0; 2],
            audio_lost: 0,
            audio_received: 0,
            video_silent: 0,
            latency: vec![0; BUCKETS],
        }
    }
}

impl Second {
    /// Records one packet's added latency.
    pub fn record_latency_ns(&mut self, ns: u64) {
        let b = ((ns / 1000) / BUCKET_US).min(BUCKETS as u64 - 1) as usize;
        self.latency[b] += 1;
    }

    /// The `q` quantile of the added latency in ms (bucket ceiling), if anything arrived.
    pub fn latency_ms(&self, q: f64) -> Option<f64> {
        quantile_ms(&self.latency, q)
    }

    /// The share of the kept meetings' video packets that came from the top layer.
    pub fn kept_top_share(&self) -> Option<f64> {
        let all = self.kept_video[0] + self.kept_video[1];
        (all > 0).then(|| self.kept_video[1] as f64 / all as f64)
    }
}

fn quantile_ms(buckets: &[u32], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().map(|&c| u64::from(c)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (i, &c) in buckets.iter().enumerate() {
        seen += u64::from(c);
        if seen >= rank {
            return Some((i as u64 + 1) as f64 * BUCKET_US as f64 / 1000.0);
        }
    }
    Some(BUCKETS as f64 * BUCKET_US as f64 / 1000.0)
}

/// The seconds of a run, grown as packets arrive (at most an hour).
#[derive(Default)]
pub struct Seconds {
    seconds: Vec<Second>,
}

impl Seconds {
    /// The bin of second `s` of the run.
    pub fn at(&mut self, s: usize) -> Option<&mut Second> {
        if s >= 3600 {
            return None;
        }
        if self.seconds.len() <= s {
            self.seconds.resize_with(s + 1, Second::default);
        }
        self.seconds.get_mut(s)
    }

    /// All seconds so far.
    pub fn all(&self) -> &[Second] {
        &self.seconds
    }
}

/// Tracks one video consumer's seconds with and without packets, and one audio
/// consumer's sequence gaps.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamSeconds {
    last_second: Option<usize>,
    next_seq: Option<u16>,
}

impl StreamSeconds {
    /// A video packet arrived in second `s`: the seconds since the last one that had none
    /// are counted as silent (from `from`, the first second that counts, on).
    pub fn on_video(&mut self, s: usize, from: usize, seconds: &mut Seconds) {
        self.count_silent(from, s, seconds);
        self.last_second = Some(self.last_second.map_or(s, |l| l.max(s)));
    }

    /// The run ended with this consumer's publisher sending until second `until`
    /// (exclusive): the trailing seconds without packets count as silent.
    pub fn finish_video(&self, from: usize, until: usize, seconds: &mut Seconds) {
        self.count_silent(from, until, seconds);
    }

    /// Counts as silent every second from the later of `from` and the one after the last
    /// with a packet, up to `until` (exclusive).
    fn count_silent(&self, from: usize, until: usize, seconds: &mut Seconds) {
        let start = self.last_second.map_or(from, |l| (l + 1).max(from));
        for silent in start..until {
            if let Some(b) = seconds.at(silent) {
                b.video_silent += 1;
            }
        }
    }

    /// An audio packet with sequence number `seq` arrived in second `s`: the packets
    /// missing before it are counted as lost (loopback does not reorder; a late packet
    /// counts as received and moves nothing back).
    pub fn on_audio(&mut self, seq: u16, s: usize, seconds: &mut Seconds) {
        let gap = self.next_seq.map(|next| seq.wrapping_sub(next));
        let forward = gap.is_none_or(|g| g < 0x8000);
        if forward {
            self.next_seq = Some(seq.wrapping_add(1));
        }
        if let Some(b) = seconds.at(s) {
            b.audio_lost += if forward {
                u64::from(gap.unwrap_or(0))
            } else {
                0
            };
            b.audio_received += 1;
        }
    }
}

/// The phases of an overload run, in seconds of the run.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    /// The measured window starts (the warm-up is over).
    pub measure_from: usize,
    /// The dropped meetings stop sending.
    pub drop_at: usize,
    /// The run ends.
    pub end: usize,
}

/// The figures of an overload run.
pub struct OverloadReport {
    /// Audio packets lost in the overloaded window (measure_from..drop_at).
    pub audio_lost_overloaded: u64,
    /// Audio packets received then.
    pub audio_received_overloaded: u64,
    /// Video consumer-seconds with nothing while their publisher sent, overloaded.
    pub silent_overloaded: u64,
    /// Added latency p99 over the overloaded window, and the worst second's p99.
    pub p99_overloaded_ms: Option<f64>,
    pub worst_second_p99_ms: Option<f64>,
    /// Top-layer share of the kept meetings' video, overloaded.
    pub kept_top_overloaded: Option<f64>,
    /// The workers' CPU (fraction of a core) over the overloaded window, as sampled.
    pub cpu_overloaded: Option<f64>,
    /// Seconds after the drop until the kept meetings' top share first reached
    /// `target` and stayed there to the end.
    pub back_on_top_after_s: Option<usize>,
    /// Audio lost after the drop.
    pub audio_lost_after: u64,
    /// One line per second: the timeline.
    pub timeline: String,
}

impl OverloadReport {
    /// The figures of `seconds` for `phases`; `shed` is the worker's shed level per second
    /// (as sampled), `cpu` the workers' CPU per second (fraction of a core), `target` the
    /// top-layer share that counts as "back on top".
    pub fn new(
        seconds: &Seconds,
        phases: Phases,
        shed: &[(usize, u8)],
        cpu: &[(usize, f64)],
        target: f64,
    ) -> Self {
        let all = seconds.all();
        let range = |a: usize, b: usize| all.iter().skip(a).take(b.saturating_sub(a));
        let overloaded = || range(phases.measure_from, phases.drop_at);
        let mut merged = vec![0u32; BUCKETS];
        for s in overloaded() {
            for (m, &c) in merged.iter_mut().zip(&s.latency) {
                *m = m.saturating_add(c);
            }
        }
        let worst = overloaded()
            .filter_map(|s| s.latency_ms(0.99))
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
        let kept: [u64; 2] = overloaded().fold([0, 0], |a, s| {
            [a[0] + s.kept_video[0], a[1] + s.kept_video[1]]
        });
        let kept_top = (kept[0] + kept[1] > 0).then(|| kept[1] as f64 / (kept[0] + kept[1]) as f64);
        // Back on top: the first second after the drop from which every later second
        // (but the run's last, which may be partial) has at least `target` on top.
        let last_full = phases.end.min(all.len()).saturating_sub(1);
        let mut back = None;
        for s in (phases.drop_at..last_full).rev() {
            match all.get(s).and_then(Second::kept_top_share) {
                Some(share) if share >= target => back = Some(s - phases.drop_at),
                _ => break,
            }
        }
        let mut timeline = String::new();
        for (i, s) in all.iter().enumerate().take(phases.end) {
            let level = shed
                .iter()
                .rev()
                .find(|(at, _)| *at <= i)
                .map_or(0, |(_, l)| *l);
            let busy = cpu
                .iter()
                .find(|(at, _)| *at == i)
                .map_or("  - ".to_owned(), |(_, c)| format!("{:>3.0}%", c * 100.0));
            let _ = writeln!(
                timeline,
                "{:>4} s{} shed {level} cpu {busy} | kept video r1 {:>5.1} % ({} pkts) | dropped meetings' video {} pkts | audio {} received {} lost | video consumers silent {} | latency p50 {} p99 {} ms",
                i as i64 - phases.drop_at as i64,
                if i < phases.measure_from {
                    " (warm-up)"
                } else {
                    ""
                },
                s.kept_top_share().map_or(f64::NAN, |x| x * 100.0),
                s.kept_video[0] + s.kept_video[1],
                s.dropped_video[0] + s.dropped_video[1],
                s.audio_received,
                s.audio_lost,
                s.video_silent,
                s.latency_ms(0.5).map_or("-".into(), |x| format!("{x:.1}")),
                s.latency_ms(0.99).map_or("-".into(), |x| format!("{x:.1}")),
            );
        }
        let busy: Vec<f64> = cpu
            .iter()
            .filter(|(at, _)| (phases.measure_from..phases.drop_at).contains(at))
            .map(|(_, c)| *c)
            .collect();
        let cpu_overloaded =
            (!busy.is_empty()).then(|| busy.iter().sum::<f64>() / busy.len() as f64);
        OverloadReport {
            cpu_overloaded,
            audio_lost_overloaded: overloaded().map(|s| s.audio_lost).sum(),
            audio_received_overloaded: overloaded().map(|s| s.audio_received).sum(),
            silent_overloaded: overloaded().map(|s| s.video_silent).sum(),
            p99_overloaded_ms: quantile_ms(&merged, 0.99),
            worst_second_p99_ms: worst,
            kept_top_overloaded: kept_top,
            back_on_top_after_s: back,
            audio_lost_after: range(phases.drop_at, phases.end)
                .map(|s| s.audio_lost)
                .sum(),
            timeline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_seconds_and_audio_gaps_are_counted() {
        let mut secs = Seconds::default();
        let mut v = StreamSeconds::default();
        v.on_video(2, 1, &mut secs);
        v.on_video(5, 1, &mut secs);
        v.finish_video(1, 8, &mut secs);
        let silent: Vec<u64> = secs.all().iter().map(|s| s.video_silent).collect();
        // Second 1 had nothing before the first packet (2); 3 and 4 between; 6 and 7 after.
        assert_eq!(silent, vec![0, 1, 0, 1, 1, 0, 1, 1]);

        let mut a = StreamSeconds::default();
        a.on_audio(65534, 0, &mut secs);
        a.on_audio(65535, 0, &mut secs);
        a.on_audio(2, 1, &mut secs); // 0 and 1 lost across the wrap
        a.on_audio(1, 1, &mut secs); // late: not a gap, does not move back
        a.on_audio(3, 1, &mut secs);
        assert_eq!(secs.all()[0].audio_lost, 0);
        assert_eq!(secs.all()[1].audio_lost, 2);
        assert_eq!(secs.all()[1].audio_received, 3);
    }

    #[test]
    fn back_on_top_is_the_first_second_that_stays_there() {
        let mut secs = Seconds::default();
        for (s, top) in [
            (0, 60),
            (1, 10),
            (2, 10),
            (3, 90),
            (4, 20),
            (5, 95),
            (6, 96),
            (7, 97),
            (8, 0),
        ] {
            let b = secs.at(s).unwrap();
            b.kept_video = [100 - top, top];
            b.record_latency_ns(2_000_000);
        }
        let r = OverloadReport::new(
            &secs,
            Phases {
                measure_from: 0,
                drop_at: 2,
                end: 9,
            },
            &[(1, 2)],
            &[(0, 0.95), (1, 0.85)],
            0.9,
        );
        // Second 3 reached 90 % but 4 fell back; from 5 on it stays (8 is the partial last).
        assert_eq!(r.back_on_top_after_s, Some(3));
        assert_eq!(r.p99_overloaded_ms, Some(2.1));
        assert!(r.timeline.contains("shed 2"));
        assert!((r.cpu_overloaded.unwrap() - 0.9).abs() < 1e-9);
    }
}
