//! Receiver estimated maximum bitrate, REMB (draft-alvestrand-rmcat-remb-03 §2.2): a
//! PSFB application-layer feedback naming a bitrate and the streams it covers.

use super::header::{RtcpHeader, begin, finish};
use super::wire::{RtcpError, be32, fmt, need, pt};

/// A REMB.
#[derive(Debug, Clone, Copy)]
pub struct Remb<'a> {
    body: &'a [u8],
}

impl<'a> Remb<'a> {
    /// Whether an application-layer feedback is a REMB (its unique identifier).
    pub fn is_remb(h: &RtcpHeader<'_>) -> bool {
        h.body().get(8..12) == Some(b"REMB")
    }

    /// Validates the identifier and the SSRC list.
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        need("REMB", body, 16)?;
        if !Self::is_remb(&h) {
            return Err(RtcpError::Malformed("REMB identifier"));
        }
        need("REMB SSRCs", body, 16 + 4 * usize::from(body[12]))?;
        Ok(Remb { body })
    }

    /// Who estimates.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The estimate in bits per second (mantissa · 2^exponent; saturates).
    pub fn bitrate(&self) -> u64 {
        let b = self.body;
        let exp = u32::from(b[13] >> 2);
        let mantissa = (u64::from(b[13] & 3) << 16) | (u64::from(b[14]) << 8) | u64::from(b[15]);
        mantissa
            .checked_shl(exp)
            .filter(|v| v >> exp == mantissa)
            .unwrap_or(u64::MAX)
    }

    /// The streams the estimate covers.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let body = self.body;
        (0..usize::from(body[12])).map(move |i| be32(body, 16 + 4 * i))
    }
}

/// Appends a REMB from `sender` of `bitrate` bit/s for at most 255 of `ssrcs`.
pub fn write_remb(out: &mut Vec<u8>, sender: u32, bitrate: u64, ssrcs: &[u32]) {
    let ssrcs = &ssrcs[..ssrcs.len().min(255)];
    let mut exp = 0u32;
    while bitrate >> exp > 0x3_ffff {
        exp += 1;
    }
    let mantissa = (bitrate >> exp) as u32;
    let start = begin(out, fmt::AFB, pt::PSFB);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(b"REMB");
    out.push(ssrcs.len() as u8);
    out.push(((exp as u8) << 2) | (mantissa >> 16) as u8);
    out.extend_from_slice(&(mantissa as u16).to_be_bytes());
    for s in ssrcs {
        out.extend_from_slice(&s.to_be_bytes());
    }
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Result<Remb<'_>, RtcpError> {
        Remb::parse(RtcpHeader::split(buf).unwrap().0)
    }

    #[test]
    fn round_trips_small_and_huge_rates() {
        for rate in [0, 1000, 0x3_ffff, 300_000_000, u64::MAX >> 1] {
            let mut buf = Vec::new();
            write_remb(&mut buf, 1, rate, &[5]);
            let r = parse(&buf).unwrap();
            let got = r.bitrate();
            assert!(
                got <= rate && rate - got <= rate >> 17,
                "{rate} read as {got}"
            );
            assert_eq!(r.ssrcs().collect::<Vec<_>>(), vec![5]);
            assert_eq!(r.sender_ssrc(), 1);
        }
    }

    #[test]
    fn rejects_missing_ssrcs() {
        let mut buf = Vec::new();
        write_remb(&mut buf, 1, 1000, &[5]);
        buf[16] = 2; // two SSRCs announced, one there
        assert!(parse(&buf).is_err());
    }
}
