//! The signaling counters of `/metrics`: connections and requests by outcome.

use super::*;

#[test]
fn connections_and_requests_are_counted_by_outcome() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, conn) = h.joined(room, Role::PUBLISHER, "Ann");
    let (peer, _) = h.peer(room, Role::SUBSCRIBER);
    h.connect(room, peer, "not the token");
    // A request the control plane answers, and one the engine refuses (503: no media).
    assert!(ok(&h.request(
        conn,
        "changeNickname",
        json!({"nickname": "Bo"})
    )));
    assert_eq!(
        err(&h.request(conn, "createWebRtcTransport", json!({"producing": true}))).0,
        503
    );
    assert_eq!(err(&h.request(conn, "noSuchMethod", json!({}))).0, 400);
    let c = h.cp.signaling_counters();
    assert_eq!((c.connections_accepted, c.connections_refused), (1, 1));
    // `join` and `changeNickname`.
    assert_eq!(c.requests_ok, 2);
    assert_eq!(c.requests_failed.get(&503), Some(&1));
    assert_eq!(c.requests_failed.get(&400), Some(&1));
    assert_eq!(c.requests_failed.len(), 2);
}
