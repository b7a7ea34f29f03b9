//! The SRTP protection profiles a DTLS `ClientHello` offers in its `use_srtp` extension
//! (RFC 5764 §4.1.1), read (and reassembled from its fragments) before the stack sees it.
//!
//! RFC 5764 §4.1.1 lets the server choose among the profiles the client offers; the stack
//! picks the first of the *client's* list it supports, so Chromium (which lists
//! `SRTP_AES128_CM_HMAC_SHA1_80` first) would always get AES-CM + HMAC-SHA1, about five times
//! the per-packet crypto cost of AES-GCM. A server session reads the offer here and accepts
//! only the profile it prefers among those offered (see `DtlsSession`), so our preference
//! wins, as it does in mediasoup's and str0m's DTLS servers.

use super::dtls_record::RECORD_HEADER_LEN;

/// Handshake record content type (RFC 5246 §6.2.1).
const HANDSHAKE: u8 = 22;
/// `client_hello` handshake message type (RFC 5246 §7.4).
const CLIENT_HELLO: u8 = 1;
/// DTLS handshake header: type, length, message_seq, fragment_offset, fragment_length
/// (RFC 6347 §4.2.2).
#[cfg(test)]
const HANDSHAKE_HEADER_LEN: usize = 12;
/// `use_srtp` extension type (RFC 5764 §9).
const USE_SRTP: u16 = 14;

/// Largest `ClientHello` reassembled (a post-quantum key share makes Chromium's about
/// 1.4 KB, split over two datagrams); a larger one is left to the stack.
const MAX_HELLO_LEN: usize = 16 * 1024;
/// Datagrams held back while a `ClientHello` is incomplete, at most.
pub(crate) const MAX_HELD: usize = 8;

/// What [`ClientHelloReader::push`] made of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelloProgress {
    /// The datagram holds no `ClientHello` fragment.
    NotHello,
    /// Part of a `ClientHello` arrived; the rest is still missing.
    Incomplete,
    /// The whole `ClientHello` is here: the profile ids its `use_srtp` offers, in the
    /// client's order (`None`: no well-formed `use_srtp`).
    Complete(Option<Vec<u16>>),
    /// Fragments that do not fit together or exceed the bound: give up.
    Invalid,
}

/// Reassembles the first `ClientHello` (RFC 6347 §4.2.3: handshake messages may be
/// fragmented over several records and datagrams) to read its `use_srtp` offer.
#[derive(Debug, Default)]
pub(crate) struct ClientHelloReader {
    /// `(message_seq, body)` of the message being reassembled.
    message: Option<(u16, Vec<u8>)>,
    /// Which body bytes arrived.
    filled: Vec<bool>,
    missing: usize,
}

impl ClientHelloReader {
    /// Takes the `ClientHello` fragments of one datagram.
    pub(crate) fn push(&mut self, datagram: &[u8]) -> HelloProgress {
        let mut rest = datagram;
        let mut seen = false;
        while rest.len() >= RECORD_HEADER_LEN {
            let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let Some(body) = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
                break;
            };
            let epoch = u16::from_be_bytes([rest[3], rest[4]]);
            if rest[0] == HANDSHAKE && epoch == 0 && body.first() == Some(&CLIENT_HELLO) {
                seen = true;
                // A record may carry several fragments (RFC 6347 §4.2.3); what follows
                // the `ClientHello`'s is left to the stack.
                let mut fragments = body;
                while fragments.first() == Some(&CLIENT_HELLO) {
                    match self.add_fragment(fragments) {
                        Some(next) => fragments = next,
                        None => return HelloProgress::Invalid,
                    }
                }
            }
            rest = &rest[RECORD_HEADER_LEN + len..];
        }
        match &self.message {
            Some((_, body)) if self.missing == 0 => {
                HelloProgress::Complete(client_hello_profiles(body))
            }
            _ if seen => HelloProgress::Incomplete,
            _ => HelloProgress::NotHello,
        }
    }

    /// Copies the handshake fragment at the start of `fragments` in and returns what
    /// follows it; `None` when it does not fit the message.
    fn add_fragment<'a>(&mut self, fragments: &'a [u8]) -> Option<&'a [u8]> {
        let mut r = Reader(fragments);
        let header = (|| {
            let _type = r.u8()?;
            Some((r.u24()?, r.u16()?, r.u24()?, r.u24()?))
        })();
        let (length, seq, offset, fragment_len) = header?;
        let fragment = r.take(fragment_len)?;
        if length > MAX_HELLO_LEN || offset + fragment_len > length {
            return None;
        }
        let (message_seq, body) = self.message.get_or_insert_with(|| {
            self.filled = vec![false; length];
            self.missing = length;
            (seq, vec![0; length])
        });
        if *message_seq != seq || body.len() != length {
            return None;
        }
        body[offset..offset + fragment_len].copy_from_slice(fragment);
        for f in &mut self.filled[offset..offset + fragment_len] {
            if !*f {
                *f = true;
                self.missing -= 1;
            }
        }
        Some(r.0)
    }
}

