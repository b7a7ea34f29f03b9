//! Plain RTP packets shaped like the ones browsers send: the fixed header, Chrome's
//! one-byte header extensions, VP8 and Opus payloads, and RTX repairs (RFC 4588). The
//! harnesses protect them with the sender's SRTP session.

use kolabmeet_net::rtp::{RtpPacket, write_extension_block};

/// The one-byte header extension ids Chrome uses through mediasoup-client, as the kit's
/// parameters ([`crate::params`]) announce them: `ssrc-audio-level`, `abs-send-time`,
/// `transport-wide-cc`, `sdes:mid`, `sdes:rtp-stream-id` and
/// `sdes:repaired-rtp-stream-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Ext {
    AudioLevel = 1,
    AbsSendTime = 2,
    TransportCc = 3,
    Mid = 4,
    Rid = 10,
    RepairedRid = 11,
}

impl Ext {
    /// The id on the wire.
    pub const fn id(self) -> u8 {
        self as u8
    }
}

/// Writes a 12-byte RTP fixed header (RFC 3550 §5.1) to `out`: version 2, the X bit when
/// `extension`, `pt_marker` as the second byte (payload type, marker bit on top).
pub fn write_rtp_header(
    out: &mut Vec<u8>,
    extension: bool,
    pt_marker: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
) {
    out.push(if extension { 0x90 } else { 0x80 });
    out.push(pt_marker);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// Appends a one-byte extension block (RFC 8285 §4.2) of `exts`.
pub fn write_extensions(out: &mut Vec<u8>, exts: &[(u8, &[u8])]) {
    let mut block = [0u8; 128];
    let n = write_extension_block(exts, &mut block).expect("extensions fit 128 bytes");
    out.extend_from_slice(&block[..n]);
}

/// A packet with payload type 96, no extensions, then `payload`.
pub fn plain_rtp(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    write_rtp_header(&mut p, false, 96, seq, ts, ssrc);
    p.extend_from_slice(payload);
    p
}

/// An RTP packet as Chrome sends it: one-byte extensions (MID, abs-send-time,
/// transport-cc, RID when given), then the payload.
pub fn chrome_packet(
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    mid: &str,
    rid: Option<&str>,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    write_rtp_header(&mut p, true, pt, seq, ts, ssrc);
    let mut exts: Vec<(u8, &[u8])> = vec![
        (Ext::Mid.id(), mid.as_bytes()),
        (Ext::AbsSendTime.id(), &[1, 2, 3]),
        (Ext::TransportCc.id(), &[0, 9]),
    ];
    if let Some(r) = rid {
        exts.push((Ext::Rid.id(), r.as_bytes()));
    }
    write_extensions(&mut p, &exts);
    p.extend_from_slice(payload);
    p
}

/// A browser's sender report (RFC 3550 §6.4.1) for its stream `ssrc`: NTP time `ntp` is
/// RTP time `rtp_time` (one packet, one octet sent; no report blocks).
pub fn sender_report(ssrc: u32, ntp: u64, rtp_time: u32) -> Vec<u8> {
    let mut sr = Vec::new();
    kolabmeet_net::rtcp::write_sender_report(
        &mut sr,
        &kolabmeet_net::rtcp::SenderReportData {
            ssrc,
            ntp,
            rtp_time,
            packets: 1,
            octets: 1,
        },
        &[],
    );
    sr
}

/// VP8 payload: minimal descriptor (S=1, PID=0) and a payload header with P (0 = key),
/// then `marker_byte` and two bytes more.
pub fn vp8(key: bool, marker_byte: u8) -> Vec<u8> {
    vec![0x10, if key { 0x00 } else { 0x01 }, marker_byte, 0xaa, 0xbb]
}

/// An Opus packet (payload type 111, 960 ticks per packet) with an audio-level extension
/// and a 20-byte payload of 7s.
pub fn opus_packet(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(40);
    write_rtp_header(&mut p, true, 111, seq, u32::from(seq) * 960, ssrc);
    write_extensions(&mut p, &[(Ext::AudioLevel.id(), &[0x85])]);
    p.extend_from_slice(&[7; 20]);
    p
}

/// The RTX packet (RFC 4588 §4) repairing `original`: payload type 97, its own SSRC and
/// sequence number, `exts` as its extensions, the original sequence number first.
pub fn rtx_of(original: &[u8], ssrc: u32, seq: u16, exts: &[(u8, &[u8])]) -> Vec<u8> {
    let o = RtpPacket::parse(original).expect("an RTP packet to repair");
    let mut p = Vec::with_capacity(original.len() + 16);
    write_rtp_header(&mut p, true, 97, seq, o.timestamp(), ssrc);
    write_extensions(&mut p, exts);
    p.extend_from_slice(&o.sequence_number().to_be_bytes());
    p.extend_from_slice(o.payload());
    p
}
