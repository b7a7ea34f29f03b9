//! Issue 9, "SVC consumers", end to end in virtual time: a worker core forwards a VP9
//! webcam with one `L3T3_KEY` encoding (three spatial layers of three temporal layers,
//! each spatial layer predicted from its own layer except on key pictures) to a receiver
//! behind a shaped link (the test kit's [`ShapedReceiver`]: a bottleneck with a drop-tail
//! queue, real transport-cc feedback). It proves that the consumer is of type `svc` and
//! follows the link by dropping spatial and temporal layers within the one stream: all
//! three spatial layers on a fast link, spatial layer 2 gone within seconds of a cut and
//! back after it is lifted, the base layer's frame rate cut before the base layer itself,
//! video paused (never audio) when nothing fits. Throughout, what the worker sends is a
//! valid SVC stream: sequence numbers without gaps, every picture whole from its base
//! layer up to its top forwarded layer, the RTP marker on exactly the last packet of that
//! top layer, and a change of the top layer only at a key picture, which the sender makes
//! when the worker asks for one (PLI or FIR). Adaptation times are printed
//! (`cargo test --test svc_consumer -- --nocapture`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kolabmeet_engine::EngineEvent;
use kolabmeet_engine::ortc::{MediaKind, RtpParameters};
use kolabmeet_net::rtp::RtpPacket;
use kolabmeet_testkit::*;
use serde_json::json;

const VIDEO_SSRC: u32 = 1111;
const AUDIO_SSRC: u32 = 4444;
/// Per picture (30 fps): packets and bytes per packet of each spatial layer, about 150,
/// 350 and 900 kbit/s (SID <= 1 costs about 500 kbit/s, SID <= 2 about 1.4 Mbit/s).
const LAYER_PACKETS: [(usize, usize); 3] = [(1, 625), (2, 730), (4, 940)];
/// The temporal layer of each picture in a cycle of four (L3T3: 0 2 1 2), restarted by a
/// key picture.
const TIDS: [u8; 4] = [0, 2, 1, 2];

fn vp9_l3t3_key() -> RtpParameters {
    let fb = json!([{ "type": "nack" }, { "type": "nack", "parameter": "pli" },
                    { "type": "ccm", "parameter": "fir" }, { "type": "transport-cc" }]);
    serde_json::from_value(json!({
        "mid": "0",
        "codecs": [{ "mimeType": "video/VP9", "payloadType": 98, "clockRate": 90000,
                     "parameters": { "profile-id": 2 }, "rtcpFeedback": fb }],
        "headerExtensions": video_extensions(),
        "encodings": [{ "ssrc": VIDEO_SSRC, "scalabilityMode": "L3T3_KEY" }],
        "rtcp": { "cname": "cam" }
    }))
    .unwrap()
}

/// The sender: an L3T3_KEY picture every 33 ms (and Opus every 20 ms); a key picture
/// when the server asks for one.
struct Sender {
    picture: u16,
    /// Position in [`TIDS`].
    phase: usize,
    tl0: u8,
    seq: u16,
    audio_seq: u16,
    ts: u32,
    key_wanted: bool,
    /// Key frame requests (PLI or FIR) for its SSRC received, and key pictures sent.
    key_requests: usize,
    key_pictures: usize,
    next_frame: Instant,
    next_audio: Instant,
    audio: bool,
}

impl Sender {
    fn new(now: Instant, audio: bool) -> Self {
        Sender {
            picture: 0x1234,
            phase: 0,
            tl0: 0,
            seq: 100,
            audio_seq: 6000,
            ts: 0,
            key_wanted: true,
            key_requests: 0,
            key_pictures: 0,
            next_frame: now,
            next_audio: now,
            audio,
        }
    }

