//! A WebRTC transport brought up in memory against a browser-like peer: STUN Binding
//! requests with the transport's credentials (stun-rs), the client side of the same DTLS
//! stack, then SRTP both ways — with virtual time and hostile input on the way.

use std::time::{Duration, Instant};

use kolabmeet_engine::crypto::{DtlsCertificate, DtlsEvent, DtlsSession, SrtpSession};
use kolabmeet_engine::ortc::{DtlsParameters, DtlsRole};
use kolabmeet_engine::transport::{
    DropReason, IceCredentials, IceState, Received, TransportEvent, Tuple, TupleProtocol,
    WebRtcTransport,
};
use stun_rs::attributes::ice::{IceControlling, Priority, UseCandidate};
use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName};
use stun_rs::methods::BINDING;
use stun_rs::{HMACKey, MessageClass, MessageEncoderBuilder, StunMessageBuilder};

const UFRAG: &str = "serverufrag00000";
const PWD: &str = "serverpasswordserverpassword0000";

fn tuple(port: u16) -> Tuple {
    Tuple {
        protocol: TupleProtocol::Udp,
        local: "127.0.0.1:44444".parse().unwrap(),
        remote: format!("127.0.0.1:{port}").parse().unwrap(),
    }
}

fn binding(nominate: bool) -> Vec<u8> {
    let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request)
        .with_attribute(UserName::new(format!("{UFRAG}:browser")).unwrap())
        .with_attribute(Priority::from(100))
        .with_attribute(IceControlling::from(1));
    if nominate {
        b = b.with_attribute(UseCandidate::default());
    }
    let msg = b
        .with_attribute(MessageIntegrity::new(HMACKey::new_short_term(PWD).unwrap()))
        .with_attribute(Fingerprint::default())
        .build();
    let mut out = [0u8; 256];
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut out, &msg)
        .unwrap();
    out[..n].to_vec()
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

struct Browser {
    dtls: DtlsSession,
    srtp: Option<SrtpSession>,
    params: DtlsParameters,
}

impl Browser {
    /// A browser whose DTLS role is `role`, trusting the server's fingerprints.
    fn new(role: DtlsRole, server: &WebRtcTransport, now: Instant) -> Self {
        let cert = DtlsCertificate::generate().unwrap();
        let dtls = DtlsSession::new(
            role,
            &cert,
            &server.local_dtls_parameters().fingerprints,
            now,
        )
        .unwrap();
        Browser {
            dtls,
            srtp: None,
            params: DtlsParameters {
                role,
                fingerprints: cert.fingerprints().to_vec(),
            },
        }
    }
}

/// Moves DTLS between the two until neither has anything to say, advancing virtual time
/// through the timers when both are idle.
fn pump(server: &mut WebRtcTransport, browser: &mut Browser, from: Tuple, now: &mut Instant) {
    for _ in 0..200 {
        let mut moved = false;
        while let Some(t) = server.poll_transmit() {
            assert_eq!(t.tuple, from);
            moved = true;
            let _ = browser.dtls.handle_datagram(*now, &t.data);
        }
        while let Some(data) = browser.dtls.poll_transmit() {
            moved = true;
            let mut buf = data;
            server.handle_datagram(*now, from, &mut buf);
        }
        while let Some(e) = browser.dtls.poll_event() {
            if let DtlsEvent::Connected {
                profile,
                local_keys,
                remote_keys,
            } = e
            {
                browser.srtp = Some(SrtpSession::new(profile, &local_keys, &remote_keys).unwrap());
            }
        }
        if server.is_connected() && browser.srtp.is_some() {
            return;
        }
        if !moved {
            *now += Duration::from_millis(100);
            server.handle_timeout(*now);
            browser.dtls.handle_timeout(*now);
        }
    }
    panic!("DTLS did not complete");
}

fn events(t: &mut WebRtcTransport) -> Vec<TransportEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

