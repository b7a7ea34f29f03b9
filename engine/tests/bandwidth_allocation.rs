//! Issue 9 end to end in virtual time: a worker core forwards a three-layer simulcast
//! webcam (and an Opus microphone) to a receiver behind a shaped link (the test kit's
//! `LinkModel`: a bottleneck with a drop-tail queue); the receiver answers with real
//! transport-cc feedback (the engine's own `TwccFeedback`, as Chromium would) about what
//! arrived and when. The consumer must follow the link: the top layer on a fast link, a
//! lower one within seconds of a cut, the top one again after the cut is lifted, video
//! paused (never audio) when even the lowest layer does not fit, and few switches.
//! Adaptation times are printed (`cargo test --test bandwidth_allocation -- --nocapture`).

use std::time::{Duration, Instant};

use kolabmeet_engine::EngineEvent;
use kolabmeet_engine::ortc::{MediaKind, RtpParameters};
use kolabmeet_net::rtp::RtpPacket;
use kolabmeet_testkit::*;
use serde_json::json;

const LAYER_SSRCS: [u32; 3] = [1111, 2222, 3333];
const AUDIO_SSRC: u32 = 4444;
/// Per 33 ms frame: packets and bytes per packet of each layer (about 145 kbps,
/// 480 kbps and 1.45 Mbps).
const LAYER_PACKETS: [(usize, usize); 3] = [(1, 600), (2, 1000), (6, 1000)];

fn three_layers() -> RtpParameters {
    serde_json::from_value(json!({
        "mid": "0",
        "codecs": vp8_rtx_codecs(),
        "headerExtensions": video_extensions(),
        "encodings": [
            { "ssrc": LAYER_SSRCS[0] }, { "ssrc": LAYER_SSRCS[1] }, { "ssrc": LAYER_SSRCS[2] }
        ],
        "rtcp": { "cname": "cam" }
    }))
    .unwrap()
}

/// The sender: three layers (and audio) at 30 fps, a key frame on a layer when the
/// server asks for one.
struct Sender {
    /// VP8 with temporal layers (L1T3: TID 0 2 1 2 ..., picture ids, TL0PICIDX).
    temporal: bool,
    frame_no: u32,
    seq: [u16; 4],
    ts: u32,
    key_wanted: [bool; 3],
    next_frame: Instant,
    next_audio: Instant,
    audio: bool,
    /// A key frame has this many times a normal frame's packets.
    key_frame_factor: usize,
    /// A key frame on every layer every this many frames.
    periodic_key_frames: Option<u32>,
    /// The receiver's REMB (bit/s, its video SSRC), sent every 250 ms.
    remb: Option<(u64, u32)>,
    next_remb: Instant,
}

impl Sender {
    fn new(now: Instant, audio: bool) -> Self {
        Sender {
            temporal: false,
            frame_no: 0,
            seq: [100, 2000, 4000, 6000],
            ts: 0,
            key_wanted: [true; 3],
            next_frame: now,
            next_audio: now,
            audio,
            key_frame_factor: 1,
            periodic_key_frames: None,
            remb: None,
            next_remb: now,
        }
    }

