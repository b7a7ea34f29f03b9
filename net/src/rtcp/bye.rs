//! Goodbye, BYE (RFC 3550 §6.6): sources leaving, with an optional reason.

use super::header::{RtcpHeader, begin, finish};
use super::wire::{RtcpError, be32, need, pt};

/// A BYE.
#[derive(Debug, Clone, Copy)]
pub struct Bye<'a> {
    body: &'a [u8],
    count: usize,
}

impl<'a> Bye<'a> {
    /// Validates the SSRC list and the reason's length.
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        let count = usize::from(h.count());
        need("BYE", body, 4 * count)?;
        if let Some(&len) = body.get(4 * count)
            && body.len() < 4 * count + 1 + usize::from(len)
        {
            return Err(RtcpError::Malformed("BYE reason"));
        }
        Ok(Bye { body, count })
    }

    /// The sources leaving.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let body = self.body;
        (0..self.count).map(move |i| be32(body, 4 * i))
    }

    /// The reason, if one was given.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let at = 4 * self.count;
        let len = usize::from(*self.body.get(at)?);
        self.body.get(at + 1..at + 1 + len)
    }
}

/// Appends a BYE for at most 31 of `ssrcs`.
pub fn write_bye(out: &mut Vec<u8>, ssrcs: &[u32]) {
    let ssrcs = &ssrcs[..ssrcs.len().min(31)];
    let start = begin(out, ssrcs.len() as u8, pt::BYE);
    for s in ssrcs {
        out.extend_from_slice(&s.to_be_bytes());
    }
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sources_and_reason() {
        let buf = [0x81, 203, 0, 2, 0, 0, 0, 8, 3, b'b', b'y', b'e'];
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        let b = Bye::parse(h).unwrap();
        assert_eq!(b.ssrcs().collect::<Vec<_>>(), vec![8]);
        assert_eq!(b.reason(), Some(&b"bye"[..]));
        let buf = [0x81, 203, 0, 2, 0, 0, 0, 8, 9, b'b', b'y', b'e'];
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        assert!(Bye::parse(h).is_err());
        let buf = [0x82, 203, 0, 1, 0, 0, 0, 8];
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        assert!(Bye::parse(h).is_err());
    }
}
