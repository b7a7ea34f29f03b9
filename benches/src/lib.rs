//! Load tools and benchmarks of kolabmeet; see `src/bin/` and `benches/`.
//!
//! The client side of the media benches (browser-like peers that drive a worker core in
//! memory or a real worker over UDP) is the shared test kit, `kolabmeet-testkit`. [`sys`]
//! holds the batched UDP system calls the benches use (the crate's only `unsafe` code);
//! [`forwarding_rig`] the worker and baselines the forwarding measurements share;
//! [`load`] the measurements of the load tools (thread CPU, latency, kernel drops).

pub mod forwarding_rig;
pub mod load;
pub mod mirror_rig;
pub mod sys;
