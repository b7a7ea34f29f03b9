//! The worker's DTLS certificate: one ECDSA P-256 self-signed certificate generated at worker
//! start and shared by every WebRTC transport, authenticated by its fingerprints in the
//! signalling rather than by a CA (RFC 5763 §5, RFC 8827 §6.5).

use std::fmt;
use std::sync::Arc;

use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;

use super::error::DtlsError;
use super::fingerprint::FingerprintAlgorithm;
use crate::ortc::DtlsFingerprint;

/// Subject alternative name of the generated certificate; peers never check it.
const SUBJECT_NAME: &str = "kolabmeet";

/// A self-signed ECDSA P-256 certificate with its private key and fingerprints.
///
/// Cheap to share: sessions clone the key handle, not the key.
#[derive(Clone)]
pub struct DtlsCertificate {
    provider: Arc<dyn RTCCryptoProvider>,
    certificate: Certificate,
    der: Vec<u8>,
    fingerprints: Vec<DtlsFingerprint>,
}

impl DtlsCertificate {
    /// Generates a fresh key pair and self-signed certificate (ECDSA P-256 with SHA-256, the
    /// key type browsers generate for WebRTC themselves).
    pub fn generate() -> Result<Self, DtlsError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let certificate = Certificate::generate_self_signed_with_alg(
            vec![SUBJECT_NAME.to_owned()],
            &rcgen::PKCS_ECDSA_P256_SHA256,
            provider.crypto(),
        )
        .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let der = certificate
            .certificate
            .first()
            .ok_or_else(|| DtlsError::Certificate("no certificate generated".into()))?
            .as_ref()
            .to_vec();
        let fingerprints = FingerprintAlgorithm::ALL
            .into_iter()
            .map(|algorithm| DtlsFingerprint {
                algorithm: algorithm.name().to_owned(),
                value: algorithm.fingerprint(&der),
            })
            .collect();
        Ok(Self {
            provider,
            certificate,
            der,
            fingerprints,
        })
    }

    /// The DER-encoded certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The fingerprints for `dtlsParameters.fingerprints`, one per hash function, in
    /// mediasoup's order (`sha-1`, `sha-224`, `sha-256`, `sha-384`, `sha-512`), values in
    /// uppercase colon-separated hex.
    pub fn fingerprints(&self) -> &[DtlsFingerprint] {
        &self.fingerprints
    }

    /// The fingerprint for one hash function.
    pub fn fingerprint(&self, algorithm: FingerprintAlgorithm) -> &str {
        // `ALL` is in the same order as `fingerprints`.
        let index = FingerprintAlgorithm::ALL
            .iter()
            .position(|a| *a == algorithm)
            .unwrap_or_default();
        &self.fingerprints[index].value
    }

    pub(crate) fn provider(&self) -> &Arc<dyn RTCCryptoProvider> {
        &self.provider
    }

    pub(crate) fn certificate(&self) -> &Certificate {
        &self.certificate
    }
}

impl fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("sha-256", &self.fingerprint(FingerprintAlgorithm::Sha256))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn fingerprints_in_mediasoup_format() {
        assert_send_sync::<DtlsCertificate>();
        let cert = DtlsCertificate::generate().unwrap();
        let names: Vec<&str> = cert
            .fingerprints()
            .iter()
            .map(|f| f.algorithm.as_str())
            .collect();
        assert_eq!(names, ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]);
        for (f, algorithm) in cert.fingerprints().iter().zip(FingerprintAlgorithm::ALL) {
            let pairs: Vec<&str> = f.value.split(':').collect();
            assert_eq!(pairs.len(), algorithm.digest_len());
            assert!(pairs.iter().all(|p| {
                p.len() == 2
                    && p.bytes()
                        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
            }));
            assert_eq!(cert.fingerprint(algorithm), f.value);
        }
        // The ortc validation that checks what clients send accepts ours too.
        crate::ortc::DtlsParameters {
            role: crate::ortc::DtlsRole::Auto,
            fingerprints: cert.fingerprints().to_vec(),
        }
        .validate()
        .unwrap();
        assert_ne!(
            DtlsCertificate::generate().unwrap().fingerprints(),
            cert.fingerprints()
        );
    }

    #[test]
    fn is_ecdsa_p256_self_signed() {
        let cert = DtlsCertificate::generate().unwrap();
        // id-ecPublicKey (1.2.840.10045.2.1) and prime256v1 (1.2.840.10045.3.1.7) appear in
        // the SubjectPublicKeyInfo; ecdsa-with-SHA256 (1.2.840.10045.4.3.2) is the signature.
        let contains = |needle: &[u8]| cert.der().windows(needle.len()).any(|w| w == needle);
        assert!(contains(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]));
        assert!(contains(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]));
        assert!(contains(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
    }
}
