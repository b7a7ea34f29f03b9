//! What the control plane counts for `/metrics` (issue 10: "signaling connections and
//! requests by outcome"): monotonic counters, bumped where a socket is accepted or refused
//! and where a request is acked.

use std::collections::BTreeMap;

/// Signaling counters since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalingCounters {
    /// Socket.IO connections bound to their peer (contract section 4's checks passed).
    pub connections_accepted: u64,
    /// Socket.IO connections refused with a `connect_error`.
    pub connections_refused: u64,
    /// Client requests acked with success.
    pub requests_ok: u64,
    /// Client requests acked with a failure, by its HTTP-like code (400, 403, 404, 409,
    /// 429, 503, 504: a fixed set, so the map stays small).
    pub requests_failed: BTreeMap<u16, u64>,
}
