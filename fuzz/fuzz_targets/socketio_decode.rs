//! Socket.IO packets: never a panic, and events re-encode to what was decoded.
#![no_main]

use kolabmeet_signaling::socketio::{SioPacket, write_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(SioPacket::Event { nsp, id, data }) = SioPacket::decode(text) {
        let mut out = String::new();
        write_event(&mut out, nsp, id, data);
        assert_eq!(SioPacket::decode(&out), Ok(SioPacket::Event { nsp, id, data }));
    }
});
