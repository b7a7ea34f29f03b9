//! HTTP request heads and chunked bodies from the network: never a panic.
#![no_main]

use kolabmeet_server::listener::http_parse::{ChunkedDecoder, HeadLimits, parse_request_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = parse_request_head(data, HeadLimits::default()) {
        let mut body = Vec::new();
        let _ = ChunkedDecoder::default().decode(&data[used..], &mut body, 1 << 20);
    }
    let mut body = Vec::new();
    let _ = ChunkedDecoder::default().decode(data, &mut body, 4096);
});
