//! What protecting costs as a transport's SSRC count grows: a receiver's transport sends
//! one stream per consumer, per RTX stream and the probation stream, and a room of `n`
//! peers gives each receiver about `3 (n - 1)` of them.
//!
//! Packets of 1,100 bytes go round-robin over `k` SSRCs, AEAD-AES-256-GCM (what Chromium
//! gets), through:
//! - `shared`: one libsrtp context with a wildcard template, every SSRC a stream in its
//!   list (libsrtp 2 walks that list on every packet, newest stream first);
//! - `ours`: [`SrtpSession`], a libsrtp context per SSRC (`crypto/srtp_outbound.rs`).
//!
//! Thread CPU time per packet, interleaved rounds.
//!
//! ```text
//! cargo run --release -p kolabmeet-benches --example srtp_streams [rounds]
//! ```

use std::time::Duration;

use kolabmeet_benches::sys::thread_cpu_time;
use kolabmeet_engine::crypto::{SrtpKeyMaterial, SrtpProfile, SrtpSession};

const PAYLOAD: usize = 1100;

fn packet(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + PAYLOAD + 16);
    p.extend_from_slice(&[0x80, 96]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&u32::from(seq).wrapping_mul(3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + PAYLOAD, 0xab);
    p
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let keys = SrtpKeyMaterial {
        key: vec![7; 32],
        salt: vec![9; 12],
    };
    let key = keys.key_and_salt();
    for k in [1usize, 10, 50, 150] {
        let policy = srtp::StreamPolicy {
            rtp: srtp::CryptoPolicy::aes_gcm_256_16_auth(),
            rtcp: srtp::CryptoPolicy::aes_gcm_256_16_auth(),
            key: &key,
            window_size: 1024,
            allow_repeat_tx: true,
            encrypt_extension_headers: &[],
        };
        let mut shared = srtp::Session::with_outbound_template(policy).expect("libsrtp context");
        let mut ours = SrtpSession::new(SrtpProfile::AeadAes256Gcm, &keys, &keys).expect("session");
        let ssrcs: Vec<u32> = (0..k as u32).map(|i| 0x1000_0000 + i * 7919).collect();
        let per_round = 2000;
        let (mut t_shared, mut t_ours) = (Duration::ZERO, Duration::ZERO);
        let mut seq = 0u16;
        for round in 0..rounds {
            let packets: Vec<Vec<u8>> = (0..per_round)
                .map(|i| {
                    seq = seq.wrapping_add(u16::from(i % k == 0));
                    packet(ssrcs[i % k], seq)
                })
                .collect();
            // Each side's packets are copied right before it runs (2 MB: as cold or
            // as warm for both), and the order alternates.
            let mut a = Vec::new();
            let mut b = Vec::new();
            for shared_first in [round % 2 == 0, round % 2 == 1] {
                if shared_first {
                    a = packets.clone();
                    let t0 = thread_cpu_time();
                    for p in a.iter_mut() {
                        shared.protect(p).expect("protect");
                    }
                    // The first round creates the streams: not measured.
                    if round > 0 {
                        t_shared += thread_cpu_time() - t0;
                    }
                } else {
                    b = packets.clone();
                    let t0 = thread_cpu_time();
                    for p in b.iter_mut() {
                        ours.protect_rtp(p).expect("protect");
                    }
                    if round > 0 {
                        t_ours += thread_cpu_time() - t0;
                    }
                }
            }
            assert_eq!(a, b, "the same SRTP either way");
        }
        let n = ((rounds - 1) * per_round) as f64;
        let (s, o) = (t_shared.as_nanos() as f64 / n, t_ours.as_nanos() as f64 / n);
        println!(
            "{k:>4} SSRCs: ns per packet: shared context {s:6.0}, context per SSRC {o:6.0} ({:+.1}%)",
            100.0 * (o - s) / s
        );
    }
}
