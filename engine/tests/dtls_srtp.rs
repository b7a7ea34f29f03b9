//! DTLS-SRTP end to end in memory: two `DtlsSession`s handshake over a virtual wire with
//! virtual time (no sockets, no sleeps), then `SrtpSession`s built from the exported keys
//! protect and unprotect RTP and RTCP.

use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::{
    DtlsCertificate, DtlsError, DtlsEvent, DtlsSession, DtlsState, SrtpError, SrtpKeyMaterial,
    SrtpProfile, SrtpSession,
};
use kolabmeet_engine::ortc::{DtlsFingerprint, DtlsRole};

const ROLES: [DtlsRole; 2] = [DtlsRole::Server, DtlsRole::Client];

fn opposite(role: DtlsRole) -> DtlsRole {
    match role {
        DtlsRole::Server => DtlsRole::Client,
        _ => DtlsRole::Server,
    }
}

/// Moves every queued datagram from `from` to `to`; returns how many moved and the errors
/// `to` reported.
fn transfer(from: &mut DtlsSession, to: &mut DtlsSession, now: Instant) -> (usize, Vec<DtlsError>) {
    let mut moved = 0;
    let mut errors = vec![];
    while let Some(datagram) = from.poll_transmit() {
        moved += 1;
        if let Err(e) = to.handle_datagram(now, &datagram) {
            errors.push(e);
        }
    }
    (moved, errors)
}

fn settled(s: &DtlsSession) -> bool {
    s.state() != DtlsState::Connecting
}

/// Runs the wire until both sides leave `Connecting` and nothing is in flight, advancing
/// virtual time to the next timer whenever the wire is idle. Returns the errors seen.
fn drive(a: &mut DtlsSession, b: &mut DtlsSession, now: &mut Instant) -> Vec<DtlsError> {
    let mut errors = vec![];
    for _ in 0..200 {
        let (n1, e1) = transfer(a, b, *now);
        let (n2, e2) = transfer(b, a, *now);
        errors.extend(e1);
        errors.extend(e2);
        if n1 + n2 > 0 {
            continue;
        }
        if settled(a) && settled(b) {
            return errors;
        }
        let Some(next) = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        else {
            return errors;
        };
        *now = next.max(*now);
        a.handle_timeout(*now);
        b.handle_timeout(*now);
    }
    panic!("the handshake did not settle");
}

/// `(from, to)`: the element `from` of a pair and the other one, both mutable.
fn both<T>(pair: &mut [T; 2], from: usize) -> (&mut T, &mut T) {
    let [a, b] = pair;
    if from == 0 { (a, b) } else { (b, a) }
}

fn events(s: &mut DtlsSession) -> Vec<DtlsEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

struct Keys {
    profile: SrtpProfile,
    local: SrtpKeyMaterial,
    remote: SrtpKeyMaterial,
}

fn connected(s: &mut DtlsSession) -> Keys {
    assert_eq!(s.state(), DtlsState::Connected, "{s:?}");
    let mut connected = events(s).into_iter().map(|e| match e {
        DtlsEvent::Connected {
            profile,
            local_keys,
            remote_keys,
        } => Keys {
            profile,
            local: local_keys,
            remote: remote_keys,
        },
        other => panic!("unexpected event {other:?}"),
    });
    let keys = connected.next().expect("a Connected event");
    assert!(connected.next().is_none());
    keys
}