/// The `use_srtp` profile ids of a whole `ClientHello` body (RFC 5246 §7.4.1.2,
/// RFC 6347 §4.2.1: after the handshake header).
fn client_hello_profiles(body: &[u8]) -> Option<Vec<u16>> {
    let mut r = Reader(body);
    r.take(2 + 32)?; // client_version, random
    let session_id = usize::from(r.u8()?);
    r.take(session_id)?;
    let cookie = usize::from(r.u8()?);
    r.take(cookie)?;
    let suites = usize::from(r.u16()?);
    r.take(suites)?;
    let compression = usize::from(r.u8()?);
    r.take(compression)?;
    let extensions_len = usize::from(r.u16()?);
    let mut extensions = Reader(r.take(extensions_len)?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let len = usize::from(extensions.u16()?);
        let data = extensions.take(len)?;
        if kind == USE_SRTP {
            // SRTPProtectionProfiles (2-byte length, 2-byte ids), then srtp_mki.
            let mut ext = Reader(data);
            let list_len = usize::from(ext.u16()?);
            if list_len % 2 != 0 {
                return None;
            }
            let list = ext.take(list_len)?;
            return Some(
                list.chunks_exact(2)
                    .map(|id| u16::from_be_bytes([id[0], id[1]]))
                    .collect(),
            );
        }
    }
    None
}

/// A cursor over a byte slice; every read fails (`None`) past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}

