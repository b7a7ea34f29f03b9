//! Receiver report, RR (RFC 3550 §6.4.2): the reporter's SSRC and reception report blocks.

use super::header::{RtcpHeader, begin, finish};
use super::report_block::{MAX_REPORT_BLOCKS, REPORT_BLOCK_LEN, ReportBlockData, ReportBlocks};
use super::wire::{RtcpError, be32, need, pt};

/// An RR.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverReport<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> ReceiverReport<'a> {
    /// Validates an RR: the reporter's SSRC and every announced block present.
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        let count = usize::from(h.count());
        need("RR", body, 4 + count * REPORT_BLOCK_LEN)?;
        Ok(ReceiverReport { body, count })
    }

    /// The reporter's SSRC.
    pub fn ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// Its report blocks.
    pub fn blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks {
            rest: &self.body[4..],
            left: self.count,
        }
    }
}

/// Appends an RR from `ssrc` with at most 31 of `blocks`; callers with more write
/// several RRs.
pub fn write_receiver_report(out: &mut Vec<u8>, ssrc: u32, blocks: &[ReportBlockData]) {
    let blocks = &blocks[..blocks.len().min(MAX_REPORT_BLOCKS)];
    let start = begin(out, blocks.len() as u8, pt::RR);
    out.extend_from_slice(&ssrc.to_be_bytes());
    for b in blocks {
        b.write(out);
    }
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_blocks() {
        let blocks: Vec<ReportBlockData> = (0..3)
            .map(|i| ReportBlockData {
                ssrc: 100 + i,
                cumulative_lost: i as i32,
                ..Default::default()
            })
            .collect();
        let mut buf = Vec::new();
        write_receiver_report(&mut buf, 9, &blocks);
        assert_eq!(buf.len(), 8 + 3 * 24);
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        let rr = ReceiverReport::parse(h).unwrap();
        assert_eq!(rr.ssrc(), 9);
        let read: Vec<ReportBlockData> = rr.blocks().map(|b| b.data()).collect();
        assert_eq!(read, blocks);
        let (h, _) = RtcpHeader::split(&[0x81, 201, 0, 1, 0, 0, 0, 9]).unwrap();
        assert!(
            ReceiverReport::parse(h).is_err(),
            "one block announced, none there"
        );
    }
}
