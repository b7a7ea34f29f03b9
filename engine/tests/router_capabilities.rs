//! The router capabilities equal what mediasoup v3's own `generateRouterRtpCapabilities`
//! produces for the contract's codecs (golden file made by `data/gen_router_caps.cjs`).

use kolabmeet_engine::ortc::{RtpCapabilities, RtpParameters, router_rtp_capabilities};

#[test]
fn router_capabilities_match_mediasoup() {
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("data/router_rtp_capabilities.json")).unwrap();
    let ours = serde_json::to_value(router_rtp_capabilities()).unwrap();
    assert_eq!(ours, golden);
}

#[test]
fn capabilities_round_trip_and_validate() {
    let caps = router_rtp_capabilities();
    let text = serde_json::to_string(&caps).unwrap();
    let back: RtpCapabilities = serde_json::from_str(&text).unwrap();
    assert_eq!(back, caps);
    back.validate().unwrap();
}

#[test]
fn real_client_rtp_parameters_validate() {
    // What mediasoup-client sends for a VP8 simulcast webcam (two encodings by rid).
    let params: RtpParameters = serde_json::from_str(
        r#"{"codecs":[{"mimeType":"video/VP8","payloadType":96,"clockRate":90000,"parameters":{},
             "rtcpFeedback":[{"type":"goog-remb","parameter":""},{"type":"transport-cc","parameter":""},
             {"type":"ccm","parameter":"fir"},{"type":"nack","parameter":""},{"type":"nack","parameter":"pli"}]},
            {"mimeType":"video/rtx","payloadType":97,"clockRate":90000,"parameters":{"apt":96},"rtcpFeedback":[]}],
           "headerExtensions":[{"uri":"urn:ietf:params:rtp-hdrext:sdes:mid","id":4,"encrypt":false,"parameters":{}}],
           "encodings":[{"active":true,"scaleResolutionDownBy":2,"maxBitrate":500000,"rid":"r0","scalabilityMode":"L1T3","dtx":false},
                        {"active":true,"scaleResolutionDownBy":1,"maxBitrate":1000000,"rid":"r1","scalabilityMode":"L1T3","dtx":false}],
           "rtcp":{"cname":"abc","reducedSize":true},"mid":"0"}"#,
    )
    .unwrap();
    params.validate().unwrap();
    assert_eq!(params.encodings[0].extra["active"], serde_json::json!(true));
}

#[test]
fn hostile_rtp_parameters_are_refused() {
    let bad = [
        r#"{}"#,
        r#"{"codecs":5}"#,
        r#"{"codecs":[{"mimeType":"opus","payloadType":100,"clockRate":48000}]}"#,
        r#"{"codecs":[{"mimeType":"audio/opus","payloadType":300,"clockRate":48000}]}"#,
        r#"{"codecs":[{"mimeType":"audio/opus","payloadType":"100","clockRate":48000}]}"#,
        r#"{"codecs":[{"mimeType":"audio/opus","payloadType":200,"clockRate":48000}]}"#,
        r#"{"codecs":[{"mimeType":"audio/opus","payloadType":100,"clockRate":0}]}"#,
        r#"{"codecs":[{"mimeType":"video/rtx","payloadType":97,"clockRate":90000}]}"#,
        r#"{"codecs":[{"mimeType":"video/rtx","payloadType":97,"clockRate":90000,"parameters":{"apt":"96"}}]}"#,
        r#"{"codecs":[{"mimeType":"audio/opus","payloadType":100,"clockRate":48000},{"mimeType":"audio/opus","payloadType":100,"clockRate":48000}]}"#,
        r#"{"codecs":[],"encodings":[{"ssrc":-1}]}"#,
        r#"{"codecs":[],"encodings":[{"rid":""}]}"#,
        r#"{"codecs":[],"headerExtensions":[{"uri":"","id":1}]}"#,
        r#"{"codecs":[],"headerExtensions":[{"uri":"x","id":0}]}"#,
        r#"{"codecs":[],"rtcp":{"cname":5}}"#,
        r#"{"codecs":[{"mimeType":"audio/opus","payloadType":100,"clockRate":48000,"parameters":{"x":[1]}}]}"#,
    ];
    for text in bad {
        let parsed: Result<RtpParameters, _> = serde_json::from_str(text);
        if let Ok(p) = parsed {
            assert!(p.validate().is_err(), "accepted {text}");
        }
    }
}