/// Test support: splits a one-record handshake datagram into `n` fragments, one record
/// (datagram) each, as a client with a large `ClientHello` sends it.
#[cfg(test)]
pub(crate) fn fragments(hello: &[u8], n: usize) -> Vec<Vec<u8>> {
    let hs = &hello[RECORD_HEADER_LEN..];
    let body = &hs[HANDSHAKE_HEADER_LEN..];
    let step = body.len().div_ceil(n);
    body.chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let offset = i * step;
            let mut f = hs[..6].to_vec(); // type, length, message_seq
            f.extend_from_slice(&[(offset >> 16) as u8, (offset >> 8) as u8, offset as u8]);
            let l = chunk.len();
            f.extend_from_slice(&[(l >> 16) as u8, (l >> 8) as u8, l as u8]);
            f.extend_from_slice(chunk);
            let mut rec = hello[..11].to_vec();
            rec[10] = rec[10].wrapping_add(i as u8); // each record its own sequence number
            rec.extend_from_slice(&(f.len() as u16).to_be_bytes());
            rec.extend_from_slice(&f);
            rec
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello record offering `profiles` in `use_srtp`, after another extension.
    fn hello(profiles: &[u16]) -> Vec<u8> {
        let mut srtp = ((profiles.len() * 2) as u16).to_be_bytes().to_vec();
        for p in profiles {
            srtp.extend_from_slice(&p.to_be_bytes());
        }
        srtp.push(0); // no MKI
        let mut ext = vec![0x00, 0x17, 0x00, 0x00]; // extended_master_secret, empty
        ext.extend_from_slice(&USE_SRTP.to_be_bytes());
        ext.extend_from_slice(&(srtp.len() as u16).to_be_bytes());
        ext.extend_from_slice(&srtp);
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0]); // session id, cookie
        body.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]); // one suite, null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let len = body.len();
        let mut hs = vec![CLIENT_HELLO, 0, (len >> 8) as u8, len as u8, 0, 0];
        hs.extend_from_slice(&[0, 0, 0, 0, (len >> 8) as u8, len as u8]);
        hs.extend_from_slice(&body);
        let mut rec = vec![HANDSHAKE, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn offered(datagrams: &[Vec<u8>]) -> HelloProgress {
        let mut r = ClientHelloReader::default();
        let mut last = HelloProgress::NotHello;
        for d in datagrams {
            last = r.push(d);
        }
        last
    }

    #[test]
    fn reads_the_offered_profiles_in_order() {
        assert_eq!(
            offered(&[hello(&[1, 8, 7])]),
            HelloProgress::Complete(Some(vec![1, 8, 7]))
        );
    }

    /// Chromium's ClientHello (with a post-quantum key share) comes in two datagrams.
    #[test]
    fn reassembles_fragments_in_any_order_with_repeats() {
        let parts = fragments(&hello(&[1, 7, 8]), 3);
        assert_eq!(offered(&parts[..2]), HelloProgress::Incomplete);
        let shuffled = [
            parts[2].clone(),
            parts[0].clone(),
            parts[2].clone(),
            parts[1].clone(),
        ];
        assert_eq!(
            offered(&shuffled),
            HelloProgress::Complete(Some(vec![1, 7, 8]))
        );
        // Two fragments in one datagram.
        let joined = [parts[0].clone(), parts[1].clone()].concat();
        assert_eq!(
            offered(&[joined, parts[2].clone()]),
            HelloProgress::Complete(Some(vec![1, 7, 8]))
        );
    }

    /// Several fragments in one record (RFC 6347 §4.2.3), in any order, even all of
    /// them (found by the `dtls_handshake` fuzz target: only a record's first fragment
    /// was read, so such a `ClientHello` stayed incomplete until retransmitted whole).
    #[test]
    fn reassembles_fragments_sharing_a_record() {
        let parts = fragments(&hello(&[1, 7, 8]), 3);
        let body = |p: &Vec<u8>| p[RECORD_HEADER_LEN..].to_vec();
        let record = |bodies: &[Vec<u8>]| {
            let body = bodies.concat();
            let mut rec = parts[0][..11].to_vec();
            rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
            rec.extend_from_slice(&body);
            rec
        };
        let all = record(&[body(&parts[2]), body(&parts[0]), body(&parts[1])]);
        assert_eq!(
            offered(&[all]),
            HelloProgress::Complete(Some(vec![1, 7, 8]))
        );
        let two = record(&[body(&parts[0]), body(&parts[2])]);
        assert_eq!(
            offered(std::slice::from_ref(&two)),
            HelloProgress::Incomplete
        );
        assert_eq!(
            offered(&[two, parts[1].clone()]),
            HelloProgress::Complete(Some(vec![1, 7, 8]))
        );
        // A fragment cut short after a whole one: the stack judges.
        let mut cut = body(&parts[1]);
        cut.truncate(HANDSHAKE_HEADER_LEN + 3);
        assert_eq!(
            offered(&[record(&[body(&parts[0]), cut])]),
            HelloProgress::Invalid
        );
    }

    #[test]
    fn every_truncation_is_handled_without_panic() {
        let full = hello(&[1, 7]);
        for n in 0..full.len() {
            assert_ne!(
                offered(&[full[..n].to_vec()]),
                HelloProgress::Complete(Some(vec![1, 7])),
                "cut at {n}"
            );
        }
    }

    #[test]
    fn mismatched_fragments_other_records_and_odd_lists() {
        let parts = fragments(&hello(&[1]), 2);
        let mut other_seq = parts[1].clone();
        other_seq[RECORD_HEADER_LEN + 5] = 1; // message_seq 1
        assert_eq!(
            offered(&[parts[0].clone(), other_seq]),
            HelloProgress::Invalid
        );
        let mut too_long = parts[1].clone();
        too_long[RECORD_HEADER_LEN + 8] = 0xff; // offset past the end
        assert_eq!(offered(&[too_long]), HelloProgress::Invalid);
        let mut alert = hello(&[1]);
        alert[0] = 21;
        assert_eq!(offered(&[alert]), HelloProgress::NotHello);
        // A change_cipher_spec record before the hello is skipped.
        let ccs = vec![20, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        assert_eq!(
            offered(&[[ccs, hello(&[8])].concat()]),
            HelloProgress::Complete(Some(vec![8]))
        );
    }
}
