//! RTCP that the worker acts on so far: key frame requests from receivers (PLI, RFC 4585
//! §6.3.1; FIR, RFC 5104 §4.3.1) aimed at a consumer's SSRC become a key frame request
//! to its producer. Reports and the other feedback types are read in the next steps.

use std::time::Instant;

use super::core::WorkerCore;
use crate::ids::{ConsumerId, TransportId};

/// PSFB (RFC 4585 §6.1).
const PT_PSFB: u8 = 206;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;

/// Media SSRCs named by the PLIs and FIRs of a compound packet. Walks the RTCP headers
/// (RFC 3550 §6.4.1) and stops at the first malformed one.
fn key_frame_requests(buf: &[u8], out: &mut Vec<u32>) {
    let mut at = 0;
    while at + 4 <= buf.len() {
        let (b0, pt) = (buf[at], buf[at + 1]);
        let len = 4 * (usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])) + 1);
        if b0 >> 6 != 2 || at + len > buf.len() {
            return;
        }
        let pkt = &buf[at..at + len];
        if pt == PT_PSFB && len >= 12 {
            match b0 & 0x1f {
                FMT_PLI => out.push(u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]])),
                FMT_FIR => {
                    // FCI entries: SSRC (4) + seq nr (1) + reserved (3).
                    for fci in pkt[12..].chunks_exact(8) {
                        out.push(u32::from_be_bytes([fci[0], fci[1], fci[2], fci[3]]));
                    }
                }
                _ => {}
            }
        }
        at += len;
    }
}

impl WorkerCore {
    /// Decrypted RTCP from `transport`.
    pub(super) fn handle_rtcp(&mut self, now: Instant, transport: TransportId, buf: &[u8]) {
        let mut ssrcs = Vec::new();
        key_frame_requests(buf, &mut ssrcs);
        for ssrc in ssrcs {
            let consumer: Option<ConsumerId> = self
                .media
                .consumers
                .values()
                .find(|c| c.transport == transport && c.ssrc == ssrc)
                .map(|c| c.id);
            if let Some(c) = consumer {
                self.request_key_frame_for(now, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pli_and_fir_targets() {
        let mut buf = vec![0x80, 201, 0, 1, 0, 0, 0, 9]; // RR, no blocks
        buf.extend_from_slice(&[0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 42]); // PLI 42
        buf.extend_from_slice(&[
            0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 3, 0, 0, 0,
        ]);
        let mut out = Vec::new();
        key_frame_requests(&buf, &mut out);
        assert_eq!(out, vec![42, 7]);
        out.clear();
        key_frame_requests(&[0x81, 206, 0, 9, 0], &mut out); // length past the end
        key_frame_requests(&[0x41, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 42], &mut out); // version 1
        key_frame_requests(&[], &mut out);
        assert!(out.is_empty());
    }
}
