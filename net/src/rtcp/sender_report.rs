//! Sender report, SR (RFC 3550 §6.4.1): the sender's NTP/RTP clock pair and counts, then
//! reception report blocks.

use super::header::{RtcpHeader, begin, finish};
use super::report_block::{MAX_REPORT_BLOCKS, REPORT_BLOCK_LEN, ReportBlockData, ReportBlocks};
use super::wire::{RtcpError, be32, need, pt};

/// Sender SSRC and sender info.
const SENDER_INFO_LEN: usize = 24;

/// An SR.
#[derive(Debug, Clone, Copy)]
pub struct SenderReport<'a> {
    body: &'a [u8],
    count: usize,
}

/// The sender info of an SR to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderReportData {
    /// The sender's SSRC.
    pub ssrc: u32,
    /// NTP timestamp (64-bit fixed point, seconds since 1900).
    pub ntp: u64,
    /// The RTP timestamp of the same instant.
    pub rtp_time: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

impl<'a> SenderReport<'a> {
    /// Validates an SR: sender info and every announced report block present.
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        let count = usize::from(h.count());
        need("SR", body, SENDER_INFO_LEN + count * REPORT_BLOCK_LEN)?;
        Ok(SenderReport { body, count })
    }

    /// The sender's SSRC.
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The NTP timestamp.
    pub fn ntp(&self) -> u64 {
        (u64::from(be32(self.body, 4)) << 32) | u64::from(be32(self.body, 8))
    }

    /// The RTP timestamp that corresponds to [`SenderReport::ntp`].
    pub fn rtp_time(&self) -> u32 {
        be32(self.body, 12)
    }

    /// The sender's packet count.
    pub fn packets(&self) -> u32 {
        be32(self.body, 16)
    }

    /// The sender's octet count.
    pub fn octets(&self) -> u32 {
        be32(self.body, 20)
    }

    /// Its report blocks.
    pub fn blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks {
            rest: &self.body[SENDER_INFO_LEN..],
            left: self.count,
        }
    }
}

/// Appends an SR with at most 31 of `blocks` (the rest belong in an RR that follows).
pub fn write_sender_report(out: &mut Vec<u8>, info: &SenderReportData, blocks: &[ReportBlockData]) {
    let blocks = &blocks[..blocks.len().min(MAX_REPORT_BLOCKS)];
    let start = begin(out, blocks.len() as u8, pt::SR);
    out.extend_from_slice(&info.ssrc.to_be_bytes());
    out.extend_from_slice(&info.ntp.to_be_bytes());
    out.extend_from_slice(&info.rtp_time.to_be_bytes());
    out.extend_from_slice(&info.packets.to_be_bytes());
    out.extend_from_slice(&info.octets.to_be_bytes());
    for b in blocks {
        b.write(out);
    }
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_missing_blocks_and_caps_written_ones() {
        let mut buf = Vec::new();
        let blocks = vec![ReportBlockData::default(); 40];
        write_sender_report(&mut buf, &SenderReportData::default(), &blocks);
        let (h, rest) = RtcpHeader::split(&buf).unwrap();
        assert!(rest.is_empty());
        assert_eq!(SenderReport::parse(h).unwrap().blocks().count(), 31);
        // Claim one block more than there is.
        buf[0] = 0x80 | 31;
        buf.truncate(buf.len() - 24);
        buf[3] -= 6;
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        assert!(SenderReport::parse(h).is_err());
    }
}
