//! A read-only view of the SRTP protection profiles a DTLS `ClientHello` offers in its
//! `use_srtp` extension (RFC 5764 §4.1.1), read before the datagram reaches the DTLS stack.
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
const HANDSHAKE_HEADER_LEN: usize = 12;
/// `use_srtp` extension type (RFC 5764 §9).
const USE_SRTP: u16 = 14;

/// The profile ids the first unfragmented `ClientHello` in `datagram` offers in `use_srtp`,
/// in the client's order. `None` when the datagram holds no such `ClientHello`, or it has no
/// (well-formed) `use_srtp` extension: the caller then leaves the choice to the stack.
pub(crate) fn offered_srtp_profiles(datagram: &[u8]) -> Option<Vec<u16>> {
    let mut rest = datagram;
    while rest.len() >= RECORD_HEADER_LEN {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let body = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)?;
        let epoch = u16::from_be_bytes([rest[3], rest[4]]);
        if rest[0] == HANDSHAKE
            && epoch == 0
            && let Some(profiles) = client_hello_profiles(body)
        {
            return Some(profiles);
        }
        rest = &rest[RECORD_HEADER_LEN + len..];
    }
    None
}

/// Reads a handshake record body holding one whole `ClientHello` (RFC 5246 §7.4.1.2,
/// RFC 6347 §4.2.1).
fn client_hello_profiles(record: &[u8]) -> Option<Vec<u16>> {
    let mut r = Reader(record);
    if r.u8()? != CLIENT_HELLO {
        return None;
    }
    let length = r.u24()?;
    let _message_seq = r.u16()?;
    let fragment_offset = r.u24()?;
    let fragment_length = r.u24()?;
    if fragment_offset != 0 || fragment_length != length {
        return None; // fragmented: not worth reassembling for a preference
    }
    debug_assert_eq!(record.len() - r.0.len(), HANDSHAKE_HEADER_LEN);
    let mut r = Reader(r.take(length)?);
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

    #[test]
    fn reads_the_offered_profiles_in_order() {
        assert_eq!(
            offered_srtp_profiles(&hello(&[1, 8, 7])),
            Some(vec![1, 8, 7])
        );
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        let full = hello(&[1, 7]);
        for n in 0..full.len() {
            assert_eq!(offered_srtp_profiles(&full[..n]), None, "cut at {n}");
        }
    }

    #[test]
    fn fragments_other_records_and_odd_lists_are_ignored() {
        let mut fragment = hello(&[1]);
        fragment[RECORD_HEADER_LEN + 8] = 1; // fragment_offset 1
        assert_eq!(offered_srtp_profiles(&fragment), None);
        let mut alert = hello(&[1]);
        alert[0] = 21;
        assert_eq!(offered_srtp_profiles(&alert), None);
        // A change_cipher_spec record before the hello is skipped.
        let ccs = vec![20, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        assert_eq!(
            offered_srtp_profiles(&[ccs, hello(&[8])].concat()),
            Some(vec![8])
        );
    }
}
