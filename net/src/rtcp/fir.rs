//! Full intra request, FIR (RFC 5104 §4.3.1): key frame requests, one FCI entry per
//! stream, each with a command sequence number.

use super::header::{RtcpHeader, begin, finish};
use super::wire::{RtcpError, be32, fmt, need, pt};

/// A FIR.
#[derive(Debug, Clone, Copy)]
pub struct Fir<'a> {
    body: &'a [u8],
}

impl<'a> Fir<'a> {
    /// Validates the SSRCs and whole 8-byte FCI entries (at least one).
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        need("FIR", body, 16)?;
        if !(body.len() - 8).is_multiple_of(8) {
            return Err(RtcpError::Malformed("FIR FCI"));
        }
        Ok(Fir { body })
    }

    /// Who asks.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The (stream, command sequence number) entries.
    pub fn entries(&self) -> impl Iterator<Item = (u32, u8)> + 'a {
        self.body[8..].chunks_exact(8).map(|e| (be32(e, 0), e[4]))
    }
}

/// Appends a FIR from `sender` asking `media` for a key frame, command number `seq`.
pub fn write_fir(out: &mut Vec<u8>, sender: u32, media: u32, seq: u8) {
    let start = begin(out, fmt::FIR, pt::PSFB);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // media SSRC: unused (RFC 5104 §4.3.1.2)
    out.extend_from_slice(&media.to_be_bytes());
    out.extend_from_slice(&[seq, 0, 0, 0]);
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entries_and_rejects_partial_ones() {
        let mut buf = vec![0x84, 206, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0];
        buf.extend_from_slice(&[0, 0, 0, 7, 3, 0, 0, 0, 0, 0, 0, 8, 4, 0, 0, 0]);
        let f = Fir::parse(RtcpHeader::split(&buf).unwrap().0).unwrap();
        assert_eq!(f.sender_ssrc(), 1);
        assert_eq!(f.entries().collect::<Vec<_>>(), vec![(7, 3), (8, 4)]);
        let buf = [0x84, 206, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        assert!(Fir::parse(RtcpHeader::split(&buf).unwrap().0).is_err());
    }
}
