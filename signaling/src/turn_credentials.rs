//! Time-limited TURN credentials, coturn's "REST API" scheme (contract section 5,
//! `roomReady`): `username = "<expiry unix time>:<peerId>"`,
//! `credential = base64(HMAC-SHA1(static-auth-secret, username))`.

use base64::Engine as _;
use ring::hmac;
use serde::Serialize;

/// How long credentials stay valid, in seconds (the old server's 86400).
pub const TURN_CREDENTIAL_LIFETIME_SECS: u64 = 86_400;

/// One `iceServers` entry as `RTCPeerConnection` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// The TURN URLs.
    pub urls: Vec<String>,
    /// `<expiry>:<peerId>`.
    pub username: String,
    /// base64 HMAC-SHA1 of the username.
    pub credential: String,
}

/// Computes the credentials for `peer_id` at unix time `now_unix`.
pub fn ice_server(turn_url: &str, secret: &str, peer_id: &str, now_unix: u64) -> IceServer {
    let username = format!(
        "{}:{peer_id}",
        now_unix.saturating_add(TURN_CREDENTIAL_LIFETIME_SECS)
    );
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = hmac::sign(&key, username.as_bytes());
    IceServer {
        urls: vec![turn_url.to_owned()],
        credential: base64::engine::general_purpose::STANDARD.encode(tag.as_ref()),
        username,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_coturn_scheme() {
        // Reference value computed with: printf '%s' '1086400:peer' |
        //   openssl dgst -sha1 -hmac secret -binary | base64
        let s = ice_server(
            "turn:127.0.0.1:3478?transport=tcp",
            "secret",
            "peer",
            1_000_000,
        );
        assert_eq!(s.username, "1086400:peer");
        assert_eq!(s.urls, vec!["turn:127.0.0.1:3478?transport=tcp".to_owned()]);
        assert_eq!(s.credential, "RB282emIsxwAqmuhpTHUrrU97VU=");
    }
}
