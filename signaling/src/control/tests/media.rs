//! Media requests and the consumer flow, with a scripted engine.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kolabmeet_engine::ortc::{RtpCapabilities, router_rtp_capabilities};
use kolabmeet_engine::{
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
        let reply = |tag, v: Value| EngineEvent::Reply { tag, result: Ok(v) };
        let mut log = self.log.lock().unwrap();
        match command {
            EngineCommand::CreateWebRtcTransport { tag, .. } => {
                self.events
                    .push_back(reply(tag, json!({"id": TransportId::random()})));
            }
            EngineCommand::Produce { tag, .. } => {
                self.events
                    .push_back(reply(tag, json!({"id": ProducerId::random()})));
            }
            EngineCommand::Consume { tag, paused, .. } => {
                log.push(format!("consume paused={paused}"));
                self.events.push_back(reply(
                    tag,
                    json!({"id": ConsumerId::random(), "kind": "video", "rtpParameters": {}, "type": "simulcast", "producerPaused": false}),
                ));
            }
            EngineCommand::SetConsumerPaused { tag, paused, .. } => {
                log.push(format!("consumer paused={paused}"));
                self.events.push_back(reply(tag, Value::Null));
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
            score: kolabmeet_engine::media_engine::ConsumerScore {
                score: 7,
                producer_score: 9,
                producer_scores: vec![9, 10],
            },
        },
        EngineEvent::ConsumerLayersChanged {
            peer: b,
            consumer,
            layers: Some(kolabmeet_engine::media_engine::ConsumerLayers {
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