fn failure(s: &mut DtlsSession) -> DtlsError {
    assert_eq!(s.state(), DtlsState::Failed, "{s:?}");
    let failures: Vec<DtlsError> = events(s)
        .into_iter()
        .map(|e| match e {
            DtlsEvent::Failed(error) => error,
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    failures[0].clone()
}

/// Two peers with their own certificates, each knowing the other's fingerprints.
struct Peers {
    sfu_cert: DtlsCertificate,
    browser_cert: DtlsCertificate,
}

impl Peers {
    fn new() -> Self {
        Self {
            sfu_cert: DtlsCertificate::generate().unwrap(),
            browser_cert: DtlsCertificate::generate().unwrap(),
        }
    }

    /// `(sfu, browser)` sessions; `browser_profiles` is what the browser side offers or
    /// accepts.
    fn sessions(
        &self,
        sfu_role: DtlsRole,
        browser_profiles: &[SrtpProfile],
        now: Instant,
    ) -> (DtlsSession, DtlsSession) {
        // The browser signals only sha-256, as Chromium does.
        let browser_fp = [self.browser_cert.fingerprints()[2].clone()];
        assert_eq!(browser_fp[0].algorithm, "sha-256");
        let sfu = DtlsSession::new(sfu_role, &self.sfu_cert, &browser_fp, now).unwrap();
        let browser = DtlsSession::with_profiles(
            opposite(sfu_role),
            &self.browser_cert,
            self.sfu_cert.fingerprints(),
            browser_profiles,
            now,
        )
        .unwrap();
        (sfu, browser)
    }
}

fn assert_mirrored(a: &Keys, b: &Keys, profile: SrtpProfile) {
    assert_eq!(a.profile, profile);
    assert_eq!(b.profile, profile);
    assert_eq!(a.local, b.remote);
    assert_eq!(a.remote, b.local);
    assert_ne!(a.local, a.remote);
    assert_eq!(a.local.key.len(), profile.key_len());
    assert_eq!(a.local.salt.len(), profile.salt_len());
}

#[test]
fn handshake_each_role_and_forced_profile() {
    let peers = Peers::new();
    for role in ROLES {
        for profile in SrtpProfile::PREFERENCE {
            let mut now = Instant::now();
            let (mut sfu, mut browser) = peers.sessions(role, &[profile], now);
            let errors = drive(&mut sfu, &mut browser, &mut now);
            assert!(errors.is_empty(), "{role:?} {profile:?}: {errors:?}");
            let (a, b) = (connected(&mut sfu), connected(&mut browser));
            assert_mirrored(&a, &b, profile);
            assert_eq!(sfu.srtp_profile(), Some(profile));
            assert_eq!(sfu.poll_timeout(), None);
        }
    }
}

#[test]
fn default_negotiation_prefers_aes_256_gcm() {
    let peers = Peers::new();
    for role in ROLES {
        let mut now = Instant::now();
        let (mut sfu, mut browser) = peers.sessions(role, &SrtpProfile::PREFERENCE, now);
        assert!(drive(&mut sfu, &mut browser, &mut now).is_empty());
        let (a, b) = (connected(&mut sfu), connected(&mut browser));
        assert_mirrored(&a, &b, SrtpProfile::AeadAes256Gcm);
    }
}

#[test]
fn a_browser_offering_only_aes_cm_gets_it() {
    // What a browser with GCM disabled sends; the SFU must still agree.
    let peers = Peers::new();
    for role in ROLES {
        let mut now = Instant::now();
        let (mut sfu, mut browser) = peers.sessions(role, &[SrtpProfile::Aes128CmHmacSha1_80], now);
        assert!(drive(&mut sfu, &mut browser, &mut now).is_empty());
        let (a, b) = (connected(&mut sfu), connected(&mut browser));
        assert_mirrored(&a, &b, SrtpProfile::Aes128CmHmacSha1_80);
    }
}

#[test]
fn wrong_remote_fingerprint_fails() {
    let peers = Peers::new();
    let stranger = DtlsCertificate::generate().unwrap();
    for role in ROLES {
        // The SFU expects another certificate than the browser's.
        let mut now = Instant::now();
        let mut sfu =
            DtlsSession::new(role, &peers.sfu_cert, stranger.fingerprints(), now).unwrap();
        let mut browser = DtlsSession::new(
            opposite(role),
            &peers.browser_cert,
            peers.sfu_cert.fingerprints(),
            now,
        )
        .unwrap();
        drive(&mut sfu, &mut browser, &mut now);
        assert_eq!(
            failure(&mut sfu),
            DtlsError::FingerprintMismatch,
            "{role:?}"
        );
        // The peer got our fatal alert (or, as a server, never got a Finished).
        assert_ne!(browser.state(), DtlsState::Connected, "{role:?}");
        assert_eq!(sfu.poll_timeout(), None);
        assert_eq!(
            sfu.handle_datagram(now, &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 1]),
            Err(DtlsError::NotActive)
        );

        // The browser expects another certificate than the SFU's (sha-256 only signalled).
        let mut now = Instant::now();
        let browser_fp = [peers.browser_cert.fingerprints()[2].clone()];
        let mut sfu = DtlsSession::new(role, &peers.sfu_cert, &browser_fp, now).unwrap();
        let wrong = [DtlsFingerprint {
            algorithm: "sha-256".into(),
            value: stranger.fingerprints()[2].value.clone(),
        }];
        let mut browser =
            DtlsSession::new(opposite(role), &peers.browser_cert, &wrong, now).unwrap();
        drive(&mut sfu, &mut browser, &mut now);
        assert_eq!(failure(&mut browser), DtlsError::FingerprintMismatch);
        assert_ne!(sfu.state(), DtlsState::Connected, "{role:?}");
    }
}

#[test]
fn fatal_alert_from_a_rejecting_server_fails_the_client() {
    let peers = Peers::new();
    let stranger = DtlsCertificate::generate().unwrap();
    let mut now = Instant::now();
    // SFU is the server and rejects the browser's certificate: the browser (client) gets a
    // bad_certificate alert in answer to its Finished flight.
    let mut sfu = DtlsSession::new(
        DtlsRole::Server,
        &peers.sfu_cert,
        stranger.fingerprints(),
        now,
    )
    .unwrap();
    let mut browser = DtlsSession::new(
        DtlsRole::Client,
        &peers.browser_cert,
        peers.sfu_cert.fingerprints(),
        now,
    )
    .unwrap();
    drive(&mut sfu, &mut browser, &mut now);
    assert_eq!(failure(&mut sfu), DtlsError::FingerprintMismatch);
    let error = failure(&mut browser);
    assert!(matches!(error, DtlsError::Handshake(_)), "{error:?}");
}

#[test]
fn garbage_and_truncated_records_are_errors_and_the_handshake_still_completes() {
    let peers = Peers::new();
    for role in ROLES {
        let mut now = Instant::now();
        let (mut sfu, mut browser) = peers.sessions(role, &SrtpProfile::PREFERENCE, now);
        let garbage: &[&[u8]] = &[
            &[],
            &[0xff; 40],
            &[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
            &[22, 0xfe],
            &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 1, 2, 3],
            &[22, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
        ];
        let mut exchanged = 0;
        loop {
            // Feed garbage to both sides before every exchange, at every handshake stage.
            for g in garbage {
                for s in [&mut sfu, &mut browser] {
                    let before = s.state();
                    let error = s.handle_datagram(now, g).unwrap_err();
                    assert!(
                        matches!(error, DtlsError::InvalidRecord(_)) && !error.is_fatal(),
                        "{error:?}"
                    );
                    assert_eq!(s.state(), before);
                }
            }
            // Deliver a truncated copy of every datagram first, then the datagram.
            let mut moved = 0;
            let mut pair = [sfu, browser];
            for from in 0..2 {
                let (from, to) = both(&mut pair, from);
                while let Some(d) = from.poll_transmit() {
                    moved += 1;
                    for cut in [d.len() - 1, d.len() / 2, 13, 5] {
                        let error = to.handle_datagram(now, &d[..cut]).unwrap_err();
                        assert!(!error.is_fatal(), "{error:?}");
                    }
                    // A well-framed record with a nonsense body: discarded silently or
                    // reported, but never fatal.
                    let mut nonsense = d[..13].to_vec();
                    nonsense[11..13].copy_from_slice(&7u16.to_be_bytes());
                    nonsense.extend_from_slice(&[0xee; 7]);
                    if let Err(error) = to.handle_datagram(now, &nonsense) {
                        assert!(!error.is_fatal(), "{error:?}");
                    }
                    to.handle_datagram(now, &d).unwrap();
                }
            }
            [sfu, browser] = pair;
            if moved == 0 {
                break;
            }
            exchanged += moved;
            now += Duration::from_millis(10);
        }
        assert!(exchanged >= 4, "{exchanged}");
        let (a, b) = (connected(&mut sfu), connected(&mut browser));
        assert_mirrored(&a, &b, SrtpProfile::AeadAes256Gcm);

        // After the handshake: garbage is still only an error.
        for g in garbage {
            assert!(!sfu.handle_datagram(now, g).unwrap_err().is_fatal());
        }
        assert_eq!(sfu.state(), DtlsState::Connected);
    }
}

#[test]
fn lost_first_flight_is_retransmitted_on_timeout() {
    let peers = Peers::new();
    for role in ROLES {
        let start = Instant::now();
        let mut now = start;
        let (mut sfu, mut browser) = peers.sessions(role, &SrtpProfile::PREFERENCE, now);
        let (client, server) = match role {
            DtlsRole::Client => (&mut sfu, &mut browser),
            _ => (&mut browser, &mut sfu),
        };
        // The ClientHello is lost.
        assert!(client.poll_transmit().is_some());
        assert!(client.poll_transmit().is_none());
        let deadline = client.poll_timeout().expect("a retransmission timer");
        assert!(deadline > now);
        // Nothing happens before the deadline.
        client.handle_timeout(deadline - Duration::from_millis(1));
        assert!(client.poll_transmit().is_none());
        now = deadline;
        client.handle_timeout(now);
        let resent = client.poll_transmit().expect("retransmitted ClientHello");
        server.handle_datagram(now, &resent).unwrap();
        assert!(drive(client, server, &mut now).is_empty());
        let (a, b) = (connected(client), connected(server));
        assert_mirrored(&a, &b, SrtpProfile::AeadAes256Gcm);
        assert!(now >= start + Duration::from_millis(500));
    }
}

#[test]
fn lost_server_flight_is_recovered() {
    let peers = Peers::new();
    let mut now = Instant::now();
    let (mut sfu, mut browser) = peers.sessions(DtlsRole::Server, &SrtpProfile::PREFERENCE, now);
    // ClientHello -> HelloVerifyRequest -> ClientHello+cookie -> ServerHello... (lost).
    for _ in 0..2 {
        transfer(&mut browser, &mut sfu, now);
        transfer(&mut sfu, &mut browser, now);
    }
    transfer(&mut browser, &mut sfu, now);
    while sfu.poll_transmit().is_some() {}
    assert!(drive(&mut sfu, &mut browser, &mut now).is_empty());
    let (a, b) = (connected(&mut sfu), connected(&mut browser));
    assert_mirrored(&a, &b, SrtpProfile::AeadAes256Gcm);
}

#[test]
fn silent_peer_times_out() {
    let peers = Peers::new();
    let start = Instant::now();
    let mut now = start;
    let (mut client, _) = peers.sessions(DtlsRole::Client, &SrtpProfile::PREFERENCE, now);
    let mut sent = 0;
    while let Some(deadline) = client.poll_timeout() {
        while client.poll_transmit().is_some() {
            sent += 1;
        }
        now = deadline;
        client.handle_timeout(now);
        assert!(now - start < Duration::from_secs(600));
    }
    assert!(sent > 1, "{sent}");
    assert_eq!(failure(&mut client), DtlsError::Timeout);
}

#[test]
fn close_notify_closes_the_peer() {
    let peers = Peers::new();
    for role in ROLES {
        let mut now = Instant::now();
        let (mut sfu, mut browser) = peers.sessions(role, &SrtpProfile::PREFERENCE, now);
        assert!(drive(&mut sfu, &mut browser, &mut now).is_empty());
        connected(&mut sfu);
        connected(&mut browser);

        browser.send_application_data(now, b"sctp").unwrap();
        transfer(&mut browser, &mut sfu, now);
        assert_eq!(
            events(&mut sfu),
            [DtlsEvent::ApplicationData(b"sctp".to_vec())]
        );

        browser.close(now);
        assert_eq!(browser.state(), DtlsState::Closed);
        let (moved, errors) = transfer(&mut browser, &mut sfu, now);
        assert!(moved > 0 && errors.is_empty(), "{errors:?}");
        assert_eq!(sfu.state(), DtlsState::Closed);
        assert_eq!(events(&mut sfu), [DtlsEvent::Closed]);
        assert!(sfu.poll_transmit().is_some(), "close_notify reply");
        assert_eq!(sfu.poll_timeout(), None);
    }
}

// ---------------------------------------------------------------------------------------
// SRTP

fn rtp(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    kolabmeet_testkit::plain_rtp(seq, u32::from(seq) * 3000, ssrc, payload)
}

/// An RTCP sender report (RFC 3550 §6.4.1) without report blocks.
fn rtcp_sr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x11; 20]);
    p
}

