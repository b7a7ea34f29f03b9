//! RTCP compound packets (RFC 3550 §6, RFC 4585, RFC 5104): views over byte slices, one
//! file per packet type, and writers that append to a caller-owned buffer.
//!
//! [`packets`] walks a (decrypted) compound packet and yields one typed view per RTCP
//! packet ([`RtcpPacket`]); each view was validated when it was made, so its accessors
//! cannot fail. Writers (`write_*`) append one packet each, so a compound packet is built by
//! calling several of them on the same buffer.

pub mod bye;
pub mod fir;
pub mod header;
pub mod nack;
pub mod pli;
pub mod receiver_report;
pub mod remb;
pub mod report_block;
pub mod sdes;
pub mod sender_report;
pub mod transport_cc;
mod wire;

pub use bye::{Bye, write_bye};
pub use fir::{Fir, write_fir};
pub use header::{RtcpHeader, is_rtcp};
pub use nack::{Nack, write_nack};
pub use pli::{Pli, write_pli};
pub use receiver_report::{ReceiverReport, write_receiver_report};
pub use remb::{Remb, write_remb};
pub use report_block::{ReportBlock, ReportBlockData};
pub use sdes::{Sdes, write_sdes_cname};
pub use sender_report::{SenderReport, SenderReportData, write_sender_report};
pub use transport_cc::TransportCc;
pub use wire::{RtcpError, fmt, pt};