    fn tick(&mut self, sim: &mut Sim) {
        for ssrc in sim.take_key_frame_requests(SENDER) {
            if let Some(l) = LAYER_SSRCS.iter().position(|s| *s == ssrc) {
                self.key_wanted[l] = true;
            }
        }
        if let Some((bitrate, ssrc)) = self.remb
            && sim.now >= self.next_remb
        {
            self.next_remb += Duration::from_millis(250);
            let mut out = Vec::new();
            kolabmeet_net::rtcp::write_remb(&mut out, 0x5eed, bitrate, &[ssrc]);
            sim.send_rtcp(RECEIVER, out);
        }
        if self.audio && sim.now >= self.next_audio {
            self.next_audio += Duration::from_millis(20);
            let seq = self.seq[3];
            self.seq[3] = seq.wrapping_add(1);
            sim.send(SENDER, opus_packet(seq, AUDIO_SSRC));
        }
        if sim.now < self.next_frame {
            return;
        }
        self.next_frame += Duration::from_micros(33_333);
        self.ts = self.ts.wrapping_add(3000);
        let n = self.frame_no;
        self.frame_no += 1;
        if self
            .periodic_key_frames
            .is_some_and(|k| n > 0 && n.is_multiple_of(k))
        {
            self.key_wanted = [true; 3];
        }
        for (layer, &(count, size)) in LAYER_PACKETS.iter().enumerate() {
            let key = std::mem::take(&mut self.key_wanted[layer]);
            let count = if key {
                count * self.key_frame_factor
            } else {
                count
            };
            for i in 0..count {
                let mut payload = if self.temporal {
                    let tid = [0u8, 2, 1, 2][(n % 4) as usize];
                    let sync = tid != 0;
                    let pid = 0x8000 | (n as u16 & 0x7fff);
                    let tl0 = (n / 4) as u8;
                    vec![
                        0x80 | if i == 0 { 0x10 } else { 0 },
                        0xe0,
                        (pid >> 8) as u8,
                        pid as u8,
                        tl0,
                        (tid << 6) | if sync { 0x20 } else { 0 },
                        if key && i == 0 { 0x00 } else { 0x01 },
                        layer as u8,
                    ]
                } else {
                    vp8(key && i == 0, layer as u8)
                };
                payload.resize(size, 0);
                let seq = self.seq[layer];
                self.seq[layer] = seq.wrapping_add(1);
                let p = chrome_packet(96, seq, self.ts, LAYER_SSRCS[layer], "0", None, &payload);
                sim.send(SENDER, p);
            }
        }
    }
}

/// What arrived at the receiver (behind its link, a [`ShapedReceiver`]).
struct Receiver {
    video_ssrc: u32,
    /// (arrival, layer) of every video packet that arrived.
    video: Vec<(Instant, u8)>,
    /// (arrival, sequence number, picture id, TID) of every video packet that arrived,
    /// when it carries them.
    vp8: Vec<(Instant, u16, u16, u8)>,
    audio_arrivals: Vec<Instant>,
}

impl Receiver {
    fn on_arrival(&mut self, at: Instant, v: &RtpPacket<&[u8]>) {
        if v.ssrc() == self.video_ssrc {
            let pl = v.payload();
            if pl[0] & 0x80 != 0 {
                let pid = u16::from_be_bytes([pl[2] & 0x7f, pl[3]]);
                self.vp8.push((at, v.sequence_number(), pid, pl[5] >> 6));
                self.video.push((at, pl[7]));
            } else {
                self.video.push((at, pl[2]));
            }
        } else if v.payload_type() == 100 || v.payload_type() == 111 {
            self.audio_arrivals.push(at);
        }
    }

    /// The layers of the video that arrived in `[from, to)`.
    fn layers_between(&self, from: Instant, to: Instant) -> Vec<u8> {
        let mut l: Vec<u8> = self
            .video
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, l)| *l)
            .collect();
        l.sort_unstable();
        l.dedup();
        l
    }

    /// The share of the video packets that arrived from `from` on that were of `layer`.
    fn share_on(&self, layer: u8, from: Instant) -> f64 {
        let window: Vec<u8> = self
            .video
            .iter()
            .filter(|(at, _)| *at >= from)
            .map(|(_, l)| *l)
            .collect();
        window.iter().filter(|l| **l == layer).count() as f64 / window.len().max(1) as f64
    }

    /// When the video last switched to `layer` (and stayed on it) before `until`.
    fn settled_on(&self, layer: u8, from: Instant, until: Instant) -> Option<Instant> {
        let mut since = None;
        for (at, l) in self
            .video
            .iter()
            .filter(|(at, _)| *at >= from && *at < until)
        {
            if *l == layer {
                since.get_or_insert(*at);
            } else {
                since = None;
            }
        }
        since
    }

    /// Layer switches seen in `[from, to)`.
    fn switches(&self, from: Instant, to: Instant) -> usize {
        let seen: Vec<u8> = self
            .video
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, l)| *l)
            .collect();
        seen.windows(2).filter(|w| w[0] != w[1]).count()
    }
}

struct Setup {
    sim: Sim,
    sender: Sender,
    net: ShapedReceiver,
    receiver: Receiver,
    consumer: String,
}

