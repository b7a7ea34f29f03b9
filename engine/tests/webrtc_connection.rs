//! A WebRTC transport brought up in memory against a browser-like peer: STUN Binding
//! requests with the transport's credentials (stun-rs), the client side of the same DTLS
//! stack, then SRTP both ways — with virtual time and hostile input on the way.

use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::DtlsCertificate;
use kolabmeet_engine::ortc::DtlsRole;
use kolabmeet_engine::transport::{
    DropReason, IceCredentials, IceState, Received, TransportEvent, Tuple, WebRtcConnection,
};
use kolabmeet_testkit::{Browser, plain_rtp, tuple};

const UFRAG: &str = "serverufrag00000";
const PWD: &str = "serverpasswordserverpassword0000";

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    plain_rtp(seq, 1234, ssrc, payload)
}

/// A server transport, and a browser whose DTLS role is `role` trusting its
/// fingerprints; the time they start at.
fn server_and_browser(role: DtlsRole) -> (WebRtcConnection, Browser, Instant) {
    let now = Instant::now();
    let creds = IceCredentials {
        ufrag: UFRAG.into(),
        pwd: PWD.into(),
    };
    let server = WebRtcConnection::new(creds, DtlsCertificate::generate().unwrap()).unwrap();
    let cert = DtlsCertificate::generate().unwrap();
    let fps = &server.local_dtls_parameters().fingerprints;
    let browser = Browser::with_role(role, &cert, fps, (UFRAG, PWD), now).unwrap();
    (server, browser, now)
}

/// Moves DTLS between the two until neither has anything to say, advancing virtual time
/// through the timers when both are idle.
fn pump(server: &mut WebRtcConnection, browser: &mut Browser, from: Tuple, now: &mut Instant) {
    for _ in 0..200 {
        let mut moved = false;
        while let Some(mut t) = server.poll_transmit() {
            assert_eq!(t.tuple, from);
            moved = true;
            browser.handle_datagram(*now, &mut t.data);
        }
        while let Some(mut data) = browser.poll_transmit() {
            moved = true;
            server.handle_datagram(*now, from, &mut data);
        }
        if server.is_connected() && browser.is_connected() {
            return;
        }
        if !moved {
            *now += Duration::from_millis(100);
            server.handle_timeout(*now);
            browser.handle_timeout(*now);
        }
    }
    panic!("DTLS did not complete");
}

fn events(t: &mut WebRtcConnection) -> Vec<TransportEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

