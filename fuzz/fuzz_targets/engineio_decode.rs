//! Engine.IO packets and whole frames through a signaling session: never a panic.
#![no_main]

use std::time::{Duration, Instant};

use kolabmeet_signaling::engineio::{EioPacket, EioVersion};
use kolabmeet_signaling::session::{Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = EioPacket::decode(text) {
        let _ = p.encode();
    }
    let now = Instant::now();
    let mut out = Vec::new();
    for version in [EioVersion::V3, EioVersion::V4] {
        let mut s = Session::open(version, "sid".into(), SessionConfig::default(), now, &mut out);
        s.accept_connect(&mut out);
        for frame in text.split('\n') {
            let _ = s.on_frame(frame, now, &mut out);
        }
        let _ = s.handle_timeout(now + Duration::from_secs(60), &mut out);
        out.clear();
    }
});
