//! What bandwidth estimation costs per transport (issue 9): the send-side estimator per
//! transport-cc feedback packet (100 ms of a 2.5 Mbps stream: about 26 packets reported,
//! as Chromium sends it), and one layer allocation for 50 video consumers and 50 audio
//! consumers on one transport.
//!
//! ```text
//! cargo bench -p kolabmeet-benches --bench bwe
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kolabmeet_engine::allocation::{
    AllocatorConfig, ConsumerDemand, Layer, LayerAllocator, LayerRates, Priority,
};
use kolabmeet_engine::bwe::{Bitrate, BweConfig, SendSideBwe};
use kolabmeet_engine::transport::TwccFeedback;
use kolabmeet_net::rtcp::{RtcpPacket, packets};

/// Packets per feedback interval.
const PER_FEEDBACK: u16 = 26;

fn estimator(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut bwe = SendSideBwe::new(BweConfig::default());
    let mut receiver = TwccFeedback::new();
    let mut seq = 0u16;
    let mut now = t0;
    // One feedback packet's worth of sends, and the receiver's feedback for them.
    let mut next_feedback = || {
        let mut out = Vec::new();
        for _ in 0..PER_FEEDBACK {
            now += Duration::from_micros(3_800);
            seq = seq.wrapping_add(1);
            bwe.on_packet_sent(now, seq, 1200);
            receiver.on_packet(now + Duration::from_millis(20), seq, 1);
        }
        now += Duration::from_millis(100);
        receiver.poll_feedback(now, 1, &mut out);
        (now, out)
    };
    let batches: Vec<_> = (0..2000).map(|_| next_feedback()).collect();
    let mut bwe = SendSideBwe::new(BweConfig::default());
    let mut replay = t0;
    let mut seq = 0u16;
    let mut i = 0;
    // Measured: recording the 26 sends and reading the feedback that reports them.
    c.bench_function("bwe/26_sends_and_their_transport_cc_feedback", |b| {
        b.iter(|| {
            let (at, fb) = &batches[i % batches.len()];
            i += 1;
            for _ in 0..PER_FEEDBACK {
                replay += Duration::from_micros(3_800);
                seq = seq.wrapping_add(1);
                bwe.on_packet_sent(replay, seq, 1200);
            }
            for p in fb {
                for packet in packets(p) {
                    if let Ok(RtcpPacket::TransportCc(t)) = packet {
                        bwe.on_transport_cc(*at, &t);
                    }
                }
            }
            black_box(bwe.estimate())
        })
    });
}

fn allocation(c: &mut Criterion) {
    let mut webcam = Vec::new();
    for (s, top) in [(0u8, 150u64), (1, 500), (2, 1500)] {
        for t in 0..3u8 {
            webcam.push((
                Layer::new(s, t),
                Bitrate::kbps(top * (u64::from(t) + 2) / 4),
            ));
        }
    }
    let webcam = LayerRates::new(webcam);
    let audio = LayerRates::new(vec![(Layer::new(0, 0), Bitrate::kbps(40))]);
    let demands: Vec<ConsumerDemand<u32>> = (0..100)
        .map(|k| ConsumerDemand {
            key: k,
            priority: if k % 2 == 0 {
                Priority::Audio
            } else {
                Priority::Webcam
            },
            rates: if k % 2 == 0 {
                audio.clone()
            } else {
                webcam.clone()
            },
            max: Layer::new(2, 2),
        })
        .collect();
    let mut allocator = LayerAllocator::new(AllocatorConfig::default());
    let t0 = Instant::now();
    let mut n = 0u64;
    c.bench_function("allocation/50_video_50_audio", |b| {
        b.iter(|| {
            n += 1;
            // Estimates that move the allocation: 2-20 Mbps.
            let estimate = Bitrate::kbps(2000 + (n * 7919) % 18_000);
            black_box(allocator.allocate(t0, estimate, &demands).used)
        })
    });
}

criterion_group!(benches, estimator, allocation);
criterion_main!(benches);