fn connect(browser_role: DtlsRole) {
    let (mut server, mut browser, mut now) = server_and_browser(browser_role);
    let from = tuple(5000);

    // Media and DTLS from a tuple that has not passed ICE are dropped.
    let mut junk = rtp(1, 1, b"x");
    assert_eq!(
        server.handle_datagram(now, from, &mut junk),
        Received::Dropped(DropReason::InvalidTuple)
    );

    // ICE: a nominating check is answered and selects the tuple.
    let mut check = browser.binding_request();
    assert_eq!(
        server.handle_datagram(now, from, &mut check),
        Received::Handled
    );
    let answer = server.poll_transmit().expect("a STUN response");
    assert_eq!((answer.tuple, answer.data[0]), (from, 0x01));
    assert_eq!(server.ice_state(), IceState::Completed);

    // connectWebRtcTransport, then the DTLS handshake.
    server.connect(now, browser.dtls_parameters()).unwrap();
    assert!(
        server.connect(now, browser.dtls_parameters()).is_err(),
        "connect twice"
    );
    pump(&mut server, &mut browser, from, &mut now);
    let ev = events(&mut server);
    assert!(ev.contains(&TransportEvent::Connected), "{ev:?}");
    assert!(ev.contains(&TransportEvent::SelectedTuple(from)));

    // SRTP browser -> server.
    let browser_srtp = browser.srtp().unwrap();
    for seq in 0..5u16 {
        let mut p = rtp(seq, 0xabcd, b"hello media");
        browser_srtp.protect_rtp(&mut p).unwrap();
        let mut replay = p.clone();
        assert_eq!(server.handle_datagram(now, from, &mut p), Received::Rtp);
        assert_eq!(p, rtp(seq, 0xabcd, b"hello media"));
        assert_eq!(
            server.handle_datagram(now, from, &mut replay),
            Received::Dropped(DropReason::Srtp),
            "replay"
        );
    }
    let mut forged = rtp(9, 0xabcd, b"forged");
    browser_srtp.protect_rtp(&mut forged).unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 0x40;
    assert_eq!(
        server.handle_datagram(now, from, &mut forged),
        Received::Dropped(DropReason::Srtp)
    );
    // RTCP browser -> server (a receiver report with no blocks).
    let mut rr = vec![0x80, 201, 0, 1, 0, 0, 0, 7];
    browser_srtp.protect_rtcp(&mut rr).unwrap();
    assert_eq!(server.handle_datagram(now, from, &mut rr), Received::Rtcp);
    assert_eq!(rr, vec![0x80, 201, 0, 1, 0, 0, 0, 7]);

    // SRTP server -> browser.
    let mut out = rtp(77, 0x1111, b"to the browser");
    assert!(server.protect_rtp(&mut out));
    browser_srtp.unprotect_rtp(&mut out).unwrap();
    assert_eq!(out, rtp(77, 0x1111, b"to the browser"));

    // Garbage is counted, not fatal.
    for junk in [
        &[0xffu8, 1, 2][..],
        &[22, 254, 253, 0, 0],
        &[0, 1, 0, 0, 0x21, 0x12],
    ] {
        let mut b = junk.to_vec();
        assert!(matches!(
            server.handle_datagram(now, from, &mut b),
            Received::Dropped(_)
        ));
    }
    assert!(server.is_connected());
    let mut p = rtp(10, 0xabcd, b"still fine");
    browser.protect_rtp(&mut p).unwrap();
    assert_eq!(server.handle_datagram(now, from, &mut p), Received::Rtp);

    // Closing stops everything.
    server.close(now);
    assert!(!server.is_connected());
    let mut p = rtp(11, 0xabcd, b"late");
    assert_eq!(
        server.handle_datagram(now, from, &mut p),
        Received::Dropped(DropReason::Closed)
    );
}

#[test]
fn browser_as_dtls_client() {
    connect(DtlsRole::Client);
}

#[test]
fn browser_as_dtls_server() {
    connect(DtlsRole::Server);
}

#[test]
fn early_client_hello_is_kept_until_connect() {
    let (mut server, mut browser, mut now) = server_and_browser(DtlsRole::Client);
    let from = tuple(6000);
    let mut check = browser.binding().encode();
    server.handle_datagram(now, from, &mut check);
    assert_eq!(server.ice_state(), IceState::Connected);
    while server.poll_transmit().is_some() {}
    // The browser's ClientHello arrives before connectWebRtcTransport.
    let hello = browser.poll_transmit().expect("ClientHello");
    let mut b = hello.clone();
    assert_eq!(server.handle_datagram(now, from, &mut b), Received::Handled);
    assert!(server.poll_transmit().is_none(), "no answer before connect");
    server.connect(now, browser.dtls_parameters()).unwrap();
    // The kept ClientHello is answered at once, without waiting for a retransmission.
    assert!(server.poll_transmit().is_some_and(|t| t.data[0] == 22));
    pump(&mut server, &mut browser, from, &mut now);
    assert!(server.is_connected());
}

#[test]
fn wrong_fingerprint_fails_dtls() {
    let (mut server, mut browser, mut now) = server_and_browser(DtlsRole::Client);
    let from = tuple(7000);
    let mut check = browser.binding_request();
    server.handle_datagram(now, from, &mut check);
    // The client announces another certificate's fingerprints.
    let mut params = browser.dtls_parameters();
    params.fingerprints = DtlsCertificate::generate().unwrap().fingerprints().to_vec();
    server.connect(now, params).unwrap();
    for _ in 0..50 {
        while let Some(mut t) = server.poll_transmit() {
            browser.handle_datagram(now, &mut t.data);
        }
        while let Some(mut d) = browser.poll_transmit() {
            server.handle_datagram(now, from, &mut d);
        }
        now += Duration::from_millis(50);
    }
    assert!(!server.is_connected());
    let ev = events(&mut server);
    assert!(
        ev.contains(&TransportEvent::DtlsState(
            kolabmeet_engine::crypto::DtlsState::Failed
        )),
        "{ev:?}"
    );
}
