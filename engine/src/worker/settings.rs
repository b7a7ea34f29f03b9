//! What a worker is told at start: where it listens and what it announces to clients
//! (contract section 1: `WEBRTC_LISTEN_IP`, `WEBRTC_ANNOUNCED_ADDRESS`, one UDP and one
//! TCP port per worker).

use std::net::IpAddr;

pub use crate::rtp_stream::SenderReportClock;

/// Where the worker listens and what it tells clients.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `WEBRTC_LISTEN_IP`.
    pub listen_ip: IpAddr,
    /// `WEBRTC_ANNOUNCED_ADDRESS`, or the listen address.
    pub announced_address: String,
    /// The worker's UDP and TCP port (44444 + worker index).
    pub port: u16,
    /// The NTP/RTP mapping of consumers' sender reports (`SENDER_REPORT_CLOCK`).
    pub sender_report_clock: SenderReportClock,
}
