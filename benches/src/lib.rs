//! Load tools and benchmarks of kolabmeet; see `src/bin/` and `benches/`.
//!
//! [`media_peer`] is the client side of the media benches: browser-like peers that drive a
//! worker core in memory or a real worker over UDP. [`sys`] holds the batched UDP system
//! calls they use (the crate's only `unsafe` code).

pub mod media_peer;
pub mod sys;
