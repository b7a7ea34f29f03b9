//! ICE-lite (RFC 8445 §7.3, RFC 7675) against Binding requests built the way a
//! controlling browser builds them, with virtual time.

use std::time::{Duration, Instant};

use kolabmeet_engine::transport::ice_lite::{
    CONSENT_TIMEOUT, IceError, MAX_TUPLES, peek_local_ufrag,
};
use kolabmeet_engine::transport::{
    IceCredentials, IceEvent, IceLite, IceState, StunHandled, Tuple,
};
use kolabmeet_testkit::{BindingRequest, tuple};
use stun_rs::attributes::stun::{ErrorCode, XorMappedAddress};
use stun_rs::methods::BINDING;
use stun_rs::{
    DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder,
    StunMessageBuilder,
};

fn creds(ufrag: &str, pwd: &str) -> IceCredentials {
    IceCredentials {
        ufrag: ufrag.into(),
        pwd: pwd.into(),
    }
}

fn req<'a>(username: &'a str, pwd: &'a str) -> BindingRequest<'a> {
    BindingRequest::new(username, pwd)
}

const PWD: &str = "localpasswordlocalpassword123456";

fn ice() -> IceLite {
    IceLite::new(creds("localufrag000000", PWD)).unwrap()
}

fn events(ice: &mut IceLite) -> Vec<IceEvent> {
    std::iter::from_fn(|| ice.poll_event()).collect()
}

fn send(ice: &mut IceLite, now: Instant, t: Tuple, r: BindingRequest) -> (StunHandled, Vec<u8>) {
    let mut out = [0u8; 256];
    let h = ice.handle_stun(now, t, &r.encode(), &mut out);
    let len = match h {
        StunHandled::Accepted { response_len } | StunHandled::Refused { response_len, .. } => {
            response_len
        }
        StunHandled::Dropped(_) => 0,
    };
    (h, out[..len].to_vec())
}

#[test]
fn answers_a_valid_check_and_selects_the_nominated_tuple() {
    let now = Instant::now();
    let mut ice = ice();
    let (h, resp) = send(
        &mut ice,
        now,
        tuple(5000),
        req("localufrag000000:browser", PWD),
    );
    assert!(matches!(h, StunHandled::Accepted { .. }));
    // The response verifies with the local password and maps the remote address.
    let ctx = DecoderContextBuilder::default()
        .with_key(HMACKey::new_short_term(PWD).unwrap())
        .with_validation()
        .build();
    let (msg, _) = MessageDecoderBuilder::default()
        .with_context(ctx)
        .build()
        .decode(&resp)
        .expect("response integrity verifies");
    assert_eq!(msg.class(), MessageClass::SuccessResponse);
    let mapped = msg
        .get::<XorMappedAddress>()
        .unwrap()
        .as_xor_mapped_address()
        .unwrap();
    assert_eq!(*mapped.socket_address(), tuple(5000).remote);
    assert_eq!(ice.state(), IceState::Connected);
    assert_eq!(ice.selected_tuple(), Some(tuple(5000)));
    assert_eq!(
        events(&mut ice),
        vec![
            IceEvent::SelectedTupleChanged(tuple(5000)),
            IceEvent::StateChanged(IceState::Connected)
        ]
    );
    // Nomination from another tuple moves the selection (network change).
    let mut r = req("localufrag000000:browser", PWD);
    r.nominate = true;
    let (h, _) = send(&mut ice, now, tuple(6000), r);
    assert!(matches!(h, StunHandled::Accepted { .. }));
    assert_eq!(ice.state(), IceState::Completed);
    assert_eq!(ice.selected_tuple(), Some(tuple(6000)));
    assert!(ice.is_valid_tuple(&tuple(5000)) && ice.is_valid_tuple(&tuple(6000)));
    assert!(!ice.is_valid_tuple(&tuple(7000)));
    // A non-nominating check from the old tuple keeps the selection.
    send(
        &mut ice,
        now,
        tuple(5000),
        req("localufrag000000:browser", PWD),
    );
    assert_eq!(ice.selected_tuple(), Some(tuple(6000)));
}

