//! Helpers shared by the fuzz targets of `fuzz_targets/`.
//!
//! - [`snapshot`]: run each input of a stateful target on a copy of one prepared state
//!   (a worker core with connected transports), so that an input costs what it does and
//!   not the setup before it.

pub mod snapshot;
