//! A transport's outgoing bandwidth (issue 9) fed hostile input: packets "sent" with any
//! transport-wide numbers and sizes, transport-cc feedback and REMB of any content (that
//! lie, wrap, repeat or flood), time moving in any steps, allocations and probe clusters
//! in between. Never a panic, and the estimate stays within the configured bounds.
#![no_main]

use std::time::{Duration, Instant};

use kolabmeet_engine::bwe::{Bitrate, BweConfig};
use kolabmeet_engine::transport::SendBandwidth;
use kolabmeet_net::rtcp::{RtcpPacket, packets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = BweConfig::default();
    let mut b = SendBandwidth::new(config);
    b.on_video_consumer(Some(3), Some(2));
    let mut now = Instant::now();
    let mut seq = 0u16;
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let take = |rest: &mut &[u8], n: usize| -> Vec<u8> {
            let n = n.min(rest.len());
            let (a, b) = rest.split_at(n);
            *rest = b;
            a.to_vec()
        };
        match op % 6 {
            0 => {
                let v = take(&mut rest, 4);
                let n = u16::from(v.first().copied().unwrap_or(1)) + 1;
                let size = usize::from(u16::from_le_bytes([
                    v.get(1).copied().unwrap_or(0),
                    v.get(2).copied().unwrap_or(4),
                ]));
                for _ in 0..n {
                    b.on_packet_sent(now, seq, size);
                    seq = seq.wrapping_add(1);
                }
            }
            1 => {
                let len = usize::from(take(&mut rest, 1).first().copied().unwrap_or(0)) * 4;
                let bytes = take(&mut rest, len);
                for p in packets(&bytes).flatten() {
                    match p {
                        RtcpPacket::TransportCc(fb) => b.on_transport_cc(now, &fb),
                        RtcpPacket::Remb(r) => b.on_remb(now, r.bitrate()),
                        _ => {}
                    }
                }
            }
            2 => {
                let v = take(&mut rest, 8);
                let mut x = [0u8; 8];
                x[..v.len()].copy_from_slice(&v);
                b.on_remb(now, u64::from_le_bytes(x));
            }
            3 => {
                let v = take(&mut rest, 2);
                let ms = u16::from_le_bytes([
                    v.first().copied().unwrap_or(0),
                    v.get(1).copied().unwrap_or(0),
                ]);
                now += Duration::from_millis(u64::from(ms));
            }
            4 => {
                let v = take(&mut rest, 4);
                let mut x = [0u8; 4];
                x[..v.len()].copy_from_slice(&v);
                b.allocate(now, &[], Bitrate(u64::from(u32::from_le_bytes(x))));
            }
            _ => {
                let mut n = 0;
                while n < 1000 && b.poll_probe(now, seq, &mut out).is_some() {
                    seq = seq.wrapping_add(1);
                    n += 1;
                }
                if let Some(t) = b.poll_timeout() {
                    now = now.max(t);
                }
            }
        }
        let e = b.estimate();
        assert!(
            e >= config.min && e <= config.max,
            "estimate {e} outside [{}, {}]",
            config.min,
            config.max
        );
    }
});
