//! RTP views: parse, read every field, rewrite in place, remap extension ids; never a
//! panic, and a rewritten packet still parses with the same layout.
#![no_main]

use kolabmeet_net::rtp::{RtpPacket, write_extension_block};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    if let Ok(mut p) = RtpPacket::parse(&mut buf[..]) {
        let (hl, pl) = (p.header_len(), p.payload().len());
        let _ = (p.marker(), p.payload_type(), p.sequence_number(), p.timestamp(), p.ssrc());
        let _ = p.csrcs().count();
        let elems: Vec<(u8, Vec<u8>)> = p
            .extensions()
            .filter_map(|e| p.extension(e.id).map(|v| (e.id, v.to_vec())))
            .collect();
        p.set_sequence_number(p.sequence_number().wrapping_add(1));
        p.set_ssrc(!p.ssrc());
        p.set_payload_type(p.payload_type() ^ 1);
        if let Some(v) = p.extension_mut(1) {
            v.fill(0xaa);
        }
        p.remap_extension_ids(|id| id.checked_add(1));
        let q = RtpPacket::parse(&buf[..]).expect("a rewritten packet still parses");
        assert_eq!((q.header_len(), q.payload().len()), (hl, pl));
        let refs: Vec<(u8, &[u8])> = elems.iter().map(|(i, v)| (*i, &v[..])).collect();
        let mut out = [0u8; 2048];
        let _ = write_extension_block(&refs, &mut out);
    }
});