    fn tick(&mut self, sim: &mut Sim) {
        let requests = sim.take_key_frame_requests(SENDER);
        if requests.contains(&VIDEO_SSRC) {
            self.key_requests += 1;
            self.key_wanted = true;
        }
        if self.audio && sim.now >= self.next_audio {
            self.next_audio += Duration::from_millis(20);
            self.audio_seq = self.audio_seq.wrapping_add(1);
            sim.send(SENDER, opus_packet(self.audio_seq, AUDIO_SSRC));
        }
        if sim.now < self.next_frame {
            return;
        }
        self.next_frame += Duration::from_micros(33_333);
        self.ts = self.ts.wrapping_add(3000);
        let key = std::mem::take(&mut self.key_wanted);
        if key {
            self.phase = 0;
            self.key_pictures += 1;
        }
        let tid = TIDS[self.phase % TIDS.len()];
        self.phase += 1;
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        let pid = self.picture;
        self.picture = (pid + 1) & 0x7fff;
        for (sid, &(count, size)) in LAYER_PACKETS.iter().enumerate() {
            for i in 0..count {
                // I=1 P L=1 F=0 B E; M=1 and a 15-bit picture id; TID U SID D; TL0PICIDX.
                // A key picture: P=0 on every layer, the upper ones predicted from the
                // layer below (D=1).
                let (begins, ends) = (i == 0, i + 1 == count);
                let b0 = 0xa0 | u8::from(!key) << 6 | u8::from(begins) << 3 | u8::from(ends) << 2;
                let layer =
                    tid << 5 | u8::from(tid > 0) << 4 | (sid as u8) << 1 | u8::from(key && sid > 0);
                let mut payload = vec![b0, 0x80 | (pid >> 8) as u8, pid as u8, layer, self.tl0];
                payload.resize(size, 0);
                // Chrome marks the end of the picture: the last packet of the top layer.
                let marker = if sid == 2 && ends { 0x80 } else { 0 };
                let seq = self.seq;
                self.seq = seq.wrapping_add(1);
                let p = chrome_packet(98 | marker, seq, self.ts, VIDEO_SSRC, "0", None, &payload);
                sim.send(SENDER, p);
            }
        }
    }
}

/// One VP9 packet the worker sent the receiver, as its header and descriptor say.
#[derive(Debug, Clone, Copy)]
struct Vp9Packet {
    /// When it was sent, or arrived.
    at: Instant,
    seq: u16,
    marker: bool,
    picture: u16,
    sid: u8,
    tid: u8,
    /// P=0.
    key: bool,
    begins: bool,
    ends: bool,
}

impl Vp9Packet {
    fn read(at: Instant, v: &RtpPacket<&[u8]>) -> Self {
        let d = v.payload();
        assert!(
            d[0] & 0xa0 == 0xa0 && d[1] & 0x80 != 0,
            "descriptor {d:02x?}"
        );
        Vp9Packet {
            at,
            seq: v.sequence_number(),
            marker: v.marker(),
            picture: u16::from_be_bytes([d[1] & 0x7f, d[2]]),
            sid: (d[3] >> 1) & 7,
            tid: d[3] >> 5,
            key: d[0] & 0x40 == 0,
            begins: d[0] & 0x08 != 0,
            ends: d[0] & 0x04 != 0,
        }
    }

    /// It starts a key picture: the beginning of its base layer, not predicted.
    fn starts_key_picture(&self) -> bool {
        self.key && self.begins && self.sid == 0
    }
}

/// What the worker sent the receiver, and what of it arrived.
struct Receiver {
    video_ssrc: u32,
    sent: Vec<Vp9Packet>,
    arrived: Vec<Vp9Packet>,
    audio_arrivals: Vec<Instant>,
}

impl Receiver {
    fn seen(&mut self, seen: Seen, v: &RtpPacket<&[u8]>) {
        match seen {
            Seen::Sent(at) if v.ssrc() == self.video_ssrc => self.sent.push(Vp9Packet::read(at, v)),
            Seen::Arrived(at) if v.ssrc() == self.video_ssrc => {
                self.arrived.push(Vp9Packet::read(at, v))
            }
            // The only other stream.
            Seen::Arrived(at) => self.audio_arrivals.push(at),
            _ => {}
        }
    }

    /// Arrivals in `[from, to)`.
    fn arrived_between(&self, from: Instant, to: Instant) -> impl Iterator<Item = &Vp9Packet> {
        self.arrived
            .iter()
            .filter(move |p| p.at >= from && p.at < to)
    }

    /// The spatial and the temporal layers that arrived in `[from, to)`.
    fn layers_between(&self, from: Instant, to: Instant) -> (BTreeSet<u8>, BTreeSet<u8>) {
        let sids = self.arrived_between(from, to).map(|p| p.sid).collect();
        let tids = self.arrived_between(from, to).map(|p| p.tid).collect();
        (sids, tids)
    }

    /// The pictures the worker sent, in order, each as the packets of it forwarded.
    fn pictures(&self) -> Vec<&[Vp9Packet]> {
        self.sent.chunk_by(|a, b| a.picture == b.picture).collect()
    }

