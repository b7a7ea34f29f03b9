//! RTP views: parse, read every field, rewrite in place, remap extension ids; never a
//! panic, and a rewritten packet still parses with the same layout. The header read once
//! (`RtpHeader`, what the worker routes by) agrees with the packet view on every packet
//! the packet view accepts, and its own rewrites keep the packet valid.
#![no_main]

use kolabmeet_net::rtp::{MAX_INDEXED_EXTENSIONS, RtpHeader, RtpPacket, write_extension_block};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    header_view(data);
    let mut buf = data.to_vec();
    if let Ok(mut p) = RtpPacket::parse(&mut buf[..]) {
        let (hl, pl) = (p.header_len(), p.payload().len());
        let _ = (
            p.marker(),
            p.payload_type(),
            p.sequence_number(),
            p.timestamp(),
            p.ssrc(),
        );
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

/// `RtpHeader` against `RtpPacket` on the same bytes, then its in-place rewrites.
fn header_view(data: &[u8]) {
    let Ok(mut h) = RtpHeader::parse(data) else {
        assert!(
            RtpPacket::parse(data).is_err(),
            "a packet the header view refuses"
        );
        return;
    };
    let _ = h.payload(data);
    for id in 0..=255 {
        let _ = h.extension(data, id);
    }
    if let Ok(p) = RtpPacket::parse(data) {
        assert_eq!(
            (
                h.marker,
                h.payload_type,
                h.sequence_number,
                h.timestamp,
                h.ssrc
            ),
            (
                p.marker(),
                p.payload_type(),
                p.sequence_number(),
                p.timestamp(),
                p.ssrc()
            )
        );
        assert_eq!(h.header_len, p.header_len());
        assert_eq!(h.payload(data).ok(), Some(p.payload()));
        if p.extensions().count() < MAX_INDEXED_EXTENSIONS {
            for id in 0..=255 {
                assert_eq!(h.extension(data, id), p.extension(id), "extension {id}");
            }
        }
    }
    let mut buf = data.to_vec();
    h.set_sequence_number(&mut buf, h.sequence_number.wrapping_add(1));
    h.set_ssrc(&mut buf, !h.ssrc);
    h.set_payload_type(&mut buf, h.payload_type ^ 1);
    h.remap_extension_ids(&mut buf, |id| id.checked_add(1));
    let again = RtpHeader::parse(&buf).expect("a rewritten header still parses");
    assert_eq!(
        (
            again.sequence_number,
            again.ssrc,
            again.payload_type,
            again.header_len
        ),
        (h.sequence_number, h.ssrc, h.payload_type, h.header_len)
    );
    for (id, range) in h.extensions() {
        if h.extensions().filter(|(other, _)| *other == id).count() == 1 {
            assert_eq!(again.extension(&buf, id), buf.get(range));
        }
    }
}
