//! Graceful drain (issue 10): no new rooms, rooms in progress go on until they empty or
//! the drain deadline, each closing with its `roomClosed` webhook.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn draining_refuses_new_rooms_but_serves_existing_ones() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, ca) = h.joined(room, Role::PUBLISHER, "A");
    assert!(h.cp.drain_status(h.now.mono).is_none());
    assert!(h.cp.begin_drain(h.now, Duration::from_secs(600)));
    let err = h.cp.create_room(h.now).unwrap_err();
    assert_eq!(err, ControlError::Draining);
    assert!(err.to_string().contains("draining"), "{err}");
    // A new peer for the existing room, its socket and its requests still work.
    let (_, cb) = h.joined(room, Role::SUBSCRIBER, "B");
    assert!(ok(&h.request(
        cb,
        "chatMessage",
        json!({"message": "still here"})
    )));
    assert!(
        h.notifications(ca)
            .iter()
            .any(|(m, d)| m == "chatMessage" && d["message"] == "still here")
    );
    assert_eq!(h.cp.signal(room, "t", None, &json!(null)).unwrap(), 2);
    assert_eq!(
        h.cp.drain_status(h.now.mono),
        Some(DrainStatus {
            rooms: 1,
            peers: 2,
            closes_in: Duration::from_secs(600),
        })
    );
    assert!(!h.cp.drained());
}

#[test]
fn a_room_in_progress_goes_on_until_it_empties_then_closes_by_the_room_rules() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, ca) = h.joined(room, Role::PUBLISHER, "A");
    let (_, cb) = h.joined(room, Role::PUBLISHER, "B");
    h.cp.begin_drain(h.now, Duration::from_secs(600));
    // Answering the heartbeats, the peers stay as long as they like.
    for _ in 0..12 {
        h.advance(Duration::from_secs(10));
        h.send(ca, "3");
        h.send(cb, "3");
    }
    assert!(h.cp.room_exists(&room));
    assert!(h.webhooks.is_empty());
    h.send(ca, "41");
    h.send(cb, "41");
    h.advance(Duration::from_secs(9));
    assert!(
        h.cp.room_exists(&room),
        "the usual 10 s close delay applies"
    );
    assert!(!h.cp.drained());
    h.advance(Duration::from_secs(2));
    assert!(!h.cp.room_exists(&room));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
    assert!(h.cp.drained());
}

#[test]
fn rooms_nobody_is_in_close_after_the_close_delay_not_the_idle_hour() {
    let mut h = Harness::new();
    let unused = h.room();
    let waiting = h.room();
    h.peer(waiting, Role::PUBLISHER);
    h.advance(Duration::from_secs(60));
    h.cp.begin_drain(h.now, Duration::from_secs(600));
    h.advance(Duration::from_secs(5));
    // A peer token handed out during the drain gives its room the delay again.
    let (p, t) = h.peer(waiting, Role::PUBLISHER);
    h.advance(Duration::from_secs(6));
    assert!(!h.cp.room_exists(&unused));
    assert!(h.cp.room_exists(&waiting));
    // That peer connects in time: the room is in progress now.
    let c = h.connect(waiting, p, &t);
    h.advance(Duration::from_secs(20));
    h.send(c, "3");
    assert!(h.cp.room_exists(&waiting));
    h.send(c, "41");
    h.advance(Duration::from_secs(11));
    assert!(!h.cp.room_exists(&waiting));
    assert_eq!(
        h.webhooks,
        vec![
            Webhook::RoomClosed { room: unused },
            Webhook::RoomClosed { room: waiting }
        ]
    );
    assert!(h.cp.drained());
}

#[test]
fn the_deadline_closes_the_rooms_still_open_with_their_webhooks() {
    let mut h = Harness::new();
    let r1 = h.room();
    let r2 = h.room();
    let (_, c1) = h.joined(r1, Role::PUBLISHER, "A");
    let (_, c2) = h.joined(r2, Role::PUBLISHER, "B");
    h.cp.begin_drain(h.now, Duration::from_secs(5));
    // A second request to drain changes nothing (the deadline stays).
    h.advance(Duration::from_secs(3));
    assert!(!h.cp.begin_drain(h.now, Duration::from_secs(600)));
    h.advance(Duration::from_secs(1));
    assert!(h.cp.room_exists(&r1) && h.cp.room_exists(&r2));
    h.take(c1);
    h.take(c2);
    h.advance(Duration::from_secs(2));
    assert!(!h.cp.room_exists(&r1) && !h.cp.room_exists(&r2));
    let mut hooks = h.webhooks.clone();
    hooks.sort_by_key(|w| format!("{w:?}"));
    let mut expected = vec![
        Webhook::RoomClosed { room: r1 },
        Webhook::RoomClosed { room: r2 },
    ];
    expected.sort_by_key(|w| format!("{w:?}"));
    assert_eq!(hooks, expected);
    // Their sockets got a Socket.IO disconnect and were closed.
    for c in [c1, c2] {
        assert!(
            h.take(c).iter().any(|f| f == "41"),
            "no disconnect on {c:?}"
        );
        assert!(h.closed.contains(&c));
    }
    assert!(h.cp.drained());
    assert_eq!(h.cp.counts(), (0, 0));
}

#[test]
fn a_zero_timeout_closes_everything_at_once() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, _c) = h.joined(room, Role::PUBLISHER, "A");
    h.cp.begin_drain(h.now, Duration::ZERO);
    h.advance(Duration::ZERO);
    assert!(!h.cp.room_exists(&room));
    assert_eq!(h.webhooks, vec![Webhook::RoomClosed { room }]);
    assert!(h.cp.drained());
}

#[test]
fn a_server_without_rooms_is_drained_at_once() {
    let mut h = Harness::new();
    assert!(!h.cp.drained(), "not draining yet");
    h.cp.begin_drain(h.now, Duration::from_secs(600));
    assert!(h.cp.drained());
}