    /// The top spatial layer of every picture sent from `from` on.
    fn tops_from(&self, from: Instant) -> BTreeSet<u8> {
        self.pictures()
            .iter()
            .filter(|p| p[0].at >= from)
            .map(|p| top(p))
            .collect()
    }

    /// Checks what the worker sent and what arrived is a valid SVC stream (see the module
    /// documentation); returns the changes of the top spatial layer, (when, from, to).
    fn check_stream(&self) -> Vec<(Instant, u8, u8)> {
        for w in self.sent.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "a gap in what the worker sent: {w:?}"
            );
        }
        // What arrived is what was sent less what the link lost: in order, no gap of
        // its own.
        let mut sent = self.sent.iter().map(|p| p.seq);
        for p in &self.arrived {
            assert!(
                sent.any(|s| s == p.seq),
                "{p:?} arrived out of order or was never sent"
            );
        }
        let mut switches = Vec::new();
        let mut previous: Option<u8> = None;
        let mut last_at: Option<Instant> = None;
        for picture in self.pictures() {
            let top = top(picture);
            // After a pause (nothing sent for a while) the video starts afresh.
            if last_at.is_some_and(|t| picture[0].at - t > Duration::from_millis(500)) {
                previous = None;
            }
            last_at = Some(picture[picture.len() - 1].at);
            // Whole from the base layer up: every layer up to the top, each whole.
            let layers: Vec<(u8, usize)> = picture
                .chunk_by(|a, b| a.sid == b.sid)
                .map(|l| {
                    assert!(
                        l[0].begins && l[l.len() - 1].ends,
                        "a layer frame cut: {l:?}"
                    );
                    (l[0].sid, l.len())
                })
                .collect();
            let whole: Vec<(u8, usize)> = (0..=top)
                .map(|s| (s, LAYER_PACKETS[usize::from(s)].0))
                .collect();
            assert_eq!(
                layers, whole,
                "picture {} not whole: {picture:?}",
                picture[0].picture
            );
            for p in picture {
                assert_eq!(
                    p.marker,
                    p.sid == top && p.ends,
                    "the marker on {p:?} (top layer {top})"
                );
            }
            if previous != Some(top) {
                assert!(
                    picture[0].starts_key_picture(),
                    "the top layer moved from {previous:?} to {top} on a picture that is no key picture: {:?}",
                    picture[0]
                );
                if let Some(from) = previous {
                    switches.push((picture[0].at, from, top));
                }
            }
            previous = Some(top);
        }
        switches
    }
}

/// A picture's top spatial layer (as forwarded).
fn top(picture: &[Vp9Packet]) -> u8 {
    picture.iter().map(|p| p.sid).max().unwrap_or(0)
}

struct Setup {
    sim: Sim,
    sender: Sender,
    net: ShapedReceiver,
    receiver: Receiver,
    consumer: String,
}

impl Setup {
    fn new(capacity_bps: u64, audio: bool) -> Self {
        let mut sim = Sim::new();
        let room = sim.room();
        let (alice, alice_t) = sim.connect_peer_at(room, SENDER);
        let (bob, bob_t) = sim.connect_peer_at(room, RECEIVER);
        let video = sim
            .produce(alice, alice_t, MediaKind::Video, vp9_l3t3_key())
            .unwrap();
        let consumed = setup::wire(&sim.consume(bob, bob_t, video).unwrap());
        assert_eq!(consumed["type"], "svc", "{consumed}");
        let encoding = &consumed["rtpParameters"]["encodings"][0];
        assert_eq!(encoding["scalabilityMode"], "L3T3_KEY", "{consumed}");
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
        Setup {
            net: ShapedReceiver::new(&sim, &consumed, capacity_bps),
            sender: Sender::new(sim.now, audio),
            receiver: Receiver {
                video_ssrc: consumer_ssrc(&consumed),
                sent: Vec::new(),
                arrived: Vec::new(),
                audio_arrivals: Vec::new(),
            },
            sim,
            consumer: consumed["id"].as_str().unwrap().to_owned(),
        }
    }

    fn run(&mut self, d: Duration) {
        let Setup {
            sim,
            sender,
            net,
            receiver,
            ..
        } = self;
        net.run(
            sim,
            d,
            |sim| sender.tick(sim),
            |seen, p| receiver.seen(seen, p),
        );
    }

