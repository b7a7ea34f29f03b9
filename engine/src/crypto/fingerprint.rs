//! Certificate fingerprints (RFC 8122 §5, RFC 5763 §5): hash functions, the
//! `AB:CD:...` value format mediasoup advertises in `dtlsParameters.fingerprints`, and the
//! check of a peer certificate against the fingerprints the peer signalled.

use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::error::DtlsError;
use crate::ortc::DtlsFingerprint;

/// A hash function of a certificate fingerprint (RFC 8122 §5, "hash-func").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FingerprintAlgorithm {
    /// `sha-1`.
    Sha1,
    /// `sha-224`.
    Sha224,
    /// `sha-256`.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl FingerprintAlgorithm {
    /// All of them, weakest first: the order mediasoup lists its fingerprints in.
    pub const ALL: [Self; 5] = [
        Self::Sha1,
        Self::Sha224,
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
    ];

    /// The name as signalled (`sha-256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha224 => "sha-224",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// Parses a signalled name, case-insensitively (RFC 8122 §5: hash-func is
    /// case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Hashes `der` (a DER-encoded certificate).
    pub fn digest(self, der: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(der).to_vec(),
            Self::Sha224 => Sha224::digest(der).to_vec(),
            Self::Sha256 => Sha256::digest(der).to_vec(),
            Self::Sha384 => Sha384::digest(der).to_vec(),
            Self::Sha512 => Sha512::digest(der).to_vec(),
        }
    }

    /// The fingerprint of `der`, in the signalled format.
    pub fn fingerprint(self, der: &[u8]) -> String {
        format_fingerprint(&self.digest(der))
    }
}

/// Formats digest bytes as uppercase hex pairs separated by colons (RFC 8122 §5).
pub fn format_fingerprint(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// Parses a colon-separated hex fingerprint (either case); `None` if malformed.
pub fn parse_fingerprint(value: &str) -> Option<Vec<u8>> {
    value
        .split(':')
        .map(|pair| {
            if pair.len() == 2 {
                u8::from_str_radix(pair, 16).ok()
            } else {
                None
            }
        })
        .collect()
}

/// The remote fingerprints a session checks the peer certificate against.
///
/// RFC 8122 §5: "An endpoint MUST select the set of fingerprints that use its most preferred
/// hash function (out of those offered by the peer) and verify that each certificate used
/// matches one fingerprint out of that set." Our preference is the strongest hash; signalled
/// fingerprints of unknown hash functions are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteFingerprints {
    algorithm: FingerprintAlgorithm,
    digests: Vec<Vec<u8>>,
}

impl RemoteFingerprints {
    /// Selects and parses the fingerprints to check from those signalled.
    pub(crate) fn from_signalled(signalled: &[DtlsFingerprint]) -> Result<Self, DtlsError> {
        let mut parsed = Vec::with_capacity(signalled.len());
        for f in signalled {
            let Some(algorithm) = FingerprintAlgorithm::from_name(&f.algorithm) else {
                continue;
            };
            let digest = parse_fingerprint(&f.value)
                .filter(|d| d.len() == algorithm.digest_len())
                .ok_or_else(|| {
                    DtlsError::InvalidFingerprint(format!("malformed {} value", algorithm.name()))
                })?;
            parsed.push((algorithm, digest));
        }
        let algorithm = parsed
            .iter()
            .map(|(a, _)| *a)
            .max()
            .ok_or(DtlsError::NoUsableFingerprint)?;
        let digests = parsed
            .into_iter()
            .filter(|(a, _)| *a == algorithm)
            .map(|(_, d)| d)
            .collect();
        Ok(Self { algorithm, digests })
    }

    /// The hash function checked.
    #[cfg(test)]
    pub(crate) fn algorithm(&self) -> FingerprintAlgorithm {
        self.algorithm
    }

    /// Whether the DER certificate `der` matches one of the selected fingerprints.
    pub(crate) fn matches(&self, der: &[u8]) -> bool {
        let digest = self.algorithm.digest(der);
        self.digests.contains(&digest)
    }

    /// Whether a non-empty peer chain is present and every certificate in it matches
    /// (RFC 8122 §5). WebRTC peers send a single self-signed certificate.
    pub(crate) fn matches_chain(&self, chain: &[Vec<u8>]) -> bool {
        !chain.is_empty() && chain.iter().all(|der| self.matches(der))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(algorithm: &str, value: String) -> DtlsFingerprint {
        DtlsFingerprint {
            algorithm: algorithm.into(),
            value,
        }
    }

    #[test]
    fn known_digests() {
        // FIPS 180 test vector "abc".
        assert_eq!(
            FingerprintAlgorithm::Sha256.fingerprint(b"abc"),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
        assert_eq!(
            FingerprintAlgorithm::Sha1.fingerprint(b"abc"),
            "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
        );
        for a in FingerprintAlgorithm::ALL {
            assert_eq!(a.digest(b"abc").len(), a.digest_len());
            assert_eq!(FingerprintAlgorithm::from_name(a.name()), Some(a));
            assert_eq!(
                FingerprintAlgorithm::from_name(&a.name().to_uppercase()),
                Some(a)
            );
        }
        assert_eq!(FingerprintAlgorithm::from_name("md5"), None);
    }

    #[test]
    fn parse_and_format() {
        assert_eq!(parse_fingerprint("ab:CD:01"), Some(vec![0xab, 0xcd, 0x01]));
        assert_eq!(parse_fingerprint("abc:d"), None);
        assert_eq!(parse_fingerprint("zz"), None);
        assert_eq!(format_fingerprint(&[0xab, 0x0c]), "AB:0C");
    }

    #[test]
    fn remote_selection_prefers_strongest_hash() {
        let der = b"certificate";
        let remote = RemoteFingerprints::from_signalled(&[
            fp("sha-1", "00:".repeat(19) + "00"),
            fp(
                "SHA-256",
                FingerprintAlgorithm::Sha256
                    .fingerprint(der)
                    .to_ascii_lowercase(),
            ),
            fp("foo-9", "whatever".into()),
        ])
        .unwrap();
        assert_eq!(remote.algorithm(), FingerprintAlgorithm::Sha256);
        assert!(remote.matches(der));
        assert!(!remote.matches(b"other"));
        assert!(remote.matches_chain(&[der.to_vec()]));
        assert!(!remote.matches_chain(&[]));

        assert_eq!(
            RemoteFingerprints::from_signalled(&[fp("md5", "00".into())]),
            Err(DtlsError::NoUsableFingerprint)
        );
        assert!(matches!(
            RemoteFingerprints::from_signalled(&[fp("sha-256", "AB:CD".into())]),
            Err(DtlsError::InvalidFingerprint(_))
        ));
    }
}
