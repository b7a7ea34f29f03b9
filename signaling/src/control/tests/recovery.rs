//! Issue 8: a panic while handling one frame, timer or engine event costs at most that
//! room; a failed media worker restarts its rooms' media (`roomReady` again).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kolabmeet_media_types::EngineReply;
use kolabmeet_media_types::ortc::{RtpCapabilities, router_rtp_capabilities};
use kolabmeet_media_types::replies::{
    ConsumerInfo, ConsumerType, IceParameters, WebRtcTransportInfo,
};
use kolabmeet_media_types::{
    ConsumerId, EngineCommand, EngineEvent, MediaEngine, ProducerId, TransportId,
};
use serde_json::{Value, json};

use super::*;

type Trap = Box<dyn Fn(&EngineCommand) -> bool + Send>;

/// A scripted engine (transports, producers and consumers with fresh ids) that panics on
/// the commands its trap matches, as a bug reached through that command would, and
/// never answers `restartIce` (a request still waiting when its worker fails).
struct FaultyEngine {
    caps: RtpCapabilities,
    events: VecDeque<EngineEvent>,
    trap: Arc<Mutex<Option<Trap>>>,
    inject: Arc<Mutex<VecDeque<EngineEvent>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl MediaEngine for FaultyEngine {
    fn router_rtp_capabilities(&self) -> &RtpCapabilities {
        &self.caps
    }

    fn submit(&mut self, command: EngineCommand) {
        if self
            .trap
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|t| t(&command))
        {
            panic!("trap: {command:?}");
        }
        let reply = |tag, r: EngineReply| EngineEvent::Reply { tag, result: Ok(r) };
        match command {
            EngineCommand::CreateWebRtcTransport { tag, .. } => self.events.push_back(reply(
                tag,
                EngineReply::WebRtcTransportCreated(WebRtcTransportInfo {
                    id: TransportId::random(),
                    ice_parameters: IceParameters {
                        username_fragment: "u".into(),
                        password: "p".into(),
                        ice_lite: true,
                    },
                    ice_candidates: Vec::new(),
                    dtls_parameters: Default::default(),
                }),
            )),
            EngineCommand::Produce { tag, .. } => {
                self.log.lock().unwrap().push("produce".into());
                self.events.push_back(reply(
                    tag,
                    EngineReply::ProducerCreated(ProducerId::random()),
                ));
            }
            EngineCommand::Consume { tag, .. } => {
                self.log.lock().unwrap().push("consume".into());
                self.events.push_back(reply(
                    tag,
                    EngineReply::ConsumerCreated(ConsumerInfo {
                        id: ConsumerId::random(),
                        kind: kolabmeet_media_types::ortc::MediaKind::Audio,
                        rtp_parameters: Default::default(),
                        consumer_type: ConsumerType::Simple,
                        producer_paused: false,
                    }),
                ));
            }
            EngineCommand::SetConsumerPaused { tag, .. } => {
                self.events.push_back(reply(tag, EngineReply::Done))
            }
            _ => {}
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events
            .pop_front()
            .or_else(|| self.inject.lock().unwrap().pop_front())
    }
}

struct Setup {
    h: Harness,
    trap: Arc<Mutex<Option<Trap>>>,
    inject: Arc<Mutex<VecDeque<EngineEvent>>>,
    log: Arc<Mutex<Vec<String>>>,
}

fn setup() -> Setup {
    let trap = Arc::new(Mutex::new(None));
    let inject = Arc::new(Mutex::new(VecDeque::new()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let engine = FaultyEngine {
        caps: router_rtp_capabilities(),
        events: VecDeque::new(),
        trap: trap.clone(),
        inject: inject.clone(),
        log: log.clone(),
    };
    Setup {
        h: Harness::with(config(), Box::new(engine)),
        trap,
        inject,
        log,
    }
}

/// The room a command is for, when it names one.
fn room_of(c: &EngineCommand) -> Option<RoomId> {
    match c {
        EngineCommand::CreateWebRtcTransport { room, .. }
        | EngineCommand::ClosePeer { room, .. }
        | EngineCommand::CloseRouter { room } => Some(*room),
        _ => None,
    }
}

fn audio_rtp() -> Value {
    json!({
        "mid": "0",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2, "parameters": {}, "rtcpFeedback": []}],
        "headerExtensions": [],
        "encodings": [{"ssrc": 2222}],
        "rtcp": {"cname": "x", "reducedSize": true}
    })
}

/// A joined peer with a consuming transport and the router's capabilities.
fn consuming_peer(h: &mut Harness, room: RoomId, nick: &str) -> (PeerId, ConnId) {
    let (p, t) = h.peer(room, Role::PUBLISHER);
    let c = h.connect(room, p, &t);
    let tr = h.request(c, "createWebRtcTransport", json!({"consuming": true}));
    assert!(ok(&tr), "{tr:?}");
    let caps = serde_json::to_value(router_rtp_capabilities()).unwrap();
    let j = h.request(
        c,
        "join",
        json!({"nickname": nick, "rtpCapabilities": caps}),
    );
    assert!(ok(&j), "{j:?}");
    h.take(c);
    (p, c)
}

/// The room was closed as after a panic: its sockets got a Socket.IO disconnect and were
/// closed, the webhook went out, the room is gone.
fn assert_room_closed(h: &mut Harness, room: RoomId, conns: &[ConnId]) {
    assert!(!h.cp.room_exists(&room));
    assert!(h.webhooks.contains(&Webhook::RoomClosed { room }));
    for c in conns {
        assert!(h.closed.contains(c), "socket {c:?} not closed");
    }
}

/// Another room still serves requests, and new rooms can be made.
fn assert_serving(h: &mut Harness, other: ConnId) {
    let ack = h.request(other, "chatMessage", json!({"message": "still here"}));
    assert!(ok(&ack), "{ack:?}");
    assert!(h.cp.create_room(h.now).is_ok());
}

#[test]
fn panic_while_handling_a_frame_costs_only_its_room() {
    let mut s = setup();
    let h = &mut s.h;
    let (a, b) = (h.room(), h.room());
    let (_, a1) = h.joined(a, Role::PUBLISHER, "a1");
    let (_, a2) = h.joined(a, Role::PUBLISHER, "a2");
    let (_, b1) = h.joined(b, Role::PUBLISHER, "b1");
    *s.trap.lock().unwrap() = Some(Box::new(move |c| {
        matches!(c, EngineCommand::CreateWebRtcTransport { .. }) && room_of(c) == Some(a)
    }));
    let body = json!(["request", {"method": "createWebRtcTransport", "data": {}}]);
    h.send(a1, &format!("421{body}"));
    assert_room_closed(h, a, &[a1, a2]);
    assert!(
        h.take(a2).iter().any(|f| f == "41"),
        "a2 told it is disconnected"
    );
    assert_serving(h, b1);
    // The same request in room B works (the trap is for room A).
    let t = h.request(b1, "createWebRtcTransport", json!({}));
    assert!(ok(&t), "{t:?}");
}

#[test]
fn panic_while_handling_a_timer_costs_only_its_room() {
    let mut s = setup();
    let h = &mut s.h;
    let (a, b) = (h.room(), h.room());
    let (_, a1) = h.joined(a, Role::PUBLISHER, "a1");
    let (_, a2) = h.joined(a, Role::PUBLISHER, "a2");
    let (_, b1) = h.joined(b, Role::PUBLISHER, "b1");
    // a1's connection drops; when its grace ends, closing it panics.
    *s.trap.lock().unwrap() = Some(Box::new(move |c| {
        matches!(c, EngineCommand::ClosePeer { .. }) && room_of(c) == Some(a)
    }));
    h.cp.socket_closed(a1, h.now);
    h.drain();
    h.advance(Duration::from_secs(11));
    h.send(a2, "3");
    h.send(b1, "3");
    assert_room_closed(h, a, &[a2]);
    assert_serving(h, b1);
}

#[test]
fn panic_while_handling_an_engine_event_costs_only_its_room() {
    let mut s = setup();
    let h = &mut s.h;
    let (a, b) = (h.room(), h.room());
    let (_, a1) = consuming_peer(h, a, "a1");
    let (_, a2) = h.joined(a, Role::PUBLISHER, "a2");
    let (_, b1) = consuming_peer(h, b, "b1");
    let (_, b2) = h.joined(b, Role::PUBLISHER, "b2");
    // The engine's reply to a2's produce makes the control plane create a consumer for
    // a1; that panics (for room A's consumers only).
    let a1_peer =
        h.cp.sockets
            .get(&a1)
            .and_then(|r| r.bound)
            .map(|(_, p)| p)
            .unwrap();
    *s.trap.lock().unwrap() = Some(Box::new(
        move |c| matches!(c, EngineCommand::Consume { peer, .. } if *peer == a1_peer),
    ));
    let produce = json!({"transportId": TransportId::random(), "kind": "audio", "rtpParameters": audio_rtp(), "appData": {"source": "mic"}});
    let body = json!(["request", {"method": "produce", "data": produce}]);
    h.send(a2, &format!("421{body}"));
    assert_room_closed(h, a, &[a1, a2]);
    // Room B's media flow is untouched: b2 produces, b1 is offered a consumer.
    let p = h.request(b2, "produce", produce.clone());
    assert!(ok(&p), "{p:?}");
    assert!(
        h.take(b1).iter().any(|f| f.contains("newConsumer")),
        "b1 offered a consumer"
    );
    assert_serving(h, b1);
    // A later engine event about room A's peers is harmless.
    s.inject
        .lock()
        .unwrap()
        .push_back(EngineEvent::ConsumerClosed {
            peer: a1_peer,
            consumer: ConsumerId::random(),
        });
    h.cp.pump_engine(h.now);
    h.drain();
    assert_serving(h, b1);
}

#[test]
fn failed_worker_restarts_its_rooms_media() {
    let mut s = setup();
    let h = &mut s.h;
    let (a, b) = (h.room(), h.room());
    let (a1_peer, a1) = consuming_peer(h, a, "a1");
    let (a2_peer, a2) = consuming_peer(h, a, "a2");
    let (a3_peer, a3_token) = h.peer(a, Role::PUBLISHER);
    let a3 = h.connect(a, a3_peer, &a3_token);
    assert!(ok(&h.request(a3, "join", json!({"nickname": "a3"}))));
    let (_, b1) = h.joined(b, Role::PUBLISHER, "b1");
    // a1 produces (a2 consumes it); a3's socket drops (within its grace).
    let produce = json!({"transportId": TransportId::random(), "kind": "audio", "rtpParameters": audio_rtp(), "appData": {"source": "mic"}});
    assert!(ok(&h.request(a1, "produce", produce)));
    h.send(a2, "430[]");
    h.cp.socket_closed(a3, h.now);
    h.drain();
    // a2 waits for an answer to restartIce when the worker fails.
    h.take(a2);
    let body = json!(["request", {"method": "restartIce", "data": {"transportId": TransportId::random()}}]);
    h.send(a2, &format!("427{body}"));
    for c in [a1, a2, b1] {
        h.take(c);
    }
    s.log.lock().unwrap().clear();
    s.inject
        .lock()
        .unwrap()
        .push_back(EngineEvent::WorkerFailed {
            worker: 0,
            rooms: vec![a],
            spread_peers: Vec::new(),
            reason: "it panicked".into(),
        });
    h.cp.pump_engine(h.now);
    h.drain();

    // The waiting request fails, saying why.
    let frames = h.take(a2);
    let ack = frames
        .iter()
        .find(|f| f.starts_with("437"))
        .expect("restartIce answered");
    let ack: Vec<Value> = serde_json::from_str(&ack[3..]).unwrap();
    assert_eq!(ack[0], 503);
    assert!(ack[1].as_str().unwrap().contains("media worker"), "{ack:?}");
    // Every connected peer of the room: the others leave, then roomReady.
    h.frames.insert(a2, frames);
    for (me, conn, others) in [
        (a1_peer, a1, [a2_peer, a3_peer]),
        (a2_peer, a2, [a1_peer, a3_peer]),
    ] {
        let notes = h.notifications(conn);
        let methods: Vec<&str> = notes.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            methods,
            ["peerClosed", "peerClosed", "roomReady"],
            "{me}: {notes:?}"
        );
        let mut closed: Vec<Value> = notes[..2]
            .iter()
            .map(|(_, d)| d["peerId"].clone())
            .collect();
        closed.sort_by_key(|v| v.to_string());
        let mut expected: Vec<Value> = others.iter().map(|p| json!(p)).collect();
        expected.sort_by_key(|v| v.to_string());
        assert_eq!(closed, expected);
        assert_eq!(notes[2].1, json!({"iceServers": null, "roomId": a}));
    }
    assert!(h.take(b1).is_empty(), "room B is not affected");
    assert!(h.cp.room_exists(&a) && !h.closed.contains(&a1));

