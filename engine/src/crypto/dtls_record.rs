//! Framing check of a DTLS datagram before it reaches the DTLS stack: a datagram must be one
//! or more complete DTLS records (RFC 6347 §4.1, §4.1.1: records never span datagrams).
//!
//! The stack itself silently discards most malformed records (RFC 6347 §4.1.2.7); checking
//! the framing first lets the caller count garbage, and keeps garbage from creating state
//! (a server association is created by the first datagram it reads).

use super::error::DtlsError;

/// Record header length: type, version, epoch, sequence number, length.
pub(crate) const RECORD_HEADER_LEN: usize = 13;

/// Largest record fragment: 2^14 plus the ciphertext expansion allowance (RFC 5246 §6.2.3).
const MAX_FRAGMENT_LEN: usize = (1 << 14) + 2048;

/// Content types DTLS 1.2 defines (RFC 5246 §6.2.1, RFC 6347 §4.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const APPLICATION_DATA: u8 = 23;

/// DTLS versions have major byte 254 (1.0 is 254.255, 1.2 is 254.253; RFC 6347 §4.1).
const DTLS_VERSION_MAJOR: u8 = 0xfe;

/// Whether a datagram's first byte is in the DTLS range of the RFC 7983 §7 demultiplexing
/// (20..=63), as opposed to STUN (0..=3) or RTP/RTCP (128..=191).
pub fn is_dtls(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=63))
}

/// Checks that `datagram` is a sequence of complete, plausible DTLS records.
pub(crate) fn check_datagram(datagram: &[u8]) -> Result<(), DtlsError> {
    if datagram.is_empty() {
        return Err(DtlsError::InvalidRecord("empty datagram".into()));
    }
    let mut rest = datagram;
    while !rest.is_empty() {
        if rest.len() < RECORD_HEADER_LEN {
            return Err(DtlsError::InvalidRecord("truncated record header".into()));
        }
        let content_type = rest[0];
        if !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&content_type) {
            return Err(DtlsError::InvalidRecord(format!(
                "unknown content type {content_type}"
            )));
        }
        if rest[1] != DTLS_VERSION_MAJOR {
            return Err(DtlsError::InvalidRecord("not a DTLS version".into()));
        }
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        if len == 0 || len > MAX_FRAGMENT_LEN {
            return Err(DtlsError::InvalidRecord(format!("bad record length {len}")));
        }
        if rest.len() - RECORD_HEADER_LEN < len {
            return Err(DtlsError::InvalidRecord("truncated record".into()));
        }
        let epoch = u16::from_be_bytes([rest[3], rest[4]]);
        let body = &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len];
        if epoch == 0 {
            check_plaintext(content_type, body)?;
        }
        rest = &rest[RECORD_HEADER_LEN + len..];
    }
    Ok(())
}

/// Epoch 0 carries plaintext, which anyone who can spoof the peer's address can forge. The
/// stack answers a malformed `ChangeCipherSpec` or alert, or any epoch-0 application data,
/// with a fatal alert that ends the handshake; none of those is ever legitimate, so they are
/// refused here instead.
fn check_plaintext(content_type: u8, body: &[u8]) -> Result<(), DtlsError> {
    match content_type {
        // RFC 5246 §7.1: a single byte of value 1.
        CHANGE_CIPHER_SPEC if body != [1] => Err(DtlsError::InvalidRecord(
            "malformed change_cipher_spec".into(),
        )),
        // RFC 5246 §7.2: level (warning 1, fatal 2) and description.
        ALERT if body.len() != 2 || !(1..=2).contains(&body[0]) => {
            Err(DtlsError::InvalidRecord("malformed alert".into()))
        }
        // RFC 5246 §7.4.9, RFC 6347 §4.1: application data is only ever protected.
        APPLICATION_DATA => Err(DtlsError::InvalidRecord(
            "application data in epoch 0".into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn framing() {
        let one = record(22, &[1, 2, 3]);
        assert!(check_datagram(&one).is_ok());
        let two = [one.clone(), record(20, &[1])].concat();
        assert!(check_datagram(&two).is_ok());
        assert!(check_datagram(&two[..two.len() - 1]).is_err());
        assert!(check_datagram(&one[..RECORD_HEADER_LEN - 1]).is_err());
        assert!(check_datagram(&record(24, &[1])).is_err());
        assert!(check_datagram(&record(22, &[])).is_err());
        assert!(check_datagram(&[]).is_err());
        let mut tls = one.clone();
        tls[1] = 3;
        assert!(check_datagram(&tls).is_err());
        assert!(check_datagram(&record(20, &[2])).is_err());
        assert!(check_datagram(&record(21, &[2, 40])).is_ok());
        assert!(check_datagram(&record(21, &[9, 40])).is_err());
        assert!(check_datagram(&record(21, &[2])).is_err());
        assert!(check_datagram(&record(23, &[1, 2, 3])).is_err());
        let mut protected = record(23, &[1, 2, 3]);
        protected[4] = 1;
        assert!(check_datagram(&protected).is_ok());
        assert!(is_dtls(&one) && !is_dtls(&[0x80]) && !is_dtls(&[0, 1]) && !is_dtls(&[]));
    }
}
