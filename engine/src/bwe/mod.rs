//! Send-side bandwidth estimation per WebRTC transport (issue 9; contract section 6,
//! "Bandwidth"), sans-IO: what the worker sent (transport-wide sequence numbers, sizes,
//! send times) and what receivers report (transport-cc feedback, REMB, losses) go in with
//! the current [`Instant`](std::time::Instant); the estimate comes out.
//!
//! The pieces, one concept each, as Google Congestion Control divides them
//! (draft-ietf-rmcat-gcc-02) and libwebrtc implements them:
//!
//! * [`SentHistory`]: what was sent, by transport-wide sequence number.
//! * [`FeedbackReader`]: a transport-cc feedback packet matched against the history:
//!   send and arrival times of each packet it reports (receiver clock unwrapped).
//! * [`InterArrival`]: packets grouped into send bursts; the delay variation between
//!   groups (GCC §5.2).
//! * [`TrendlineDetector`]: the trend of the accumulated delay (libwebrtc's trendline
//!   filter) against an adaptive threshold (GCC §5.4): over-use, under-use or normal.
//! * [`AckedBitrate`]: the rate the receiver acknowledged.
//! * [`AimdRateControl`]: the delay-based rate (GCC §5.5).
//! * [`LossBasedControl`]: the loss-based rate (GCC §6).
//! * [`ProbeController`], [`ProbeEstimator`]: when to send a probe cluster, and what its
//!   arrival rate says about the path.
//! * [`SendSideBwe`]: the transport's estimate: the lower of the two, REMB where the
//!   receiver negotiated only `goog-remb`, always within configured bounds.

mod acked_bitrate;
mod aimd_rate_control;
mod bitrate;
mod feedback_reader;
mod inter_arrival;
mod loss_based;
mod probe_controller;
mod probe_estimator;
mod send_side_bwe;
mod sent_history;
mod trendline;

pub use acked_bitrate::AckedBitrate;
pub use aimd_rate_control::AimdRateControl;
pub use bitrate::Bitrate;
pub use feedback_reader::{FeedbackReader, PacketResult};
pub use inter_arrival::{GroupDelta, InterArrival};
pub use loss_based::LossBasedControl;
pub use probe_controller::{PROBE_PACKET, ProbeController, ProbeOutcome, ProbePlan};
pub use probe_estimator::ProbeEstimator;
pub use send_side_bwe::{BweConfig, SendSideBwe};
pub use sent_history::{SentHistory, SentPacket};
pub use trendline::{BandwidthUsage, TrendlineDetector};
