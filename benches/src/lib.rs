//! Load tools and benchmarks of kolabmeet; see `src/bin/` and `benches/`.
//!
//! The client side of the media benches (browser-like peers that drive a worker core in
//! memory or a real worker over UDP) is the shared test kit, `kolabmeet-testkit`. [`sys`]
//! holds the batched UDP system calls the benches use (the crate's only `unsafe` code);
//! [`forwarding_rig`] the worker and baselines the forwarding measurements share;
//! [`load`] the measurements of the load tools (latency, kernel drops), [`threads`] their
//! threads' CPU time and placement.

pub mod density;
pub mod forwarding_rig;
pub mod load;
pub mod mirror_rig;
pub mod overload;
pub mod sys;
pub mod threads;
