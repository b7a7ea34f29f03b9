//! Media requests and the consumer flow, with a scripted engine.

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

#[test]
fn produce_needs_publisher() {
    let mut h = Harness::new();
    let room = h.room();
    let (_, c) = h.joined(room, Role::SUBSCRIBER, "A");
    let rtp = json!({"codecs": [], "encodings": [], "headerExtensions": [], "rtcp": {}});
    let ack = h.request(c, "produce", json!({"transportId": TransportId::random(), "kind": "audio", "rtpParameters": rtp, "appData": {"source": "mic"}}));
    let (code, msg) = err(&ack);
    assert!(code == 403 || code == 400, "{ack:?}");
    assert!(
        msg.contains("PUBLISHER") || msg.contains("rtpParameters"),
        "{msg}"
    );
}

/// A scripted engine for the consumer flow (the real one arrives with the media
/// workers): creates transports, producers and consumers with fresh ids and records
/// every command.
struct ScriptedEngine {
    caps: RtpCapabilities,
    events: VecDeque<EngineEvent>,
    log: Arc<Mutex<Vec<String>>>,
    /// Events the test injects, delivered after the scripted ones.
    inject: Arc<Mutex<VecDeque<EngineEvent>>>,
}

impl MediaEngine for ScriptedEngine {
    fn router_rtp_capabilities(&self) -> &RtpCapabilities {
        &self.caps
    }

