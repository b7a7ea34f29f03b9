//! Picture loss indication, PLI (RFC 4585 §6.3.1): the receiver asks for a key frame.

use super::header::{RtcpHeader, begin, finish};
use super::wire::{RtcpError, be32, fmt, need, pt};

/// A PLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pli {
    sender: u32,
    media: u32,
}

impl Pli {
    /// Reads the two SSRCs.
    pub fn parse(h: RtcpHeader<'_>) -> Result<Self, RtcpError> {
        let body = h.body();
        need("PLI", body, 8)?;
        Ok(Pli {
            sender: be32(body, 0),
            media: be32(body, 4),
        })
    }

    /// Who asks.
    pub fn sender_ssrc(&self) -> u32 {
        self.sender
    }

    /// The stream that needs a key frame.
    pub fn media_ssrc(&self) -> u32 {
        self.media
    }
}

/// Appends a PLI from `sender` for `media`.
pub fn write_pli(out: &mut Vec<u8>, sender: u32, media: u32) {
    let start = begin(out, fmt::PLI, pt::PSFB);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&media.to_be_bytes());
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        write_pli(&mut buf, 1, 42);
        assert_eq!(buf, [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 42]);
        let p = Pli::parse(RtcpHeader::split(&buf).unwrap().0).unwrap();
        assert_eq!((p.sender_ssrc(), p.media_ssrc()), (1, 42));
    }
}