/// One RTCP packet of a compound packet, by type.
#[derive(Debug, Clone, Copy)]
pub enum RtcpPacket<'a> {
    /// SR.
    SenderReport(SenderReport<'a>),
    /// RR.
    ReceiverReport(ReceiverReport<'a>),
    /// SDES.
    Sdes(Sdes<'a>),
    /// BYE.
    Bye(Bye<'a>),
    /// Generic NACK.
    Nack(Nack<'a>),
    /// PLI.
    Pli(Pli),
    /// FIR.
    Fir(Fir<'a>),
    /// REMB.
    Remb(Remb<'a>),
    /// Transport-wide congestion control feedback.
    TransportCc(TransportCc<'a>),
    /// Any other type (APP, XR, other feedback): its header is valid, its body unread.
    Other(RtcpHeader<'a>),
}

impl<'a> RtcpPacket<'a> {
    /// Reads one packet whose header is valid.
    fn from_header(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        Ok(match (h.packet_type(), h.count()) {
            (pt::SR, _) => RtcpPacket::SenderReport(SenderReport::parse(h)?),
            (pt::RR, _) => RtcpPacket::ReceiverReport(ReceiverReport::parse(h)?),
            (pt::SDES, _) => RtcpPacket::Sdes(Sdes::parse(h)?),
            (pt::BYE, _) => RtcpPacket::Bye(Bye::parse(h)?),
            (pt::RTPFB, fmt::NACK) => RtcpPacket::Nack(Nack::parse(h)?),
            (pt::RTPFB, fmt::TRANSPORT_CC) => RtcpPacket::TransportCc(TransportCc::parse(h)?),
            (pt::PSFB, fmt::PLI) => RtcpPacket::Pli(Pli::parse(h)?),
            (pt::PSFB, fmt::FIR) => RtcpPacket::Fir(Fir::parse(h)?),
            (pt::PSFB, fmt::AFB) if Remb::is_remb(&h) => RtcpPacket::Remb(Remb::parse(h)?),
            _ => RtcpPacket::Other(h),
        })
    }
}

/// The packets of a compound packet, in order; the first malformed one ends the walk
/// with its error.
pub fn packets(compound: &[u8]) -> Packets<'_> {
    Packets {
        rest: compound,
        failed: false,
    }
}

/// Iterator of [`packets`].
#[derive(Debug, Clone)]
pub struct Packets<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = RtcpHeader::split(self.rest).and_then(|(h, rest)| {
            self.rest = rest;
            RtcpPacket::from_header(h)
        });
        if item.is_err() {
            self.failed = true;
        }
        Some(item)
    }
}

/// Reads every field of every packet of a compound packet and returns a checksum of
/// them: what the fuzz target and the robustness test run, so that every accessor is
/// exercised on hostile input.
pub fn read_every_field(buf: &[u8]) -> usize {
    let mut n = 0;
    for p in packets(buf).flatten() {
        n += match p {
            RtcpPacket::SenderReport(sr) => {
                (sr.ntp() as usize) ^ sr.blocks().map(|b| b.data().jitter as usize).sum::<usize>()
            }
            RtcpPacket::ReceiverReport(rr) => rr.blocks().map(|b| b.ssrc() as usize).sum(),
            RtcpPacket::Sdes(s) => s
                .chunks()
                .flat_map(|c| c.items())
                .map(|(_, v)| v.len())
                .sum(),
            RtcpPacket::Bye(b) => b.ssrcs().count() + b.reason().map_or(0, <[u8]>::len),
            RtcpPacket::Nack(n) => n.lost().count(),
            RtcpPacket::Pli(p) => p.media_ssrc() as usize,
            RtcpPacket::Fir(f) => f.entries().count(),
            RtcpPacket::Remb(r) => (r.bitrate() as usize) ^ r.ssrcs().count(),
            RtcpPacket::TransportCc(t) => t.packets().filter(|(_, d)| d.is_some()).count(),
            RtcpPacket::Other(h) => h.body().len(),
        } & 0xffff;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_compound_packet_written_by_the_writers() {
        let mut buf = Vec::new();
        write_sender_report(
            &mut buf,
            &SenderReportData {
                ssrc: 11,
                ntp: 0x0102_0304_0506_0708,
                rtp_time: 90_000,
                packets: 5,
                octets: 500,
            },
            &[ReportBlockData {
                ssrc: 22,
                fraction_lost: 64,
                cumulative_lost: -3,
                highest_seq: 70_000,
                jitter: 12,
                last_sr: 0x0304_0506,
                delay_since_last_sr: 65_536,
            }],
        );
        write_sdes_cname(&mut buf, 11, "abc");
        write_nack(&mut buf, 1, 22, &[100, 101, 116, 117, 200]);
        write_pli(&mut buf, 1, 22);
        write_fir(&mut buf, 1, 22, 7);
        write_remb(&mut buf, 1, 1_500_000, &[22, 33]);
        write_receiver_report(&mut buf, 1, &[]);
        write_bye(&mut buf, &[11]);
        buf.extend_from_slice(&[0x80, pt::APP, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e']);
        let all: Vec<RtcpPacket<'_>> = packets(&buf).map(Result::unwrap).collect();
        assert_eq!(all.len(), 9);
        let RtcpPacket::SenderReport(sr) = all[0] else {
            panic!("{:?}", all[0])
        };
        assert_eq!(
            (
                sr.ssrc(),
                sr.ntp(),
                sr.rtp_time(),
                sr.packets(),
                sr.octets()
            ),
            (11, 0x0102_0304_0506_0708, 90_000, 5, 500)
        );
        let b = sr.blocks().next().unwrap();
        assert_eq!(b.data().cumulative_lost, -3);
        assert_eq!(b.data().highest_seq, 70_000);
        let RtcpPacket::Sdes(sdes) = all[1] else {
            panic!()
        };
        assert_eq!(sdes.cname(11), Some(&b"abc"[..]));
        let RtcpPacket::Nack(n) = all[2] else {
            panic!()
        };
        assert_eq!(n.lost().collect::<Vec<_>>(), vec![100, 101, 116, 117, 200]);
        assert!(matches!(all[3], RtcpPacket::Pli(p) if p.media_ssrc() == 22));
        let RtcpPacket::Fir(f) = all[4] else { panic!() };
        assert_eq!(f.entries().collect::<Vec<_>>(), vec![(22, 7)]);
        let RtcpPacket::Remb(r) = all[5] else {
            panic!()
        };
        assert_eq!(r.ssrcs().collect::<Vec<_>>(), vec![22, 33]);
        assert!(r.bitrate().abs_diff(1_500_000) < 16);
        assert!(matches!(all[6], RtcpPacket::ReceiverReport(rr) if rr.ssrc() == 1));
        assert!(matches!(all[7], RtcpPacket::Bye(b) if b.ssrcs().eq([11])));
        assert!(matches!(all[8], RtcpPacket::Other(h) if h.packet_type() == pt::APP));
    }

    #[test]
    fn the_first_malformed_packet_ends_the_walk() {
        let mut buf = Vec::new();
        write_pli(&mut buf, 1, 2);
        buf.extend_from_slice(&[0x81, pt::PSFB, 0, 9, 0, 0]); // length past the end
        write_pli(&mut buf, 1, 3);
        let got: Vec<_> = packets(&buf).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert!(matches!(got[1], Err(RtcpError::BadLength { .. })));
        assert_eq!(packets(&[]).count(), 0);
        assert!(matches!(
            packets(&[0x40, 201, 0, 1, 0, 0, 0, 0]).next(),
            Some(Err(RtcpError::BadVersion(1)))
        ));
        // A PLI one word short.
        assert!(
            packets(&[0x81, 206, 0, 1, 0, 0, 0, 1])
                .next()
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn random_buffers_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf = Vec::new();
        for round in 0..20_000 {
            buf.clear();
            for _ in 0..(round % 97) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            if let Some(b) = buf.first_mut() {
                *b = 0x80 | (*b & 0x3f);
            }
            if buf.len() > 3 {
                buf[1] = 200 + (buf[1] % 8);
                buf[2] = 0;
                buf[3] %= 24;
            }
            read_every_field(&buf);
        }
    }
}