fn connect(browser_role: DtlsRole) {
    let mut now = Instant::now();
    let creds = IceCredentials {
        ufrag: UFRAG.into(),
        pwd: PWD.into(),
    };
    let mut server = WebRtcTransport::new(creds, DtlsCertificate::generate().unwrap()).unwrap();
    let mut browser = Browser::new(browser_role, &server, now);
    let from = tuple(5000);

    // Media and DTLS from a tuple that has not passed ICE are dropped.
    let mut junk = rtp(1, 1, b"x");
    assert_eq!(
        server.handle_datagram(now, from, &mut junk),
        Received::Dropped(DropReason::InvalidTuple)
    );

    // ICE: a nominating check is answered and selects the tuple.
    let mut check = binding(true);
    assert_eq!(
        server.handle_datagram(now, from, &mut check),
        Received::Handled
    );
    let answer = server.poll_transmit().expect("a STUN response");
    assert_eq!((answer.tuple, answer.data[0]), (from, 0x01));
    assert_eq!(server.ice_state(), IceState::Completed);

    // connectWebRtcTransport, then the DTLS handshake.
    server.connect(now, browser.params.clone()).unwrap();
    assert!(
        server.connect(now, browser.params.clone()).is_err(),
        "connect twice"
    );
    pump(&mut server, &mut browser, from, &mut now);
    let ev = events(&mut server);
    assert!(ev.contains(&TransportEvent::Connected), "{ev:?}");
    assert!(ev.contains(&TransportEvent::SelectedTuple(from)));

    // SRTP browser -> server.
    let browser_srtp = browser.srtp.as_mut().unwrap();
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
    browser.srtp.as_mut().unwrap().protect_rtp(&mut p).unwrap();
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
    let mut now = Instant::now();
    let creds = IceCredentials {
        ufrag: UFRAG.into(),
        pwd: PWD.into(),
    };
    let mut server = WebRtcTransport::new(creds, DtlsCertificate::generate().unwrap()).unwrap();
    let mut browser = Browser::new(DtlsRole::Client, &server, now);
    let from = tuple(6000);
    let mut check = binding(false);
    server.handle_datagram(now, from, &mut check);
    assert_eq!(server.ice_state(), IceState::Connected);
    while server.poll_transmit().is_some() {}
    // The browser's ClientHello arrives before connectWebRtcTransport.
    let hello = browser.dtls.poll_transmit().expect("ClientHello");
    let mut b = hello.clone();
    assert_eq!(server.handle_datagram(now, from, &mut b), Received::Handled);
    assert!(server.poll_transmit().is_none(), "no answer before connect");
    server.connect(now, browser.params.clone()).unwrap();
    // The kept ClientHello is answered at once, without waiting for a retransmission.
    assert!(server.poll_transmit().is_some_and(|t| t.data[0] == 22));
    pump(&mut server, &mut browser, from, &mut now);
    assert!(server.is_connected());
}

#[test]
fn wrong_fingerprint_fails_dtls() {
    let mut now = Instant::now();
    let creds = IceCredentials {
        ufrag: UFRAG.into(),
        pwd: PWD.into(),
    };
    let mut server = WebRtcTransport::new(creds, DtlsCertificate::generate().unwrap()).unwrap();
    let mut browser = Browser::new(DtlsRole::Client, &server, now);
    let from = tuple(7000);
    let mut check = binding(true);
    server.handle_datagram(now, from, &mut check);
    // The client announces another certificate's fingerprints.
    let mut params = browser.params.clone();
    params.fingerprints = DtlsCertificate::generate().unwrap().fingerprints().to_vec();
    server.connect(now, params).unwrap();
    for _ in 0..50 {
        while let Some(t) = server.poll_transmit() {
            let _ = browser.dtls.handle_datagram(now, &t.data);
        }
        while let Some(d) = browser.dtls.poll_transmit() {
            let mut d = d;
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