/// SRTP sessions of both ends from a real handshake: `(sfu, browser)`.
fn srtp_pair(profile: SrtpProfile) -> (SrtpSession, SrtpSession) {
    let peers = Peers::new();
    let mut now = Instant::now();
    let (mut sfu, mut browser) = peers.sessions(DtlsRole::Server, &[profile], now);
    assert!(drive(&mut sfu, &mut browser, &mut now).is_empty());
    let (a, b) = (connected(&mut sfu), connected(&mut browser));
    (
        SrtpSession::new(a.profile, &a.local, &a.remote).unwrap(),
        SrtpSession::new(b.profile, &b.local, &b.remote).unwrap(),
    )
}

#[test]
fn srtp_round_trip_every_profile_many_ssrcs() {
    for profile in SrtpProfile::PREFERENCE {
        let mut pair: [SrtpSession; 2] = srtp_pair(profile).into();
        assert_eq!(pair[0].profile(), profile);
        for ssrc in [1u32, 0xdead_beef, 42] {
            for seq in [65530u16, 65535, 0, 1] {
                let payload = format!("{profile:?} {ssrc} {seq}").into_bytes();
                // Both directions.
                for from in 0..2 {
                    let (tx, rx) = both(&mut pair, from);
                    let plain = rtp(ssrc, seq, &payload);
                    let mut packet = plain.clone();
                    tx.protect_rtp(&mut packet).unwrap();
                    assert!(packet.len() > plain.len());
                    assert_ne!(packet[12..plain.len()], plain[12..], "payload encrypted");
                    rx.unprotect_rtp(&mut packet).unwrap();
                    assert_eq!(packet, plain);

                    let plain = rtcp_sr(ssrc);
                    let mut packet = plain.clone();
                    tx.protect_rtcp(&mut packet).unwrap();
                    assert!(packet.len() > plain.len());
                    rx.unprotect_rtcp(&mut packet).unwrap();
                    assert_eq!(packet, plain);
                }
            }
        }
    }
}

