//! STUN through the ICE-lite side: arbitrary bytes as a Binding request from a tuple, and
//! as the worker's username peek; never a panic, and nothing invalid selects a tuple.
#![no_main]

use std::time::Instant;

use kolabmeet_engine::transport::ice_lite::peek_local_ufrag;
use kolabmeet_engine::transport::{IceCredentials, IceLite, StunHandled, Tuple, TupleProtocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = peek_local_ufrag(data);
    let mut ice = IceLite::new(IceCredentials {
        ufrag: "fuzzufrag0000000".into(),
        pwd: "fuzzpasswordfuzzpasswordfuzzpass".into(),
    })
    .expect("ASCII credentials");
    let tuple = Tuple {
        protocol: TupleProtocol::Udp,
        local: "127.0.0.1:44444".parse().unwrap(),
        remote: "127.0.0.1:5000".parse().unwrap(),
    };
    let mut out = [0u8; 256];
    let h = ice.handle_stun(Instant::now(), tuple, data, &mut out);
    if !matches!(h, StunHandled::Accepted { .. }) {
        assert!(ice.selected_tuple().is_none());
    }
});
