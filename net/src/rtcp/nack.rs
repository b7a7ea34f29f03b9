//! Generic NACK (RFC 4585 §6.2.1): the receiver names lost packets as a packet id and a
//! bitmask of the 16 that follow it.

use super::header::{RtcpHeader, begin, finish};
use super::wire::{RtcpError, be16, be32, fmt, need, pt};

/// FCI entries one NACK written here holds at most (4,096 packets).
pub const MAX_NACK_ENTRIES: usize = 256;

/// A generic NACK.
#[derive(Debug, Clone, Copy)]
pub struct Nack<'a> {
    body: &'a [u8],
}

impl<'a> Nack<'a> {
    /// Validates the SSRCs and at least one whole FCI entry.
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        need("NACK", body, 12)?;
        if !(body.len() - 8).is_multiple_of(4) {
            return Err(RtcpError::Malformed("NACK FCI"));
        }
        Ok(Nack { body })
    }

    /// Who sends the NACK.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The stream whose packets were lost.
    pub fn media_ssrc(&self) -> u32 {
        be32(self.body, 4)
    }

    /// The (packet id, bitmask of following lost packets) entries.
    pub fn entries(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        self.body[8..]
            .chunks_exact(4)
            .map(|e| (be16(e, 0), be16(e, 2)))
    }

    /// Every sequence number reported lost, in the order given.
    pub fn lost(&self) -> impl Iterator<Item = u16> + 'a {
        self.entries().flat_map(|(pid, blp)| {
            std::iter::once(pid).chain(
                (0..16u16)
                    .filter(move |i| blp & (1 << i) != 0)
                    .map(move |i| pid.wrapping_add(i + 1)),
            )
        })
    }
}

/// Appends a NACK from `sender` about `media` naming `lost` (ascending, wrap-aware), packed
/// into as few entries as the bitmasks allow and at most [`MAX_NACK_ENTRIES`]. Writes
/// nothing when `lost` is empty.
pub fn write_nack(out: &mut Vec<u8>, sender: u32, media: u32, lost: &[u16]) {
    if lost.is_empty() {
        return;
    }
    let start = begin(out, fmt::NACK, pt::RTPFB);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&media.to_be_bytes());
    let mut entry: Option<(u16, u16)> = None;
    let mut entries = 0;
    for &seq in lost {
        match entry.as_mut() {
            Some((pid, blp)) if (1..=16).contains(&seq.wrapping_sub(*pid)) => {
                *blp |= 1 << (seq.wrapping_sub(*pid) - 1);
            }
            _ => {
                if let Some((pid, blp)) = entry.take() {
                    out.extend_from_slice(&pid.to_be_bytes());
                    out.extend_from_slice(&blp.to_be_bytes());
                    entries += 1;
                    if entries == MAX_NACK_ENTRIES {
                        break;
                    }
                }
                entry = Some((seq, 0));
            }
        }
    }
    if let Some((pid, blp)) = entry
        && entries < MAX_NACK_ENTRIES
    {
        out.extend_from_slice(&pid.to_be_bytes());
        out.extend_from_slice(&blp.to_be_bytes());
    }
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> Nack<'_> {
        Nack::parse(RtcpHeader::split(buf).unwrap().0).unwrap()
    }

    #[test]
    fn packs_and_unpacks_across_the_wrap() {
        let lost = [65_534, 65_535, 0, 5, 14, 40];
        let mut buf = Vec::new();
        write_nack(&mut buf, 1, 2, &lost);
        let n = parse(&buf);
        assert_eq!((n.sender_ssrc(), n.media_ssrc()), (1, 2));
        assert_eq!(
            n.entries().count(),
            2,
            "65534..=14 in one entry, 40 in another"
        );
        assert_eq!(n.lost().collect::<Vec<_>>(), lost);
        let mut empty = Vec::new();
        write_nack(&mut empty, 1, 2, &[]);
        assert!(empty.is_empty());
    }

    #[test]
    fn caps_entries_and_rejects_a_nack_without_any() {
        let lost: Vec<u16> = (0..2000).map(|i| i * 20).collect();
        let mut buf = Vec::new();
        write_nack(&mut buf, 1, 2, &lost);
        assert_eq!(parse(&buf).entries().count(), MAX_NACK_ENTRIES);
        let (h, _) = RtcpHeader::split(&[0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]).unwrap();
        assert!(Nack::parse(h).is_err());
    }
}