fn refused_code(h: &StunHandled, resp: &[u8]) -> (u16, IceError) {
    let StunHandled::Refused { reason, .. } = h else {
        panic!("expected a refusal, got {h:?}")
    };
    let (msg, _) = MessageDecoderBuilder::default()
        .build()
        .decode(resp)
        .unwrap();
    assert_eq!(msg.class(), MessageClass::ErrorResponse);
    let code = msg.get::<ErrorCode>().unwrap().as_error_code().unwrap();
    (code.error_code().error_code(), reason.clone())
}

#[test]
fn refuses_bad_credentials_roles_and_missing_attributes() {
    let now = Instant::now();
    let mut ice = ice();
    let (h, r) = send(
        &mut ice,
        now,
        tuple(1),
        req("localufrag000000:b", "wrongpassword"),
    );
    assert_eq!(refused_code(&h, &r), (401, IceError::BadIntegrity));
    let (h, r) = send(&mut ice, now, tuple(1), req("otherufrag:b", PWD));
    assert_eq!(refused_code(&h, &r), (401, IceError::WrongUsername));
    let mut q = req("localufrag000000:b", PWD);
    q.controlled = true;
    let (h, r) = send(&mut ice, now, tuple(1), q);
    assert_eq!(refused_code(&h, &r), (487, IceError::RoleConflict));
    for (field, name) in [
        ("username", "USERNAME"),
        ("priority", "PRIORITY"),
        ("integrity", "MESSAGE-INTEGRITY"),
        ("fingerprint", "FINGERPRINT"),
    ] {
        let mut q = req("localufrag000000:b", PWD);
        match field {
            "username" => q.username = None,
            "priority" => q.priority = false,
            "integrity" => q.integrity = false,
            _ => q.fingerprint = false,
        }
        let (h, r) = send(&mut ice, now, tuple(1), q);
        assert_eq!(
            refused_code(&h, &r),
            (400, IceError::MissingAttribute(name))
        );
    }
    // A flipped bit inside the integrity-protected part (the PRIORITY value: after the
    // 20-byte header and the 4 + 20 bytes of USERNAME, 4 bytes of attribute header).
    let mut bytes = req("localufrag000000:b", PWD).encode();
    bytes[50] ^= 1;
    let mut out = [0u8; 256];
    let h = ice.handle_stun(now, tuple(1), &bytes, &mut out);
    assert!(
        matches!(
            h,
            StunHandled::Refused {
                reason: IceError::BadIntegrity,
                ..
            }
        ),
        "{h:?}"
    );
    // None of that selected anything.
    assert_eq!(ice.state(), IceState::New);
    assert_eq!(ice.selected_tuple(), None);
    assert!(!ice.is_valid_tuple(&tuple(1)));
    assert!(events(&mut ice).is_empty());
}

