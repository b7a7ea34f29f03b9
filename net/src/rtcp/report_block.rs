//! The reception report block of SR and RR (RFC 3550 §6.4.1).

use super::wire::{RtcpError, be32, need};

/// Size of one report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Report blocks one SR or RR holds at most (5-bit count).
pub const MAX_REPORT_BLOCKS: usize = 31;

/// A report block, read from its 24 bytes.
#[derive(Debug, Clone, Copy)]
pub struct ReportBlock<'a>(&'a [u8]);

/// The figures of a report block (to write one, or as read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlockData {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (signed 24 bits: duplicates make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP time of the last SR received, or 0.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl<'a> ReportBlock<'a> {
    /// The block at the start of `b`.
    pub(crate) fn at(b: &'a [u8]) -> Result<Self, RtcpError> {
        need("report block", b, REPORT_BLOCK_LEN)?;
        Ok(ReportBlock(&b[..REPORT_BLOCK_LEN]))
    }

    /// The source reported on.
    pub fn ssrc(&self) -> u32 {
        be32(self.0, 0)
    }

    /// All figures.
    pub fn data(&self) -> ReportBlockData {
        let b = self.0;
        // Sign-extend the 24-bit cumulative count.
        let cumulative = (i32::from_be_bytes([b[5], b[6], b[7], 0])) >> 8;
        ReportBlockData {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost: cumulative,
            highest_seq: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }
}

/// The report blocks of an SR or RR.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    pub(crate) rest: &'a [u8],
    pub(crate) left: usize,
}

impl<'a> Iterator for ReportBlocks<'a> {
    type Item = ReportBlock<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let block = ReportBlock::at(self.rest).ok()?;
        self.rest = &self.rest[REPORT_BLOCK_LEN..];
        self.left -= 1;
        Some(block)
    }
}

impl ReportBlockData {
    /// Appends the 24-byte block; the cumulative count is clamped to 24 bits.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.push(self.fraction_lost);
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff);
        out.extend_from_slice(&lost.to_be_bytes()[1..]);
        out.extend_from_slice(&self.highest_seq.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clamps_the_loss_count() {
        let d = ReportBlockData {
            ssrc: 7,
            fraction_lost: 3,
            cumulative_lost: -5,
            highest_seq: 65_540,
            jitter: 9,
            last_sr: 10,
            delay_since_last_sr: 11,
        };
        let mut b = Vec::new();
        d.write(&mut b);
        assert_eq!(b.len(), REPORT_BLOCK_LEN);
        assert_eq!(ReportBlock::at(&b).unwrap().data(), d);
        let mut b = Vec::new();
        ReportBlockData {
            cumulative_lost: i32::MAX,
            ..d
        }
        .write(&mut b);
        assert_eq!(
            ReportBlock::at(&b).unwrap().data().cumulative_lost,
            0x7f_ffff
        );
        assert!(ReportBlock::at(&b[..23]).is_err());
    }
}
