//! Request data of every method (contract section 5): never a panic.
#![no_main]

use kolabmeet_signaling::request::{parse_request, split_envelope};
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &[
    "ping", "dumpStats", "getRouterRtpCapabilities", "join", "createWebRtcTransport",
    "connectWebRtcTransport", "restartIce", "createPlainTransport", "connectPlainTransport",
    "produce", "closeProducer", "pauseProducer", "resumeProducer", "pauseConsumer",
    "resumeConsumer", "changeNickname", "raisedHand", "chatMessage", "moderator:addRole",
    "moderator:removeRole", "moderator:changeLanguage", "moderator:joinRequestAccept",
    "moderator:joinRequestDeny", "moderator:kickPeer", "moderator:closeRoom",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    if let Ok((method, d)) = split_envelope(&value) {
        let _ = parse_request(method, d);
    }
    let method = METHODS[selector as usize % METHODS.len()];
    if let Err(e) = parse_request(method, &value) {
        let _ = (e.code(), e.to_string());
    }
});
