//! ortc parameter parsing and validation (mediasoup's `validate*` rules): never a panic.
#![no_main]

use kolabmeet_engine::ortc::{DtlsParameters, RtpCapabilities, RtpParameters};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = serde_json::from_slice::<RtpParameters>(data) {
        let _ = p.validate();
        let _ = serde_json::to_string(&p);
    }
    if let Ok(c) = serde_json::from_slice::<RtpCapabilities>(data) {
        let _ = c.validate();
    }
    if let Ok(d) = serde_json::from_slice::<DtlsParameters>(data) {
        let _ = d.validate();
    }
});
