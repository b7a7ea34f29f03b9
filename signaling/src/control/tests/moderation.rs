//! Moderation: roles, join requests, kicks and closing the room.

use kolabmeet_media_types::PeerId;
use serde_json::json;

use super::*;

#[test]
fn role_rules() {
    let mut h = Harness::new();
    let room = h.room();
    let (owner, co) = h.joined(
        room,
        Role::OWNER.with(Role::MODERATOR).with(Role::PUBLISHER),
        "O",
    );
    let (sub, cs) = h.joined(room, Role::SUBSCRIBER, "S");
    // Without MODERATOR.
    let (code, msg) = err(&h.request(cs, "moderator:addRole", json!({"peerId": owner, "role": 2})));
    assert_eq!(code, 403);
    assert!(msg.contains("MODERATOR"));
    // OWNER can be neither given nor taken.
    assert_eq!(
        err(&h.request(co, "moderator:addRole", json!({"peerId": sub, "role": 16}))).0,
        403
    );
    assert_eq!(
        err(&h.request(
            co,
            "moderator:removeRole",
            json!({"peerId": owner, "role": 16})
        ))
        .0,
        403
    );
    // MODERATOR cannot be taken from the OWNER.
    assert_eq!(
        err(&h.request(
            co,
            "moderator:removeRole",
            json!({"peerId": owner, "role": 4})
        ))
        .0,
        403
    );
    // Unknown bits.
    assert_eq!(
        err(&h.request(co, "moderator:addRole", json!({"peerId": sub, "role": 32}))).0,
        400
    );
    // Unknown target.
    assert_eq!(
        err(&h.request(
            co,
            "moderator:addRole",
            json!({"peerId": PeerId::random(), "role": 2})
        ))
        .0,
        404
    );
    // Giving PUBLISHER lowers the raised hand.
    assert!(ok(&h.request(
        cs,
        "raisedHand",
        json!({"raisedHand": true})
    )));
    h.take(co);
    h.take(cs);
    assert!(ok(&h.request(
        co,
        "moderator:addRole",
        json!({"peerId": sub, "role": 2})
    )));
    let n = h.notifications(cs);
    assert_eq!(
        n[0],
        ("changeRole".into(), json!({"peerId": sub, "role": 3}))
    );
    assert!(!h.cp.rooms[&room].peers[&sub].raised_hand);
    // Taking PUBLISHER clears the language.
    assert!(ok(&h.request(
        co,
        "moderator:changeLanguage",
        json!({"peerId": sub, "language": "de"})
    )));
    assert_eq!(
        h.notifications(cs)[0],
        (
            "changeLanguage".into(),
            json!({"peerId": sub, "language": "de"})
        )
    );
    assert!(ok(&h.request(
        co,
        "moderator:removeRole",
        json!({"peerId": sub, "role": 2})
    )));
    assert_eq!(
        h.notifications(cs)[0],
        ("changeRole".into(), json!({"peerId": sub, "role": 1}))
    );
    assert_eq!(h.cp.rooms[&room].peers[&sub].language, None);
    assert_eq!(
        err(&h.request(
            co,
            "moderator:changeLanguage",
            json!({"peerId": sub, "language": "xyz"})
        ))
        .0,
        400
    );
}

#[test]
fn join_requests_send_webhooks() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, cm) = h.joined(room, Role::MODERATOR, "M");
    let (_, cs) = h.joined(room, Role::SUBSCRIBER, "S");
    assert!(ok(&h.request(
        cm,
        "moderator:joinRequestAccept",
        json!({"requestId": "r1"})
    )));
    assert!(ok(&h.request(
        cm,
        "moderator:joinRequestDeny",
        json!({"requestId": "r2"})
    )));
    assert_eq!(
        err(&h.request(cs, "moderator:joinRequestDeny", json!({"requestId": "r3"}))).0,
        403
    );
    assert_eq!(
        h.webhooks,
        vec![
            Webhook::JoinRequest {
                accepted: true,
                request_id: "r1".into(),
                room
            },
            Webhook::JoinRequest {
                accepted: false,
                request_id: "r2".into(),
                room
            },
        ]
    );
    assert_eq!(
        h.webhooks[0].body(),
        json!({"requestId": "r1", "roomId": room, "event": "joinRequestAccepted"})
    );
}

#[test]
fn kick_and_close_room() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, co) = h.joined(room, Role::OWNER.with(Role::MODERATOR), "O");
    let (victim, cv) = h.joined(room, Role::PUBLISHER, "V");
    let (_, cx) = h.joined(room, Role::MODERATOR, "X");
    h.take(co);
    h.take(cx);
    h.take(cv);
    assert!(ok(&h.request(
        cx,
        "moderator:kickPeer",
        json!({"peerId": victim})
    )));
    let nv = h.notifications(cv);
    assert_eq!(nv[0].0, "moderator:kickPeer");
    assert!(h.closed.contains(&cv));
    assert!(
        h.notifications(co)
            .iter()
            .any(|(m, d)| m == "peerClosed" && d["peerId"] == json!(victim))
    );
    // Only the OWNER closes the room.
    assert_eq!(err(&h.request(cx, "moderator:closeRoom", json!({}))).0, 403);
    h.take(co);
    h.take(cx);
    let ack = h.request(co, "moderator:closeRoom", json!({}));
    assert!(ok(&ack));
    assert!(
        h.notifications(cx)
            .iter()
            .any(|(m, _)| m == "moderator:closeRoom")
    );
    assert!(!h.cp.room_exists(&room));
    assert!(h.closed.contains(&co) && h.closed.contains(&cx));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
}
