//! RFC 4571 reassembly with reads of every size the input chooses: never a panic, and
//! the frames are exactly what a re-framing of the input yields.
#![no_main]

use kolabmeet_net::tcp_framing::FrameDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    // What the frames must be: walk the length prefixes directly.
    let mut expected = Vec::new();
    let mut rest = stream;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + len {
            break;
        }
        if len > 0 {
            expected.push(rest[2..2 + len].to_vec());
        }
        rest = &rest[2 + len..];
    }
    let mut d = FrameDecoder::new();
    let mut got = Vec::new();
    let mut input = stream;
    while !input.is_empty() {
        let spare = d.spare();
        let n = spare.len().min(step).min(input.len());
        spare[..n].copy_from_slice(&input[..n]);
        d.commit(n);
        input = &input[n..];
        while let Some(f) = d.next_frame() {
            got.push(f.to_vec());
        }
    }
    assert_eq!(got, expected);
});
