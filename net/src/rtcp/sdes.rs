//! Source description, SDES (RFC 3550 §6.5): chunks of an SSRC and its items, of which
//! the router reads and writes CNAME (§6.5.1).

use super::header::{RtcpHeader, begin, finish};
use super::wire::{RtcpError, be32, need, pt};

/// The CNAME item type.
pub const CNAME: u8 = 1;

/// An SDES packet; every chunk and item was checked to stay inside it.
#[derive(Debug, Clone, Copy)]
pub struct Sdes<'a> {
    body: &'a [u8],
    count: usize,
}

/// One chunk: an SSRC and its items.
#[derive(Debug, Clone, Copy)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: u32,
    items: &'a [u8],
}

/// Splits one chunk off `b`: its SSRC, its items (up to the end marker), and the rest
/// after the chunk's padding to a 32-bit boundary. A chunk may also end at the end of the
/// packet without an end marker (lenient towards senders that omit it).
fn split_chunk(b: &[u8]) -> Result<(SdesChunk<'_>, &[u8]), RtcpError> {
    need("SDES chunk", b, 4)?;
    let ssrc = be32(b, 0);
    let mut at = 4;
    loop {
        match b.get(at) {
            None => {
                return Ok((
                    SdesChunk {
                        ssrc,
                        items: &b[4..],
                    },
                    &[],
                ));
            }
            Some(0) => break,
            Some(_) => {
                let len = *b.get(at + 1).ok_or(RtcpError::Malformed("SDES item"))?;
                at += 2 + usize::from(len);
                if at > b.len() {
                    return Err(RtcpError::Malformed("SDES item"));
                }
            }
        }
    }
    let items = &b[4..at];
    // The end marker, then zeros up to the next 32-bit boundary.
    let end = (at + 4) & !3;
    let rest = b.get(end..).unwrap_or(&[]);
    Ok((SdesChunk { ssrc, items }, rest))
}

impl<'a> Sdes<'a> {
    /// Validates every announced chunk.
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        let count = usize::from(h.count());
        let mut rest = body;
        for _ in 0..count {
            rest = split_chunk(rest)?.1;
        }
        Ok(Sdes { body, count })
    }

    /// Its chunks.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let mut rest = self.body;
        (0..self.count).map_while(move |_| {
            let (c, r) = split_chunk(rest).ok()?;
            rest = r;
            Some(c)
        })
    }

    /// The CNAME given for `ssrc`, if any.
    pub fn cname(&self, ssrc: u32) -> Option<&'a [u8]> {
        self.chunks()
            .filter(|c| c.ssrc == ssrc)
            .find_map(|c| c.items().find(|(t, _)| *t == CNAME).map(|(_, v)| v))
    }
}

impl<'a> SdesChunk<'a> {
    /// Its items as (type, value).
    pub fn items(self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.items;
        std::iter::from_fn(move || {
            let (&t, r) = rest.split_first()?;
            let (&len, r) = r.split_first()?;
            let v = r.get(..usize::from(len))?;
            rest = &r[usize::from(len)..];
            Some((t, v))
        })
    }
}

/// Appends an SDES packet with one chunk: `ssrc` and its CNAME (cut to 255 bytes).
pub fn write_sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let start = begin(out, 1, pt::SDES);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&[CNAME, cname.len() as u8]);
    out.extend_from_slice(cname);
    out.push(0); // end of the item list
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_several_chunks_and_items() {
        // Two chunks: (5: CNAME "ab", NAME "x"), (6: CNAME "wxyz").
        let mut buf = vec![0x82, 202, 0, 0];
        buf.extend_from_slice(&[0, 0, 0, 5, 1, 2, b'a', b'b', 2, 1, b'x', 0]);
        buf.extend_from_slice(&[0, 0, 0, 6, 1, 4, b'w', b'x', b'y', b'z', 0, 0]);
        buf[3] = (buf.len() / 4 - 1) as u8;
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        let s = Sdes::parse(h).unwrap();
        assert_eq!(s.chunks().count(), 2);
        assert_eq!(s.cname(5), Some(&b"ab"[..]));
        assert_eq!(s.cname(6), Some(&b"wxyz"[..]));
        assert_eq!(s.cname(7), None);
        let items: Vec<_> = s.chunks().next().unwrap().items().collect();
        assert_eq!(items, vec![(1, &b"ab"[..]), (2, &b"x"[..])]);
    }

    #[test]
    fn rejects_items_past_the_end() {
        let buf = [0x81, 202, 0, 2, 0, 0, 0, 5, 1, 9, b'a', b'b'];
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        assert!(Sdes::parse(h).is_err());
        let buf = [0x82, 202, 0, 2, 0, 0, 0, 5, 1, 1, b'a', 0];
        let (h, _) = RtcpHeader::split(&buf).unwrap();
        assert!(Sdes::parse(h).is_err(), "two chunks announced, one there");
    }

    #[test]
    fn written_cname_is_padded() {
        for name in ["", "a", "abcd", "abcdefg"] {
            let mut buf = Vec::new();
            write_sdes_cname(&mut buf, 3, name);
            assert_eq!(buf.len() % 4, 0);
            let (h, _) = RtcpHeader::split(&buf).unwrap();
            assert_eq!(Sdes::parse(h).unwrap().cname(3), Some(name.as_bytes()));
        }
    }
}