    // a1 starts over: transport, join (allowed again), produce; a2 hears of it as a new
    // peer, and is not offered a1's old producer.
    let tr = h.request(a1, "createWebRtcTransport", json!({"consuming": true}));
    assert!(ok(&tr), "{tr:?}");
    let caps = serde_json::to_value(router_rtp_capabilities()).unwrap();
    let j = h.request(
        a1,
        "join",
        json!({"nickname": "a1", "rtpCapabilities": caps}),
    );
    assert!(ok(&j), "{j:?}");
    assert_eq!(j[1]["peers"], json!([]), "nobody has joined again yet");
    assert!(!s.log.lock().unwrap().contains(&"consume".to_owned()));
    let tr = h.request(a2, "createWebRtcTransport", json!({"consuming": true}));
    assert!(ok(&tr));
    let j = h.request(
        a2,
        "join",
        json!({"nickname": "a2", "rtpCapabilities": caps}),
    );
    assert!(ok(&j), "{j:?}");
    assert_eq!(j[1]["peers"][0]["id"], json!(a1_peer));
    let notes = h.notifications(a1);
    assert!(
        notes
            .iter()
            .any(|(m, d)| m == "newPeer" && d["id"] == json!(a2_peer)),
        "{notes:?}"
    );
    assert!(
        !s.log.lock().unwrap().contains(&"consume".to_owned()),
        "old producer forgotten"
    );
    // a3, back within its grace, starts over too: roomReady, not roomBack.
    let a3b = h.connect(a, a3_peer, &a3_token);
    let notes = h.notifications(a3b);
    assert_eq!(
        notes.last().map(|(m, _)| m.as_str()),
        Some("roomReady"),
        "{notes:?}"
    );
    assert!(ok(&h.request(a3b, "join", json!({"nickname": "a3"}))));
    assert_serving(h, b1);
}