    fn submit(&mut self, command: EngineCommand) {
        let reply = |tag, r: EngineReply| EngineEvent::Reply { tag, result: Ok(r) };
        let mut log = self.log.lock().unwrap();
        match command {
            EngineCommand::CreateWebRtcTransport { tag, .. } => {
                self.events.push_back(reply(
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
                ));
            }
            EngineCommand::Produce { tag, .. } => {
                self.events.push_back(reply(
                    tag,
                    EngineReply::ProducerCreated(ProducerId::random()),
                ));
            }
            EngineCommand::Consume { tag, paused, .. } => {
                log.push(format!("consume paused={paused}"));
                self.events.push_back(reply(
                    tag,
                    EngineReply::ConsumerCreated(ConsumerInfo {
                        id: ConsumerId::random(),
                        kind: kolabmeet_media_types::ortc::MediaKind::Video,
                        rtp_parameters: Default::default(),
                        consumer_type: ConsumerType::Simulcast,
                        producer_paused: false,
                    }),
                ));
            }
            EngineCommand::SetConsumerPaused { tag, paused, .. } => {
                log.push(format!("consumer paused={paused}"));
                self.events.push_back(reply(tag, EngineReply::Done));
            }
            EngineCommand::CloseConsumer { .. } => log.push("close consumer".into()),
            EngineCommand::ClosePeer { .. } => log.push("close peer".into()),
            _ => {}
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events
            .pop_front()
            .or_else(|| self.inject.lock().unwrap().pop_front())
    }
}

#[test]
fn consumer_flow_with_new_consumer_request() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let inject = Arc::new(Mutex::new(VecDeque::new()));
    let engine = ScriptedEngine {
        caps: router_rtp_capabilities(),
        events: VecDeque::new(),
        log: log.clone(),
        inject: inject.clone(),
    };
    let mut h = Harness::with(config(), Box::new(engine));
    let room = h.room();
    let caps = serde_json::to_value(router_rtp_capabilities()).unwrap();
    // B: receive transport, then join with capabilities.
    let (b, tb) = h.peer(room, Role::PUBLISHER);
    let cb = h.connect(room, b, &tb);
    let t = h.request(cb, "createWebRtcTransport", json!({"consuming": true}));
    assert!(t[0].is_null(), "{t:?}");
    assert!(ok(&h.request(
        cb,
        "join",
        json!({"nickname": "B", "rtpCapabilities": caps})
    )));
    // A produces video.
    let (_, ca) = h.joined(room, Role::PUBLISHER, "A");
    h.take(cb);
    let rtp = json!({
        "mid": "0",
        "codecs": [{"mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "parameters": {}, "rtcpFeedback": []}],
        "headerExtensions": [],
        "encodings": [{"ssrc": 1111}],
        "rtcp": {"cname": "x", "reducedSize": true}
    });
    let p = h.request(ca, "produce", json!({"transportId": TransportId::random(), "kind": "video", "rtpParameters": rtp, "appData": {"source": "webcam"}}));
    assert!(p[0].is_null(), "{p:?}");
    // B is asked to consume it, created paused.
    let frames = h.take(cb);
    let req = frames
        .iter()
        .find(|f| f.contains("newConsumer"))
        .expect("newConsumer sent");
    assert!(req.starts_with("420[\"request\""), "{req}");
    let v: Value = serde_json::from_str(&req[3..]).unwrap();
    assert_eq!(v[1]["data"]["appData"], json!({"source": "webcam"}));
    assert_eq!(log.lock().unwrap()[0], "consume paused=true");
    // The ack resumes it.
    h.send(cb, "430[]");
    assert!(
        log.lock()
            .unwrap()
            .contains(&"consumer paused=false".to_owned())
    );
    // The engine's score and layer changes reach B as the contract's notifications.
    let consumer: ConsumerId = serde_json::from_value(v[1]["data"]["id"].clone()).unwrap();
    inject.lock().unwrap().extend([
        EngineEvent::ConsumerScoreChanged {
            peer: b,
            consumer,
            score: kolabmeet_media_types::media_engine::ConsumerScore {
                score: 7,
                producer_score: 9,
                producer_scores: vec![9, 10],
            },
        },
        EngineEvent::ConsumerLayersChanged {
            peer: b,
            consumer,
            layers: Some(kolabmeet_media_types::media_engine::ConsumerLayers {
                spatial_layer: 1,
                temporal_layer: 2,
            }),
        },
    ]);
    h.cp.pump_engine(h.now);
    h.drain();
    let notes = h.notifications(cb);
    assert!(
        notes.contains(&(
            "consumerScoreChanged".to_owned(),
            json!({"consumerId": consumer, "score": {"score": 7, "producerScore": 9, "producerScores": [9, 10]}})
        )),
        "{notes:?}"
    );
    assert!(
        notes.contains(&(
            "consumerLayersChanged".to_owned(),
            json!({"consumerId": consumer, "layers": {"spatialLayer": 1, "temporalLayer": 2}})
        )),
        "{notes:?}"
    );
    // A second producer whose newConsumer is never acked: tried 3 times, then closed.
    let p = h.request(ca, "produce", json!({"transportId": TransportId::random(), "kind": "video", "rtpParameters": rtp, "appData": {"source": "screen"}}));
    assert!(p[0].is_null());
    let mut tries = 0;
    for _ in 0..4 {
        tries += h
            .take(cb)
            .iter()
            .filter(|f| f.contains("newConsumer"))
            .count();
        h.advance(Duration::from_secs(20));
        h.send(cb, "3");
        h.send(ca, "3");
    }
    assert_eq!(tries, 3);
    assert!(log.lock().unwrap().contains(&"close consumer".to_owned()));
}

/// A media engine whose worker is stuck: it takes commands and never answers.
struct StuckEngine(RtpCapabilities);

impl MediaEngine for StuckEngine {
    fn router_rtp_capabilities(&self) -> &RtpCapabilities {
        &self.0
    }

    fn submit(&mut self, _command: EngineCommand) {}

    fn poll_event(&mut self) -> Option<EngineEvent> {
        None
    }
}

/// Issue 8: every pending media request is answered, by the engine or, when it never
/// replies, by a 504 failure ack after `ENGINE_REPLY_TIMEOUT`; the pending entry and its
/// timer are gone afterwards.
#[test]
fn media_requests_time_out_when_the_engine_never_answers() {
    let mut h = Harness::with(config(), Box::new(StuckEngine(router_rtp_capabilities())));
    let room = h.room();
    let (_, c) = h.joined(room, Role::PUBLISHER, "A");
    h.take(c);
    h.send(
        c,
        &format!(
            "421{}",
            json!(["request", {"method": "createWebRtcTransport", "data": {"producing": true}}])
        ),
    );
    assert!(
        h.take(c).iter().all(|f| !f.starts_with("431")),
        "no answer yet"
    );
    h.advance(ENGINE_REPLY_TIMEOUT - Duration::from_millis(1));
    assert!(
        h.take(c).iter().all(|f| !f.starts_with("431")),
        "not before the deadline"
    );
    h.advance(Duration::from_millis(1));
    let frames = h.take(c);
    let ack = frames
        .iter()
        .find(|f| f.starts_with("431"))
        .expect("answered");
    let ack: Vec<Value> = serde_json::from_str(&ack[3..]).unwrap();
    assert_eq!(
        err(&ack),
        (504, "media engine did not answer in time".into())
    );
    assert!(h.cp.pending.is_empty());
}

/// Issue 8: when the engine closes a transport by itself (DTLS failure, consent expiry),
/// its producers are forgotten (a later join does not try to consume them), its consumers
/// are closed towards their client, and the others' consumers close as the engine reports.
#[test]
fn engine_closed_transport_closes_its_media_everywhere() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let inject = Arc::new(Mutex::new(VecDeque::new()));
    let engine = ScriptedEngine {
        caps: router_rtp_capabilities(),
        events: VecDeque::new(),
        log: log.clone(),
        inject: inject.clone(),
    };
    let mut h = Harness::with(config(), Box::new(engine));
    let room = h.room();
    let caps = serde_json::to_value(router_rtp_capabilities()).unwrap();
    let consumer_peer = |h: &mut Harness, nick: &str| {
        let (p, t) = h.peer(room, Role::PUBLISHER);
        let c = h.connect(room, p, &t);
        let t = h.request(c, "createWebRtcTransport", json!({"consuming": true}));
        assert!(t[0].is_null(), "{t:?}");
        let j = h.request(
            c,
            "join",
            json!({"nickname": nick, "rtpCapabilities": caps}),
        );
        assert!(ok(&j), "{j:?}");
        (p, c)
    };
    let (a, ca) = consumer_peer(&mut h, "A");
    let (b, cb) = consumer_peer(&mut h, "B");
    let rtp = json!({
        "mid": "0",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2, "parameters": {}, "rtcpFeedback": []}],
        "headerExtensions": [],
        "encodings": [{"ssrc": 2222}],
        "rtcp": {"cname": "x", "reducedSize": true}
    });
    let send = h.request(ca, "createWebRtcTransport", json!({"producing": true}));
    let transport: TransportId = serde_json::from_value(send[1]["id"].clone()).unwrap();
    let p = h.request(ca, "produce", json!({"transportId": transport, "kind": "audio", "rtpParameters": rtp, "appData": {"source": "mic"}}));
    let producer: ProducerId = serde_json::from_value(p[1]["id"].clone()).unwrap();
    let offered: Vec<String> = h.take(cb);
    let offer = offered
        .iter()
        .find(|f| f.contains("newConsumer"))
        .expect("B offered A's mic");
    let v: Value = serde_json::from_str(&offer[3..]).unwrap();
    let b_consumer: ConsumerId = serde_json::from_value(v[1]["data"]["id"].clone()).unwrap();
    h.send(cb, "430[]");
    let a_consumer = ConsumerId::random();
    let consumes = || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("consume "))
            .count()
    };
    let before = consumes();
    // A's sending transport fails: the engine says what closed with it.
    inject.lock().unwrap().extend([
        EngineEvent::ConsumerClosed {
            peer: b,
            consumer: b_consumer,
        },
        EngineEvent::TransportClosed {
            peer: a,
            transport,
            producers: vec![producer],
            consumers: vec![a_consumer],
        },
    ]);
    h.cp.pump_engine(h.now);
    h.drain();
    let closed = |notes: Vec<(String, Value)>, id: ConsumerId| {
        notes.contains(&("consumerClosed".to_owned(), json!({ "consumerId": id })))
    };
    assert!(closed(h.notifications(cb), b_consumer));
    assert!(closed(h.notifications(ca), a_consumer));
    assert!(!h.cp.media.producers.contains_key(&producer));
    // C joins later: nothing of A's dead transport is offered.
    let (_, cc) = consumer_peer(&mut h, "C");
    assert_eq!(consumes(), before, "no consumer for a dead producer");
    assert!(h.take(cc).iter().all(|f| !f.contains("newConsumer")));
}
