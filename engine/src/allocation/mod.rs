//! Layer allocation per WebRTC transport (issue 9; contract section 5: "Audio consumers get
//! the highest priority when bandwidth is shared"): which spatial and temporal layer each
//! consumer of a transport forwards so that the sum fits the transport's bandwidth
//! estimate, sans-IO.
//!
//! * [`Layer`], [`LayerRates`]: a producer's layers and what each costs.
//! * [`LayerAllocator`]: the allocation itself: audio first and always, then screen shares
//!   before webcams, then layer steps round-robin; hysteresis on the estimate; a spatial
//!   up-switch tried with padding before it is made (a trial), and held back after a
//!   bandwidth-driven down-switch or a failed trial, longer after each up-switch that had
//!   to be undone (`up_switch_backoff`); a video that had a layer paused only once its
//!   lowest layer has not fitted for 2 s (`pause_delay`).
//! * [`load_shed`]: a worker that falls behind caps its consumers' layers (issue 16).

mod layer;
mod layer_allocator;
pub mod load_shed;
mod pause_delay;
mod up_switch_backoff;

pub use layer::{Layer, LayerRates};
pub use layer_allocator::{
    Allocation, AllocatorConfig, ConsumerDemand, LayerAllocator, Priority, Target, UP_SWITCH_AFTER,
};
pub use pause_delay::PAUSE_AFTER;
pub use up_switch_backoff::LONG_TRIAL;