#[test]
fn drops_garbage_and_non_requests() {
    let now = Instant::now();
    let mut ice = ice();
    let mut out = [0u8; 256];
    for bytes in [&[][..], &[0, 1, 0, 0], &[0u8; 19], &[0xff; 40]] {
        assert!(matches!(
            ice.handle_stun(now, tuple(1), bytes, &mut out),
            StunHandled::Dropped(IceError::Malformed(_))
        ));
    }
    let ind = StunMessageBuilder::new(BINDING, MessageClass::Indication).build();
    let n = MessageEncoderBuilder::default()
        .build()
        .encode(&mut out, &ind)
        .unwrap();
    let bytes = out[..n].to_vec();
    assert_eq!(
        ice.handle_stun(now, tuple(1), &bytes, &mut out),
        StunHandled::Dropped(IceError::NotBindingRequest)
    );
    // Random bytes with a STUN-looking start never panic.
    let mut x: u64 = 88172645463325252;
    let mut buf = [0u8; 120];
    for _ in 0..5000 {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        buf[0] = 0;
        buf[1] = 1;
        buf[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        let len = (x % 120) as usize;
        let _ = ice.handle_stun(now, tuple(1), &buf[..len], &mut out);
        let _ = peek_local_ufrag(&buf[..len]);
    }
}

#[test]
fn consent_expires_after_30_seconds() {
    let t0 = Instant::now();
    let mut ice = ice();
    let mut q = req("localufrag000000:b", PWD);
    q.nominate = true;
    send(&mut ice, t0, tuple(1), q);
    send(
        &mut ice,
        t0 + Duration::from_secs(10),
        tuple(2),
        req("localufrag000000:b", PWD),
    );
    events(&mut ice);
    assert_eq!(ice.poll_timeout(), Some(t0 + CONSENT_TIMEOUT));
    // The selected tuple falls silent: the selection moves to the live one.
    ice.handle_timeout(t0 + CONSENT_TIMEOUT);
    assert_eq!(ice.selected_tuple(), Some(tuple(2)));
    assert_eq!(
        events(&mut ice),
        vec![IceEvent::SelectedTupleChanged(tuple(2))]
    );
    assert_eq!(ice.state(), IceState::Completed);
    ice.handle_timeout(t0 + Duration::from_secs(39));
    assert_eq!(ice.state(), IceState::Completed);
    ice.handle_timeout(t0 + Duration::from_secs(40));
    assert_eq!(ice.state(), IceState::Disconnected);
    assert_eq!(ice.selected_tuple(), None);
    assert_eq!(ice.poll_timeout(), None);
    assert_eq!(
        events(&mut ice),
        vec![IceEvent::StateChanged(IceState::Disconnected)]
    );
    // A valid check brings it back.
    send(
        &mut ice,
        t0 + Duration::from_secs(50),
        tuple(3),
        req("localufrag000000:b", PWD),
    );
    assert_eq!(ice.state(), IceState::Connected);
    assert_eq!(ice.selected_tuple(), Some(tuple(3)));
}

#[test]
fn restart_accepts_old_credentials_until_new_ones_arrive() {
    let now = Instant::now();
    let mut ice = ice();
    send(&mut ice, now, tuple(1), req("localufrag000000:b", PWD));
    let new_pwd = "newpasswordnewpasswordnewpasswo";
    ice.restart(creds("newufrag00000000", new_pwd)).unwrap();
    assert_eq!(ice.credentials().ufrag, "newufrag00000000");
    // Old credentials still answered, tuples and state kept.
    let (h, _) = send(&mut ice, now, tuple(1), req("localufrag000000:b", PWD));
    assert!(matches!(h, StunHandled::Accepted { .. }));
    assert_eq!(ice.state(), IceState::Connected);
    let (h, _) = send(&mut ice, now, tuple(1), req("newufrag00000000:b2", new_pwd));
    assert!(matches!(h, StunHandled::Accepted { .. }));
    // Once the new ones are used, the old ones are refused.
    let (h, r) = send(&mut ice, now, tuple(1), req("localufrag000000:b", PWD));
    assert_eq!(refused_code(&h, &r), (401, IceError::WrongUsername));
}

#[test]
fn tuple_table_is_bounded_and_closing_stops_answers() {
    let now = Instant::now();
    let mut ice = ice();
    let mut q = req("localufrag000000:b", PWD);
    q.nominate = true;
    send(&mut ice, now, tuple(1), q);
    for port in 2..100 {
        send(
            &mut ice,
            now + Duration::from_millis(port.into()),
            tuple(port),
            req("localufrag000000:b", PWD),
        );
    }
    let valid = (1..100).filter(|p| ice.is_valid_tuple(&tuple(*p))).count();
    assert_eq!(valid, MAX_TUPLES);
    assert!(
        ice.is_valid_tuple(&tuple(1)),
        "the selected tuple is never evicted"
    );
    assert!(ice.is_valid_tuple(&tuple(99)));
    ice.remove_tuple(&tuple(1));
    assert_eq!(ice.selected_tuple(), Some(tuple(99)));
    ice.close();
    assert_eq!(ice.state(), IceState::Closed);
    let (h, _) = send(&mut ice, now, tuple(5), req("localufrag000000:b", PWD));
    assert_eq!(h, StunHandled::Dropped(IceError::Closed));
}

#[test]
fn peeks_the_local_ufrag_and_generates_credentials() {
    assert_eq!(
        peek_local_ufrag(&req("abc:def", PWD).encode()).as_deref(),
        Some("abc")
    );
    assert_eq!(peek_local_ufrag(&[1, 2, 3]), None);
    let mut rng = rand::rng();
    let a = IceCredentials::random(&mut rng);
    let b = IceCredentials::random(&mut rng);
    assert_eq!((a.ufrag.len(), a.pwd.len()), (16, 32));
    assert_ne!(a, b);
    assert!(IceLite::new(a).is_ok());
}
