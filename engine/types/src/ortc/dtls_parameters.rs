//! `DtlsParameters` (mediasoup `WebRtcTransportTypes.ts`): the DTLS role and certificate
//! fingerprints of one side (RFC 8122, RFC 5763).

use serde::{Deserialize, Serialize};

use super::error::{OrtcError, invalid};

/// DTLS role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DtlsRole {
    /// Decided by the other side.
    #[default]
    Auto,
    /// DTLS client.
    Client,
    /// DTLS server.
    Server,
}

/// A certificate fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtlsFingerprint {
    /// `sha-256`, ...
    pub algorithm: String,
    /// Colon-separated uppercase hex.
    pub value: String,
}

/// DTLS parameters of one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DtlsParameters {
    /// Role.
    #[serde(default)]
    pub role: DtlsRole,
    /// Fingerprints.
    pub fingerprints: Vec<DtlsFingerprint>,
}

const ALGORITHMS: &[(&str, usize)] = &[
    ("sha-1", 20),
    ("sha-224", 28),
    ("sha-256", 32),
    ("sha-384", 48),
    ("sha-512", 64),
];

impl DtlsParameters {
    /// Fingerprints present, of known algorithms, well formed.
    pub fn validate(&self) -> Result<(), OrtcError> {
        if self.fingerprints.is_empty() {
            return Err(invalid("dtlsParameters.fingerprints is empty"));
        }
        if self.fingerprints.len() > 8 {
            return Err(invalid("too many dtlsParameters.fingerprints"));
        }
        for f in &self.fingerprints {
            let alg = f.algorithm.to_ascii_lowercase();
            let Some((_, len)) = ALGORITHMS.iter().find(|(a, _)| *a == alg) else {
                return Err(invalid(format!(
                    "unknown fingerprint algorithm {:?}",
                    f.algorithm
                )));
            };
            let bytes: Vec<&str> = f.value.split(':').collect();
            if bytes.len() != *len
                || !bytes
                    .iter()
                    .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(invalid(format!(
                    "invalid {} fingerprint value",
                    f.algorithm
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints() {
        let ok = DtlsParameters {
            role: DtlsRole::Client,
            fingerprints: vec![DtlsFingerprint {
                algorithm: "sha-256".into(),
                value: vec!["AB"; 32].join(":"),
            }],
        };
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.fingerprints[0].value = "AB:CD".into();
        assert!(bad.validate().is_err());
        bad.fingerprints[0].algorithm = "md5".into();
        assert!(bad.validate().is_err());
        assert!(DtlsParameters::default().validate().is_err());
        assert!(
            serde_json::from_str::<DtlsParameters>(r#"{"role":"boss","fingerprints":[]}"#).is_err()
        );
    }
}