/// Issue 16: a room spread over two workers loses the one a2 was on: only a2 starts
/// over (peerClosed for the others, roomReady); a1 keeps its media and hears only that
/// a2 left, then that it joined again, and a2 is offered a1's producer again.
#[test]
fn failed_worker_of_a_spread_room_restarts_only_its_peers() {
    let mut s = setup();
    let h = &mut s.h;
    let a = h.room();
    let (a1_peer, a1) = consuming_peer(h, a, "a1");
    let (a2_peer, a2) = consuming_peer(h, a, "a2");
    let produce = json!({"transportId": TransportId::random(), "kind": "audio", "rtpParameters": audio_rtp(), "appData": {"source": "mic"}});
    assert!(ok(&h.request(a1, "produce", produce)));
    h.send(a2, "430[]");
    h.drain();
    for c in [a1, a2] {
        h.take(c);
    }
    s.log.lock().unwrap().clear();
    s.inject
        .lock()
        .unwrap()
        .push_back(EngineEvent::WorkerFailed {
            worker: 1,
            rooms: Vec::new(),
            spread_peers: vec![(a, vec![a2_peer])],
            reason: "it panicked".into(),
        });
    h.cp.pump_engine(h.now);
    h.drain();
    let notes = h.notifications(a2);
    let methods: Vec<&str> = notes.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["peerClosed", "roomReady"], "{notes:?}");
    assert_eq!(notes[0].1["peerId"], json!(a1_peer));
    let notes = h.notifications(a1);
    let methods: Vec<&str> = notes.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["peerClosed"], "a1 keeps its media: {notes:?}");
    assert_eq!(notes[0].1["peerId"], json!(a2_peer));

    // a2 starts over and is offered a1's producer, which lived on.
    let tr = h.request(a2, "createWebRtcTransport", json!({"consuming": true}));
    assert!(ok(&tr), "{tr:?}");
    let caps = serde_json::to_value(router_rtp_capabilities()).unwrap();
    let j = h.request(
        a2,
        "join",
        json!({"nickname": "a2", "rtpCapabilities": caps}),
    );
    assert!(ok(&j), "{j:?}");
    assert_eq!(j[1]["peers"][0]["id"], json!(a1_peer));
    assert!(
        s.log.lock().unwrap().contains(&"consume".to_owned()),
        "a1's producer offered to a2 again"
    );
    let notes = h.notifications(a1);
    assert!(
        notes
            .iter()
            .any(|(m, d)| m == "newPeer" && d["id"] == json!(a2_peer)),
        "{notes:?}"
    );
}
