//! SRTP protection profiles negotiated by DTLS `use_srtp` (RFC 5764 §4.1.2, RFC 7714 §14.2)
//! and the master keys derived for them from the DTLS handshake (RFC 5764 §4.2).

use std::fmt;

/// An SRTP protection profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `SRTP_AEAD_AES_256_GCM` (0x0008, RFC 7714 §14.2).
    AeadAes256Gcm,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007, RFC 7714 §14.2).
    AeadAes128Gcm,
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001, RFC 5764 §4.1.2).
    Aes128CmHmacSha1_80,
}

impl SrtpProfile {
    /// Our preference, first best: the AEAD profiles, then the mandatory-to-implement one.
    pub const PREFERENCE: [Self; 3] = [
        Self::AeadAes256Gcm,
        Self::AeadAes128Gcm,
        Self::Aes128CmHmacSha1_80,
    ];

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            Self::AeadAes128Gcm | Self::Aes128CmHmacSha1_80 => 16,
        }
    }

    /// Master salt length in bytes (RFC 3711 §8.2: 112 bits; RFC 7714 §12: 96 bits).
    pub fn salt_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm | Self::AeadAes128Gcm => 12,
            Self::Aes128CmHmacSha1_80 => 14,
        }
    }

    /// The IANA name (RFC 5764 §4.1.2).
    pub fn name(self) -> &'static str {
        match self {
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
        }
    }

    /// The 16-bit profile identifier carried in `use_srtp`.
    pub fn id(self) -> u16 {
        match self {
            Self::AeadAes256Gcm => 0x0008,
            Self::AeadAes128Gcm => 0x0007,
            Self::Aes128CmHmacSha1_80 => 0x0001,
        }
    }

    /// Length of the DTLS exporter output: both directions' keys and salts.
    pub fn keying_material_len(self) -> usize {
        2 * (self.key_len() + self.salt_len())
    }
}

/// One direction's SRTP master key and master salt.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyMaterial {
    /// Master key.
    pub key: Vec<u8>,
    /// Master salt.
    pub salt: Vec<u8>,
}

impl SrtpKeyMaterial {
    /// Key then salt, the layout libsrtp takes.
    pub fn key_and_salt(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.key.len() + self.salt.len());
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.salt);
        out
    }

    /// Splits `EXTRACTOR-dtls_srtp` output into `(client_write, server_write)` (RFC 5764
    /// §4.2):
    ///
    /// ```text
    /// client_write_SRTP_master_key[key_len]
    /// server_write_SRTP_master_key[key_len]
    /// client_write_SRTP_master_salt[salt_len]
    /// server_write_SRTP_master_salt[salt_len]
    /// ```
    ///
    /// `None` if `material` is not [`SrtpProfile::keying_material_len`] long.
    pub fn split(profile: SrtpProfile, material: &[u8]) -> Option<(Self, Self)> {
        if material.len() != profile.keying_material_len() {
            return None;
        }
        let (keys, salts) = material.split_at(2 * profile.key_len());
        let (client_key, server_key) = keys.split_at(profile.key_len());
        let (client_salt, server_salt) = salts.split_at(profile.salt_len());
        Some((
            Self {
                key: client_key.to_vec(),
                salt: client_salt.to_vec(),
            },
            Self {
                key: server_key.to_vec(),
                salt: server_salt.to_vec(),
            },
        ))
    }
}

impl fmt::Debug for SrtpKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeyMaterial")
            .field("key_len", &self.key.len())
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_rfc5764_layout() {
        for profile in SrtpProfile::PREFERENCE {
            let material: Vec<u8> = (0..profile.keying_material_len() as u8).collect();
            let (client, server) = SrtpKeyMaterial::split(profile, &material).unwrap();
            let (k, s) = (profile.key_len(), profile.salt_len());
            assert_eq!(client.key, material[..k]);
            assert_eq!(server.key, material[k..2 * k]);
            assert_eq!(client.salt, material[2 * k..2 * k + s]);
            assert_eq!(server.salt, material[2 * k + s..]);
            assert!(SrtpKeyMaterial::split(profile, &material[1..]).is_none());
            assert!(!format!("{client:?}").contains(&format!("{:?}", client.key)));
        }
        assert_eq!(SrtpProfile::AeadAes256Gcm.keying_material_len(), 88);
        assert_eq!(SrtpProfile::AeadAes128Gcm.keying_material_len(), 56);
        assert_eq!(SrtpProfile::Aes128CmHmacSha1_80.keying_material_len(), 60);
    }
}
