//! Transport-wide congestion control feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1): for a range of transport-wide
//! sequence numbers, whether each packet arrived and its receive delta, as run-length and
//! status-vector chunks followed by the deltas.

use super::header::RtcpHeader;
use super::wire::{RtcpError, be16, be32, need};

/// Sender and media SSRCs, base sequence, status count, reference time, feedback count.
const FIXED_LEN: usize = 16;

/// Not received.
const NOT_RECEIVED: u8 = 0;
/// Received, one-byte unsigned delta.
const SMALL_DELTA: u8 = 1;
/// Received, two-byte signed delta.
const LARGE_DELTA: u8 = 2;

/// Symbols a packet status chunk carries.
fn chunk_len(chunk: u16) -> usize {
    match chunk >> 14 {
        0 | 1 => usize::from(chunk & 0x1fff), // run length
        2 => 14,                              // status vector, 1-bit symbols
        _ => 7,                               // status vector, 2-bit symbols
    }
}

/// The `i`th symbol of a chunk.
fn symbol(chunk: u16, i: usize) -> u8 {
    match chunk >> 14 {
        0 | 1 => ((chunk >> 13) & 3) as u8,
        2 => ((chunk >> (13 - i)) & 1) as u8,
        _ => ((chunk >> (12 - 2 * i)) & 3) as u8,
    }
}

/// A transport-cc feedback packet; its chunks and deltas were checked to be complete.
#[derive(Debug, Clone, Copy)]
pub struct TransportCc<'a> {
    body: &'a [u8],
}

impl<'a> TransportCc<'a> {
    /// Validates the chunks covering every announced status and the deltas they call for.
    pub fn parse(h: RtcpHeader<'a>) -> Result<Self, RtcpError> {
        let body = h.body();
        need("transport-cc", body, FIXED_LEN)?;
        let count = usize::from(be16(body, 10));
        let (mut at, mut seen, mut delta_bytes) = (FIXED_LEN, 0, 0);
        while seen < count {
            if at + 2 > body.len() {
                return Err(RtcpError::Malformed("transport-cc chunks"));
            }
            let chunk = be16(body, at);
            let take = chunk_len(chunk).min(count - seen);
            for i in 0..take {
                delta_bytes += match symbol(chunk, i) {
                    NOT_RECEIVED => 0,
                    SMALL_DELTA => 1,
                    LARGE_DELTA => 2,
                    _ => return Err(RtcpError::Malformed("transport-cc status")),
                };
            }
            seen += take;
            at += 2;
        }
        if at + delta_bytes > body.len() {
            return Err(RtcpError::Malformed("transport-cc deltas"));
        }
        Ok(TransportCc { body })
    }

    /// Who sends the feedback.
    pub fn sender_ssrc(&self) -> u32 {
        be32(self.body, 0)
    }

    /// The media source named (informative).
    pub fn media_ssrc(&self) -> u32 {
        be32(self.body, 4)
    }

    /// The first transport-wide sequence number reported.
    pub fn base_seq(&self) -> u16 {
        be16(self.body, 8)
    }

    /// How many sequence numbers are reported.
    pub fn status_count(&self) -> u16 {
        be16(self.body, 10)
    }

    /// The reference time, in 64 ms units (signed 24 bits).
    pub fn reference_time(&self) -> i32 {
        i32::from_be_bytes([self.body[12], self.body[13], self.body[14], 0]) >> 8
    }

    /// The feedback packet count.
    pub fn feedback_count(&self) -> u8 {
        self.body[15]
    }

    /// Every reported sequence number with its receive delta in 250 µs ticks (`None`:
    /// not received).
    pub fn packets(&self) -> impl Iterator<Item = (u16, Option<i16>)> + 'a {
        let body = self.body;
        let count = usize::from(be16(body, 10));
        let base = be16(body, 8);
        let deltas_at = {
            let (mut at, mut seen) = (FIXED_LEN, 0);
            while seen < count {
                seen += chunk_len(be16(body, at)).min(count - seen);
                at += 2;
            }
            at
        };
        let (mut chunk_at, mut idx, mut delta_at, mut n) = (FIXED_LEN, 0, deltas_at, 0);
        std::iter::from_fn(move || {
            if n >= count {
                return None;
            }
            let mut chunk = be16(body, chunk_at);
            while idx >= chunk_len(chunk) {
                chunk_at += 2;
                idx = 0;
                chunk = be16(body, chunk_at);
            }
            let status = match symbol(chunk, idx) {
                SMALL_DELTA => {
                    delta_at += 1;
                    Some(i16::from(body[delta_at - 1]))
                }
                LARGE_DELTA => {
                    delta_at += 2;
                    Some(be16(body, delta_at - 2) as i16)
                }
                _ => None,
            };
            idx += 1;
            let seq = base.wrapping_add(n as u16);
            n += 1;
            Some((seq, status))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(chunks: &[u16], deltas: &[u8], count: u16) -> Vec<u8> {
        let mut b = vec![0x8f, 205, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 10];
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&[0xff, 0xff, 0xfe, 7]); // reference time -2
        for c in chunks {
            b.extend_from_slice(&c.to_be_bytes());
        }
        b.extend_from_slice(deltas);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b[3] = (b.len() / 4 - 1) as u8;
        b
    }

    fn parse(b: &[u8]) -> Result<TransportCc<'_>, RtcpError> {
        TransportCc::parse(RtcpHeader::split(b).unwrap().0)
    }

    #[test]
    fn reads_vectors_runs_and_deltas() {
        // 2-bit vector: received small, lost, received large, received small; then a run
        // of 3 lost.
        let vector = 0xc000 | (1 << 12) | (2 << 8) | (1 << 6);
        let run = 3;
        let buf = packet(&[vector, run], &[4, 0xff, 0xf8, 200], 10);
        let t = parse(&buf).unwrap();
        assert_eq!((t.sender_ssrc(), t.media_ssrc()), (1, 2));
        assert_eq!((t.base_seq(), t.status_count()), (10, 10));
        assert_eq!((t.reference_time(), t.feedback_count()), (-2, 7));
        let got: Vec<_> = t.packets().collect();
        assert_eq!(
            got[..4],
            [(10, Some(4)), (11, None), (12, Some(-8)), (13, Some(200))]
        );
        assert_eq!(got.len(), 10);
        assert!(got[4..].iter().all(|(_, d)| d.is_none()));
        // A run of received packets needs their deltas.
        let run_small = (1 << 13) | 3;
        assert!(parse(&packet(&[run_small], &[1, 2], 3)).is_err());
        assert!(parse(&packet(&[run_small], &[1, 2, 3], 3)).is_ok());
        // Chunks that do not cover the count, and the reserved symbol.
        assert!(parse(&packet(&[run], &[], 4)).is_err());
        assert!(parse(&packet(&[0xc000 | (3 << 12)], &[], 1)).is_err());
    }
}
