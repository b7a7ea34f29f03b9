//! Rooms: the HTTP side (signals, stats), room lifetime, `join`, request envelopes and
//! the broadcasts of peer requests.

use std::time::Duration;

use kolabmeet_media_types::ortc::router_rtp_capabilities;
use kolabmeet_media_types::{RoomId, TransportId};
use serde_json::{Value, json};

use super::*;

#[test]
fn join_lists_others_and_announces() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "Ann");
    let (b, tb) = h.peer(room, Role::SUBSCRIBER);
    let cb = h.connect(room, b, &tb);
    let ack = h.request(cb, "join", json!({"nickname": "Bob"}));
    assert!(ack[0].is_null());
    let me = &ack[1];
    assert_eq!(me["id"], json!(b));
    assert_eq!(me["nickname"], "Bob");
    assert_eq!(me["role"], 1);
    assert_eq!(me["raisedHand"], false);
    assert_eq!(me["language"], Value::Null);
    assert_eq!(me["peers"].as_array().unwrap().len(), 1);
    assert_eq!(me["peers"][0]["id"], json!(a));
    let n = h.notifications(ca);
    assert_eq!(n[0].0, "newPeer");
    assert_eq!(n[0].1["nickname"], "Bob");
    // Twice is refused.
    let (code, msg) = err(&h.request(cb, "join", json!({})));
    assert_eq!(code, 409);
    assert!(msg.contains("already joined"));
}

#[test]
fn requests_before_join_are_refused_except_transport_ones() {
    let mut h = Harness::new();
    let room = h.room();
    let (p, t) = h.peer(room, Role::PUBLISHER);
    let c = h.connect(room, p, &t);
    let (code, msg) = err(&h.request(c, "chatMessage", json!({"message": "hi"})));
    assert_eq!(code, 409);
    assert!(msg.contains("not joined"), "{msg}");
    let (code, msg) = err(&h.request(c, "createWebRtcTransport", json!({"producing": true})));
    assert_eq!(code, 503);
    assert!(msg.contains("media is not available yet"), "{msg}");
    assert!(ok(&h.request(c, "ping", json!(null))));
    let caps = h.request(c, "getRouterRtpCapabilities", json!(null));
    assert!(caps[0].is_null());
    assert_eq!(
        caps[1],
        serde_json::to_value(router_rtp_capabilities()).unwrap()
    );
}

#[test]
fn unknown_and_malformed_requests() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, c) = h.joined(room, Role::PUBLISHER, "A");
    let (code, msg) = err(&h.request(c, "fly", json!({})));
    assert_eq!(
        (code, msg.as_str()),
        (400, "unknown request.method \"fly\"")
    );
    h.send(c, "421[\"request\",\"ping\"]");
    let f = h.take(c);
    assert!(f[0].starts_with("431[400,"), "{f:?}");
    let (code, msg) = err(&h.request(c, "produce", json!({"transportId": TransportId::random(), "kind": "video", "rtpParameters": {"codecs": []}, "appData": {"source": "tv"}})));
    assert_eq!(code, 400);
    assert!(msg.contains("source"), "{msg}");
}

#[test]
fn broadcasts_reach_joined_peers_including_sender() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, ca) = h.joined(room, Role::PUBLISHER, "Ann");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "Bob");
    let (np, nt) = h.peer(room, Role::PUBLISHER);
    let cn = h.connect(room, np, &nt); // connected, not joined
    h.take(ca);
    h.take(cn);
    assert!(ok(&h.request(
        ca,
        "chatMessage",
        json!({"message": "hello"})
    )));
    for c in [ca, cb] {
        let n = h.notifications(c);
        assert_eq!(n[0].0, "chatMessage");
        assert_eq!(
            n[0].1,
            json!({"peerId": a, "nickname": "Ann", "message": "hello"})
        );
    }
    assert!(h.notifications(cn).is_empty());
    assert!(ok(&h.request(
        ca,
        "changeNickname",
        json!({"nickname": "Anna"})
    )));
    assert_eq!(
        h.notifications(cb)[0],
        (
            "changeNickname".into(),
            json!({"peerId": a, "nickname": "Anna"})
        )
    );
    assert!(ok(&h.request(
        ca,
        "raisedHand",
        json!({"raisedHand": true})
    )));
    assert_eq!(
        h.notifications(cb)[0],
        (
            "changeRaisedHand".into(),
            json!({"peerId": a, "raisedHand": true})
        )
    );
}

#[test]
fn signal_by_role() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, cm) = h.joined(room, Role::MODERATOR, "M");
    let (_, cs) = h.joined(room, Role::SUBSCRIBER, "S");
    h.take(cm);
    assert_eq!(
        h.cp.signal(room, "joinRequest", Some(Role::MODERATOR), &json!({"x": 1}))
            .unwrap(),
        1
    );
    h.drain();
    assert_eq!(
        h.notifications(cm),
        vec![("signal:joinRequest".into(), json!({"x": 1}))]
    );
    assert!(h.notifications(cs).is_empty());
    assert_eq!(h.cp.signal(room, "t", None, &json!(null)).unwrap(), 2);
    assert_eq!(
        h.cp.signal(RoomId::random(), "t", None, &json!(null)),
        Err(ControlError::RoomNotFound)
    );
}

#[test]
fn room_closes_after_last_peer_unless_someone_joins() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, ca) = h.joined(room, Role::PUBLISHER, "A");
    h.send(ca, "41");
    h.advance(Duration::from_secs(5));
    assert!(h.cp.room_exists(&room));
    // Someone comes back in time: the close is cancelled.
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    h.advance(Duration::from_secs(20));
    assert!(h.cp.room_exists(&room));
    h.send(cb, "41");
    h.advance(Duration::from_secs(9));
    assert!(h.cp.room_exists(&room));
    h.advance(Duration::from_secs(2));
    assert!(!h.cp.room_exists(&room));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
}

#[test]
fn unused_rooms_expire() {
    let mut h = Harness::new();
    let room = h.room();
    h.advance(Duration::from_secs(3599));
    assert!(h.cp.room_exists(&room));
    h.advance(Duration::from_secs(2));
    assert!(!h.cp.room_exists(&room));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
}

#[test]
fn stats_shape() {
    let mut h = Harness::new();
    let room = h.room();
    let (a, _) = h.joined(room, Role::PUBLISHER, "A");
    let s = h.cp.stats();
    assert_eq!(s["rooms"][0]["id"], json!(room));
    let p = &s["rooms"][0]["peers"][0];
    assert_eq!(p["id"], json!(a));
    assert_eq!(p["nickname"], "A");
    assert_eq!(p["joined"], true);
    assert_eq!(p["connected"], true);
    assert_eq!(p["transports"], json!([]));
    assert_eq!(h.cp.counts(), (1, 1));
}