    /// The layers `consumerLayersChanged` reported for the consumer, from the `from`th
    /// event of the simulation on.
    fn layers_reported(&self, from: usize) -> Vec<Option<(u8, u8)>> {
        self.sim.events[from..]
            .iter()
            .filter_map(|e| match e {
                EngineEvent::ConsumerLayersChanged {
                    consumer, layers, ..
                } if consumer.to_string() == self.consumer => {
                    Some(layers.map(|l| (l.spatial_layer, l.temporal_layer)))
                }
                _ => None,
            })
            .collect()
    }

    /// The first arrival of spatial layer `sid` from `from` on, as time after `from`.
    fn first_of(&self, sid: u8, from: Instant) -> Option<Duration> {
        self.receiver
            .arrived
            .iter()
            .find(|p| p.at >= from && p.sid == sid)
            .map(|p| p.at - from)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A fast link gets every spatial layer; a cut to 1.1 Mbit/s (between SID <= 1 and
/// SID <= 2) leaves spatial layer 2 out within 5 s, the marker moving to the end of
/// spatial layer 1; lifting the cut brings spatial layer 2 back within 15 s. Spatial
/// switches happen on key pictures only.
#[test]
fn spatial_layers_follow_the_receivers_link() {
    let mut s = Setup::new(10_000_000, false);
    let t0 = s.sim.now;
    s.run(Duration::from_secs(10));
    let first_top = s
        .first_of(2, t0)
        .expect("spatial layer 2 on a 10 Mbit/s link");
    let (sids, tids) = s
        .receiver
        .layers_between(t0 + Duration::from_secs(5), s.sim.now);
    println!(
        "10 Mbit/s: spatial layer 2 from {}; SIDs {sids:?}, TIDs {tids:?} in the last 5 s; top layers of the pictures sent {:?}",
        secs(first_top),
        s.receiver.tops_from(t0)
    );
    assert!(first_top < Duration::from_secs(5), "{first_top:?}");
    assert_eq!(sids, BTreeSet::from([0, 1, 2]));
    assert_eq!(tids, BTreeSet::from([0, 1, 2]));
    // Every picture with all its layers from the first one on (the start probes find
    // the link: no dip while the estimate starts low).
    assert_eq!(
        s.receiver.tops_from(t0),
        BTreeSet::from([2]),
        "the marker on SID 2"
    );
    assert!(
        s.layers_reported(0).contains(&Some((2, 2))),
        "{:?}",
        s.layers_reported(0)
    );
    assert_eq!(s.net.link.queue_drops + s.net.link.random_drops, 0);

    // The cut.
    s.net.link.capacity_bps = 1_100_000;
    let (cut, events_at_cut) = (s.sim.now, s.sim.events.len());
    s.run(Duration::from_secs(20));
    let last_top = s
        .receiver
        .arrived
        .iter()
        .rev()
        .find(|p| p.at >= cut && p.sid == 2)
        .map_or(Duration::ZERO, |p| p.at - cut);
    let late = cut + Duration::from_secs(10);
    let (sids, tids) = s.receiver.layers_between(late, s.sim.now);
    let reported = s.layers_reported(events_at_cut);
    println!(
        "cut to 1.1 Mbit/s: last SID 2 packet {} after the cut; SIDs {sids:?}, TIDs {tids:?} in its last 10 s; layers reported {reported:?}; link queue drops {}",
        secs(last_top),
        s.net.link.queue_drops
    );
    assert!(last_top < Duration::from_secs(5), "{last_top:?}");
    assert_eq!(
        sids,
        BTreeSet::from([0, 1]),
        "spatial layer 2 dropped, 0 and 1 kept"
    );
    assert_eq!(tids, BTreeSet::from([0, 1, 2]));
    assert_eq!(
        s.receiver.tops_from(late),
        BTreeSet::from([1]),
        "the marker on SID 1"
    );
    assert_eq!(reported.last(), Some(&Some((1, 2))), "{reported:?}");

    // Lifted.
    s.net.link.capacity_bps = 10_000_000;
    let (lifted, events_at_lift) = (s.sim.now, s.sim.events.len());
    s.run(Duration::from_secs(20));
    let back = s.first_of(2, lifted).expect("spatial layer 2 back");
    let reported = s.layers_reported(events_at_lift);
    println!(
        "lifted: SID 2 back {} later; layers reported {reported:?}",
        secs(back)
    );
    assert!(back < Duration::from_secs(15), "{back:?}");
    assert_eq!(reported.last(), Some(&Some((2, 2))), "{reported:?}");
    assert_eq!(
        s.receiver.tops_from(lifted + back + Duration::from_secs(1)),
        BTreeSet::from([2])
    );

    let switches = s.receiver.check_stream();
    let lost = s.receiver.sent.len() - s.receiver.arrived.len();
    let at: Vec<String> = switches
        .iter()
        .map(|&(at, from, to)| format!("{from}->{to} at {}", secs(at - t0)))
        .collect();
    println!(
        "spatial switches (each on a key picture): {at:?}; key frame requests {}, key pictures sent {}; video packets sent {}, lost on the link {lost}",
        s.sender.key_requests,
        s.sender.key_pictures,
        s.receiver.sent.len()
    );
    let switches: Vec<(u8, u8)> = switches.iter().map(|&(_, a, b)| (a, b)).collect();
    assert!(
        switches.contains(&(2, 1)) && switches.contains(&(1, 2)),
        "{switches:?}"
    );
    // Every switch's key picture was asked for (the first one the sender made unasked).
    assert!(
        s.sender.key_requests >= switches.len(),
        "key pictures on request"
    );
}

/// A webcam's frame rate comes before its resolution: on a link too slow for spatial
/// layer 0 whole (about 160 kbit/s on the wire) but enough for it without its top
/// temporal layer (about 80), the receiver gets spatial layer 0 at TIDs 0 and 1 only.
#[test]
fn the_base_layers_frame_rate_is_cut_before_it() {
    let mut s = Setup::new(10_000_000, false);
    s.run(Duration::from_secs(5));
    s.net.link.capacity_bps = 110_000;
    let (cut, events_at_cut) = (s.sim.now, s.sim.events.len());
    s.run(Duration::from_secs(30));
    let late = cut + Duration::from_secs(15);
    let (sids, tids) = s.receiver.layers_between(late, s.sim.now);
    let reported = s.layers_reported(events_at_cut);
    println!(
        "110 kbit/s: SIDs {sids:?}, TIDs {tids:?} in the last 15 s; layers reported {reported:?}"
    );
    assert_eq!(sids, BTreeSet::from([0]));
    assert_eq!(tids, BTreeSet::from([0, 1]), "TID 2 dropped");
    assert_eq!(reported.last(), Some(&Some((0, 1))), "{reported:?}");
    // The worker sends no TID 2 picture at all (not dropped on the link).
    assert!(
        s.receiver
            .sent
            .iter()
            .filter(|p| p.at >= late)
            .all(|p| p.sid == 0 && p.tid < 2),
        "only SID 0 at TIDs 0 and 1 sent"
    );
    s.receiver.check_stream();
}

/// A link too slow for even spatial layer 0 at its lowest frame rate pauses the video
/// (`consumerLayersChanged` with `null`) while audio keeps flowing; once the link is fast
/// again, the video comes back, starting on a key picture.
#[test]
fn video_pauses_when_nothing_fits_and_audio_never_does() {
    let mut s = Setup::new(10_000_000, true);
    s.run(Duration::from_secs(5));
    assert!(!s.receiver.arrived.is_empty());
    s.net.link.capacity_bps = 50_000;
    let (cut, events_at_cut) = (s.sim.now, s.sim.events.len());
    s.run(Duration::from_secs(20));
    let reported = s.layers_reported(events_at_cut);
    assert!(
        reported.contains(&None),
        "consumerLayersChanged null: {reported:?}"
    );
    let late = cut + Duration::from_secs(10);
    let video_late = s.receiver.arrived_between(late, s.sim.now).count();
    let audio_late = s
        .receiver
        .audio_arrivals
        .iter()
        .filter(|at| **at >= late)
        .count();
    println!(
        "50 kbit/s: video packets in the last 10 s {video_late}, audio packets {audio_late} (of 500 sent); layers reported {reported:?}"
    );
    assert_eq!(video_late, 0, "video paused");
    assert!(audio_late > 450, "{audio_late} audio packets");

    s.net.link.capacity_bps = 10_000_000;
    let lifted = s.sim.now;
    s.run(Duration::from_secs(20));
    let back = s.first_of(0, lifted);
    println!("lifted: video back after {:?}", back.map(secs));
    // Within the 15 s the bandwidth work allows the top layer to come back in (issue
    // 17). How soon depends on when the room's randomised report rounds (0.5-1.5 s)
    // fall against the estimate's ramp: 3.1-11.4 s over 50 runs (2026-12-07); a 10 s
    // bound failed about one run in ten, before this session's changes as after.
    assert!(
        back.is_some_and(|d| d < Duration::from_secs(15)),
        "{back:?}"
    );
    s.receiver.check_stream();
}