#[test]
fn srtp_rejects_bad_tags_and_replays() {
    for profile in SrtpProfile::PREFERENCE {
        let (mut sfu, mut browser) = srtp_pair(profile);

        // A flipped bit in the tag.
        let mut packet = rtp(7, 100, b"media");
        browser.protect_rtp(&mut packet).unwrap();
        let last = packet.len() - 1;
        packet[last] ^= 0x01;
        assert_eq!(sfu.unprotect_rtp(&mut packet), Err(SrtpError::AuthFailed));
        assert!(packet.is_empty(), "left emptied");

        // The genuine packet still passes (the forged one did not advance the window),
        // then its replay is refused.
        let mut original = rtp(7, 100, b"media");
        browser.protect_rtp(&mut original).unwrap();
        let mut first = original.clone();
        sfu.unprotect_rtp(&mut first).unwrap();
        let mut replay = original.clone();
        assert_eq!(sfu.unprotect_rtp(&mut replay), Err(SrtpError::Replay));

        // RTCP likewise.
        let mut report = rtcp_sr(7);
        browser.protect_rtcp(&mut report).unwrap();
        let mut forged = report.clone();
        // The tag ends 4 bytes before the end for AEAD (RFC 7714 §9.2: E+index trails
        // it) and is the last 10 bytes for AES-CM: this byte is in the tag either way.
        forged[report.len() - 5] ^= 0x80;
        assert_eq!(sfu.unprotect_rtcp(&mut forged), Err(SrtpError::AuthFailed));
        let mut first = report.clone();
        sfu.unprotect_rtcp(&mut first).unwrap();
        assert_eq!(sfu.unprotect_rtcp(&mut report), Err(SrtpError::Replay));

        // Garbage is an error, not a panic.
        for junk in [vec![], vec![0x80], vec![0x80; 11], vec![0xff; 64]] {
            assert!(sfu.unprotect_rtp(&mut junk.clone()).is_err());
            assert!(sfu.unprotect_rtcp(&mut junk.clone()).is_err());
        }

        // A packet from the wrong key (the sender's own outbound keys) fails.
        let mut own = rtp(8, 1, b"x");
        sfu.protect_rtp(&mut own).unwrap();
        assert_eq!(sfu.unprotect_rtp(&mut own), Err(SrtpError::AuthFailed));
    }
}

#[test]
fn srtp_outbound_accepts_a_resent_packet() {
    // A NACKed packet resent without RTX keeps its sequence number.
    let (mut sfu, mut browser) = srtp_pair(SrtpProfile::AeadAes128Gcm);
    let mut first = rtp(9, 5, b"frame");
    sfu.protect_rtp(&mut first).unwrap();
    let mut again = rtp(9, 5, b"frame");
    sfu.protect_rtp(&mut again).unwrap();
    assert_eq!(first, again);
    browser.unprotect_rtp(&mut first).unwrap();
    // The receiver drops the duplicate, as it must.
    assert_eq!(browser.unprotect_rtp(&mut again), Err(SrtpError::Replay));
}

#[test]
fn srtp_rejects_key_material_of_the_wrong_length() {
    let short = SrtpKeyMaterial {
        key: vec![1; 16],
        salt: vec![2; 12],
    };
    assert_eq!(
        SrtpSession::new(SrtpProfile::AeadAes256Gcm, &short, &short).err(),
        Some(SrtpError::BadKeyLength)
    );
    assert!(SrtpSession::new(SrtpProfile::AeadAes128Gcm, &short, &short).is_ok());
}
