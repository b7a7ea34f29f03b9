//! Video payload parsers and layer filters (issue 9): every codec's frame information,
//! the VP9 payload descriptor, and the VP8 temporal and VP9 SVC layer filters driven by
//! hostile payloads and target changes. Never a panic; a forwarded VP9 packet is never of
//! a spatial or temporal layer above what the filter says it forwards, nor is the marker
//! set on any but the top spatial layer forwarded.
#![no_main]

use kolabmeet_engine::codecs::vp8_layer_filter::{Vp8LayerFilter, Vp8Verdict};
use kolabmeet_engine::codecs::vp9_descriptor::Vp9Descriptor;
use kolabmeet_engine::codecs::vp9_svc_filter::{SvcVerdict, Vp9SvcFilter};
use kolabmeet_engine::codecs::{VideoCodec, frame_info};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut svc = Vp9SvcFilter::new(mode & 0x07, (mode >> 3) & 0x07, mode & 0x40 != 0);
    let mut vp8 = Vp8LayerFilter::default();
    // Records: [op][len][payload...]; op's low bits pick what to do.
    while let Some((&op, tail)) = rest.split_first() {
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        let len = usize::from(len).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        match op & 0x03 {
            0 => {
                svc.set_target(op >> 5, (op >> 2) & 0x07);
                vp8.set_target((op >> 2) & 0x03);
                let (s, t) = svc.target();
                assert!(s < (mode & 0x07).max(1) && t < ((mode >> 3) & 0x07).max(1));
            }
            1 => svc.reset(),
            _ => {
                for c in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
                    let _ = frame_info(c, payload);
                }
                let mut p = payload.to_vec();
                if let Some(d) = frame_info(VideoCodec::Vp8, payload).vp8()
                    && let Vp8Verdict::Forward(ids) = vp8.process(d, payload)
                {
                    ids.apply(d, &mut p);
                }
                let _ = vp8.rewrite_sent(&mut p);
                let Some(d) = Vp9Descriptor::parse(payload) else {
                    continue;
                };
                if let SvcVerdict::Forward { marker } = svc.process(&d) {
                    let (cs, ct) = svc.current().expect("forwarding means started");
                    if let (Some(sid), Some(tid)) = (d.spatial_layer, d.temporal_layer) {
                        assert!(sid <= cs && tid <= ct, "{sid}/{tid} above {cs}/{ct}");
                        assert!(!marker || (sid == cs && d.ends_frame));
                    }
                }
            }
        }
    }
});