fn setup(capacity_bps: u64, audio: bool) -> Setup {
    let mut sim = Sim::new();
    let room = sim.room();
    let (alice, alice_t) = sim.connect_peer_at(room, SENDER);
    let (bob, bob_t) = sim.connect_peer_at(room, RECEIVER);
    let video = sim
        .produce(alice, alice_t, MediaKind::Video, three_layers())
        .unwrap();
    let consumed = setup::wire(&sim.consume(bob, bob_t, video).unwrap());
    assert_eq!(consumed["type"], "simulcast");
    if audio {
        let mic = sim
            .produce(
                alice,
                alice_t,
                MediaKind::Audio,
                opus_params(AUDIO_SSRC, "1"),
            )
            .unwrap();
        sim.consume(bob, bob_t, mic).unwrap();
    }
    let receiver = Receiver {
        video_ssrc: consumer_ssrc(&consumed),
        video: Vec::new(),
        vp8: Vec::new(),
        audio_arrivals: Vec::new(),
    };
    let sender = Sender::new(sim.now, audio);
    Setup {
        net: ShapedReceiver::new(&sim, &consumed, capacity_bps),
        sim,
        sender,
        receiver,
        consumer: consumed["id"].as_str().unwrap().to_owned(),
    }
}

fn run(s: &mut Setup, d: Duration) {
    let Setup {
        sim,
        sender,
        net,
        receiver,
        ..
    } = s;
    net.run(
        sim,
        d,
        |sim| sender.tick(sim),
        |seen, p| {
            if let Seen::Arrived(at) = seen {
                receiver.on_arrival(at, p);
            }
        },
    );
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A fast link gets the top layer; a cut to 700 kbps brings the layer down within 5 s
/// with few switches; lifting it brings the top layer back within 15 s (the up-switch
/// being held 10 s after a bandwidth-driven down-switch, as mediasoup does).
#[test]
fn the_layer_follows_the_receivers_link() {
    let mut s = setup(10_000_000, false);
    let t0 = s.sim.now;
    run(&mut s, Duration::from_secs(10));
    let top_at = s
        .receiver
        .settled_on(2, t0, s.sim.now)
        .expect("the top layer on a 10 Mbps link");
    println!(
        "10 Mbps: top layer from {} (probes sent: {} bytes)",
        secs(top_at - t0),
        s.net.probe_bytes
    );
    assert!(top_at - t0 < Duration::from_secs(5), "{:?}", top_at - t0);

    // The cut.
    s.net.link.capacity_bps = 700_000;
    let cut = s.sim.now;
    run(&mut s, Duration::from_secs(20));
    let last_top = s
        .receiver
        .video
        .iter()
        .rev()
        .find(|(at, l)| *at >= cut && *l == 2)
        .map(|(at, _)| *at);
    let down = last_top.map_or(Duration::ZERO, |t| t - cut);
    let layers = s
        .receiver
        .layers_between(cut + Duration::from_secs(10), s.sim.now);
    let switches = s.receiver.switches(cut + Duration::from_secs(5), s.sim.now);
    println!(
        "cut to 700 kbps: last top-layer packet {} after the cut; layers in its last 10 s {layers:?}; {switches} switches in its last 15 s; link queue drops {}",
        secs(down),
        s.net.link.queue_drops
    );
    assert!(down < Duration::from_secs(5), "{down:?}");
    assert!(!layers.is_empty() && !layers.contains(&2), "{layers:?}");
    assert!(switches < 4, "{switches} switches");

    // Lifted.
    s.net.link.capacity_bps = 10_000_000;
    let lifted = s.sim.now;
    run(&mut s, Duration::from_secs(20));
    let back = s
        .receiver
        .settled_on(2, lifted, s.sim.now)
        .expect("the top layer back");
    println!("lifted: top layer back {} later", secs(back - lifted));
    assert!(
        back - lifted < Duration::from_secs(15),
        "{:?}",
        back - lifted
    );
}

/// A cap lifted at any moment of the probe cycle is found soon: the browser test's
/// bound (top layer back within 15 s of the lift) must hold whatever the phase of the
/// on-demand probes when the cap goes, with room left for a slow key frame. Lifts at
/// eight moments 0.75 s apart (a probe cycle of 3 s, 4 s after a failed probe). Before
/// probes forgave their own queue, the failed probe at the end of the hold (21 s into
/// the cap) cut the estimate and moved the receiver from layer 1 to 0, and five of the
/// eight lifts did not get the top layer back within 16 s (issue 17).
///
/// `KOLABMEET_TEST_LOG=kolabmeet::bwe=debug KOLABMEET_TEST_K=2` logs one lift's probes.
#[test]
fn a_cap_lifted_at_any_moment_is_found_soon() {
    if std::env::var_os("KOLABMEET_TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("KOLABMEET_TEST_LOG").unwrap_or_default())
            .without_time()
            .try_init();
    }
    let mut backs = Vec::new();
    for k in 0..8u32 {
        if std::env::var("KOLABMEET_TEST_K").is_ok_and(|v| v != k.to_string()) {
            continue;
        }
        let mut s = setup(10_000_000, false);
        run(&mut s, Duration::from_secs(8));
        s.net.link.capacity_bps = 700_000;
        let capped = s.sim.now;
        run(
            &mut s,
            Duration::from_secs(20) + Duration::from_millis(750) * k,
        );
        s.net.link.capacity_bps = 10_000_000;
        let lifted = s.sim.now;
        run(&mut s, Duration::from_secs(16));
        let back = s
            .receiver
            .settled_on(2, lifted, s.sim.now)
            .map_or(Duration::from_secs(99), |t| t - lifted);
        // The layers from the cap on, as (seconds from the lift, layer) at each change.
        let mut changes: Vec<(f64, u8)> = Vec::new();
        for (at, l) in &s.receiver.video {
            if *at >= capped && changes.last().is_none_or(|c| c.1 != *l) {
                let from_lift = (*at - capped).as_secs_f64() - (lifted - capped).as_secs_f64();
                changes.push(((from_lift * 10.0).round() / 10.0, *l));
            }
        }
        println!("lift {k}: layers (s from the lift, layer) {changes:?}");
        backs.push(back);
    }
    let worst = backs.iter().max().copied().unwrap_or_default();
    println!(
        "lifted at 8 moments 0.75 s apart: top layer back after {:?} s",
        backs
            .iter()
            .map(|b| (b.as_secs_f64() * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    assert!(worst < Duration::from_secs(9), "worst {worst:?}");
}

/// A key frame on the layer a consumer has (eight times a normal frame, every 2 s: a
/// late joiner's request, the sender's own) does not move the consumer off a layer that
/// fits: the window holding it counts at the layer's recent rate
/// (`engine/src/router/recent_rates.rs`). Without that, the key frame lifted the layer's
/// measured rate past the allocation's keep band, the consumer switched down and was held
/// there 10 s, as Chromium showed after a downlink cap was lifted (issue 17).
#[test]
fn key_frames_do_not_move_a_consumer_off_a_layer_that_fits() {
    let mut s = setup(20_000_000, false);
    // The receiver's REMB caps the estimate where the top layer (1.45 Mbit/s) fits the
    // allocation's 85 % share with about 5 % to spare.
    s.sender.remb = Some((1_800_000, s.receiver.video_ssrc));
    s.sender.key_frame_factor = 8;
    let t0 = s.sim.now;
    run(&mut s, Duration::from_secs(10));
    assert!(
        s.receiver.settled_on(2, t0, s.sim.now).is_some(),
        "top layer under a 1.8 Mbit/s REMB: {:?}",
        s.receiver
            .layers_between(s.sim.now - Duration::from_secs(2), s.sim.now)
    );
    s.sender.periodic_key_frames = Some(60);
    let from = s.sim.now;
    run(&mut s, Duration::from_secs(30));
    let layers = s.receiver.layers_between(from, s.sim.now);
    let switches = s.receiver.switches(from, s.sim.now);
    println!("30 s of key frames 8x every 2 s: layers {layers:?}, {switches} switches");
    assert_eq!(layers, vec![2], "stayed on the top layer");
}

/// A link too slow for even the lowest layer pauses the video (`consumerLayersChanged`
/// with `null`) while audio keeps flowing; once the link is fast again, the video comes
/// back.
#[test]
fn video_pauses_when_nothing_fits_and_audio_never_does() {
    let mut s = setup(10_000_000, true);
    run(&mut s, Duration::from_secs(5));
    assert!(!s.receiver.video.is_empty());
    s.net.link.capacity_bps = 60_000;
    let cut = s.sim.now;
    run(&mut s, Duration::from_secs(20));
    let paused = s.sim.events.iter().any(|e| {
        matches!(e, EngineEvent::ConsumerLayersChanged { consumer, layers: None, .. } if consumer.to_string() == s.consumer)
    });
    assert!(paused, "consumerLayersChanged null");
    let late = cut + Duration::from_secs(10);
    let video_late = s
        .receiver
        .video
        .iter()
        .filter(|(at, _)| *at >= late)
        .count();
    let audio_late = s
        .receiver
        .audio_arrivals
        .iter()
        .filter(|at| **at >= late)
        .count();
    println!(
        "60 kbps: video packets in the last 10 s {video_late}, audio packets {audio_late} (of 500 sent)"
    );
    assert!(video_late < 20, "{video_late} video packets");
    assert!(audio_late > 450, "{audio_late} audio packets");

    s.net.link.capacity_bps = 10_000_000;
    let lifted = s.sim.now;
    run(&mut s, Duration::from_secs(20));
    let back = s
        .receiver
        .video
        .iter()
        .find(|(at, _)| *at >= lifted)
        .map(|(at, _)| *at - lifted);
    println!("lifted: video back after {:?}", back.map(secs));
    assert!(
        back.is_some_and(|d| d < Duration::from_secs(10)),
        "{back:?}"
    );
}

/// Temporal layers (VP8 L1T3 in every encoding). A webcam's frame rate comes before its
/// resolution: on a link that carries layer 1 only without its top temporal layer, the
/// receiver gets layer 0 whole; on a link too slow for layer 0 whole, layer 0 without its
/// top temporal layer rather than nothing. Sequence numbers and picture ids stay
/// continuous across the frames dropped.
#[test]
fn temporal_layers_are_dropped_before_a_spatial_layer() {
    let mut s = setup(10_000_000, false);
    s.sender.temporal = true;
    run(&mut s, Duration::from_secs(5));
    // Layer 1 whole costs 480 kbit/s, without TID 2 240 kbit/s; layer 0 whole 145 kbit/s,
    // without TID 2 72 kbit/s.
    let tids_between = |s: &Setup, from: Instant| -> (Vec<u8>, std::collections::BTreeSet<u8>) {
        let tids = s
            .receiver
            .vp8
            .iter()
            .filter(|(at, ..)| *at >= from)
            .map(|p| p.3)
            .collect();
        (s.receiver.layers_between(from, s.sim.now), tids)
    };
    s.net.link.capacity_bps = 400_000;
    let cut = s.sim.now;
    run(&mut s, Duration::from_secs(30));
    let (layers, tids) = tids_between(&s, cut + Duration::from_secs(15));
    println!("400 kbit/s with L1T3 encodings: layers {layers:?}, TIDs {tids:?} in the last 15 s");
    assert_eq!(layers, vec![0], "layer 0 whole rather than layer 1 in part");
    assert!(tids.contains(&2), "{tids:?}");

    s.net.link.capacity_bps = 110_000;
    let cut = s.sim.now;
    run(&mut s, Duration::from_secs(30));
    let late = cut + Duration::from_secs(15);
    let (layers, tids) = tids_between(&s, late);
    println!("110 kbit/s: layers {layers:?}, TIDs {tids:?} in the last 15 s");
    assert_eq!(layers, vec![0]);
    assert!(
        !tids.contains(&2) && tids.contains(&0),
        "TID 2 dropped: {tids:?}"
    );
    // Continuity once settled: every packet's number follows the previous one, and every
    // frame's picture id the previous frame's.
    let drops_before = s.net.link.queue_drops;
    run(&mut s, Duration::from_secs(5));
    assert_eq!(s.net.link.queue_drops, drops_before, "no loss on the link");
    let settled: Vec<(Instant, u16, u16, u8)> = s
        .receiver
        .vp8
        .iter()
        .filter(|(at, ..)| *at >= late)
        .copied()
        .collect();
    assert!(settled.len() > 100);
    for w in settled.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert_eq!(b.1, a.1.wrapping_add(1), "sequence numbers {a:?} {b:?}");
        let d = b.2.wrapping_sub(a.2) & 0x7fff;
        assert!(d <= 1, "picture ids {a:?} {b:?}");
    }
}

/// Issue 17, jitter: a wide link (20 Mbit/s) whose packets each take up to 30 ms more,
/// at random (in order, as on Wi-Fi), keeps the top layer (1.45 Mbit/s) in at least
/// 90 % of its packets: the delay-based estimator must tell jitter from a queue that
/// builds.
#[test]
fn jitter_on_a_wide_link_keeps_the_top_layer() {
    let mut s = setup(20_000_000, true);
    s.net.link.jitter = Duration::from_millis(30);
    run(&mut s, Duration::from_secs(15));
    let from = s.sim.now;
    run(&mut s, Duration::from_secs(60));
    let top = s.receiver.share_on(2, from);
    println!(
        "30 ms jitter on 20 Mbit/s: top layer in {:.1} % of video packets over 60 s, {} switches",
        top * 100.0,
        s.receiver.switches(from, s.sim.now)
    );
    assert!(top >= 0.9, "top layer in {:.1} %", top * 100.0);
}

/// Issue 17, jitter after a setback: a receiver whose link was capped (the layer came
/// down, so the next trials last `LONG_TRIAL`, 4 s) and then became wide but jittery gets
/// the top layer back and keeps it. Over-use that jitter makes is forgiven for the whole
/// trial, not only its first 2 s (CI, 2026-12-07: every 4 s trial on a jittery path failed
/// in its third second).
#[test]
fn jitter_after_a_setback_gets_the_top_layer_back() {
    let mut s = setup(20_000_000, true);
    run(&mut s, Duration::from_secs(10));
    s.net.link.capacity_bps = 500_000;
    run(&mut s, Duration::from_secs(20));
    let capped = s
        .receiver
        .layers_between(s.sim.now - Duration::from_secs(5), s.sim.now);
    assert!(!capped.contains(&2), "capped: {capped:?}");
    s.net.link.capacity_bps = 20_000_000;
    s.net.link.jitter = Duration::from_millis(30);
    let lifted = s.sim.now;
    run(&mut s, Duration::from_secs(60));
    let back = s.receiver.settled_on(2, lifted, s.sim.now);
    let from = lifted + Duration::from_secs(30);
    let top = s.receiver.share_on(2, from);
    println!(
        "capped, then 30 ms jitter on 20 Mbit/s: top layer back after {}, on it in {:.1} % of video packets of the last 30 s",
        back.map_or("never".into(), |b| secs(b - lifted)),
        top * 100.0
    );
    assert!(
        back.is_some_and(|b| b - lifted < Duration::from_secs(30)),
        "{back:?}"
    );
    assert!(top >= 0.9, "top layer in {:.1} %", top * 100.0);
}

/// Issue 17, bursty shapers: links capped at 450 kbit/s and 1 Mbit/s by a token bucket
/// of 2, 15 and 30 KB with a 200 ms drop-tail queue (cable, DSL and Wi-Fi shapers; what
/// `tc tbf burst` does), and a few with 100 and 500 ms queues, key frames four times a
/// normal frame. After settling, at most 2
/// spatial switches a minute, and audio through: a probe or an up-switch that the bucket
/// let through at full speed must not be taken for the link's rate over and over.
#[test]
fn bursty_shapers_do_not_make_the_layer_flap() {
    let mut failures = Vec::new();
    let cases = [450_000u64, 1_000_000]
        .into_iter()
        .flat_map(|c| [2_000u64, 15_000, 30_000].map(|b| (c, b, 200)))
        .chain([
            (450_000, 30_000, 100),
            (450_000, 30_000, 500),
            (1_000_000, 15_000, 500),
        ]);
    for (capacity, bucket, queue_ms) in cases {
        {
            let mut s = setup(capacity, true);
            s.sender.key_frame_factor = 4;
            s.net.link.bucket_bytes = bucket;
            s.net.link.queue_limit = Duration::from_millis(queue_ms);
            run(&mut s, Duration::from_secs(20));
            let from = s.sim.now;
            let drops = s.net.link.queue_drops;
            let audio = s.receiver.audio_arrivals.len();
            run(&mut s, Duration::from_secs(60));
            let switches = s.receiver.switches(from, s.sim.now);
            let layers = s.receiver.layers_between(from, s.sim.now);
            let audio_lost = 3000usize.saturating_sub(s.receiver.audio_arrivals.len() - audio);
            println!(
                "{} kbit/s, {} KB bucket, {queue_ms} ms queue: {switches} switches in 60 s after settling, layers {layers:?}, queue drops {}, audio lost {audio_lost} of 3000, probe bytes {}",
                capacity / 1000,
                bucket / 1000,
                s.net.link.queue_drops - drops,
                s.net.probe_bytes
            );
            if switches > 2 || audio_lost > 30 {
                failures.push((capacity, bucket, queue_ms, switches, audio_lost));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "(capacity, bucket, queue ms, switches, audio lost): {failures:?}"
    );
}
