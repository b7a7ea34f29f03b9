//! What a worker core counts and holds, for stats, the console and the tests of bounded
//! state: input it dropped ([`WorkerCounters`]) and the size of every table
//! ([`WorkerSizes`], all 0 once everything closed).

/// Counters of what the worker dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Datagrams from unknown tuples that were not a STUN request naming a transport.
    pub unknown_source: u64,
    /// Datagrams a transport dropped (see its own counters), but for `wrong_source`.
    pub transport_dropped: u64,
    /// Datagrams to a plain transport from another address than its remote one (a
    /// second sender, or a takeover attempt after comedia learnt the first).
    pub wrong_source: u64,
    /// RTP that no producer stream of its transport claimed.
    pub unknown_ssrc: u64,
    /// Decrypted RTCP compound packets that did not parse to the end.
    pub malformed_rtcp: u64,
    /// Messages from other workers that named a room or producer no longer here
    /// (closed meanwhile).
    pub pipe_dropped: u64,
    /// RTP media read right after the worker's loop stalled (the process was stopped or
    /// starved of CPU), not forwarded: it waited in the socket meanwhile (issue 18 §4).
    pub stale_after_stall: u64,
}

/// What went through a worker core's port (`/metrics`), and transports that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    /// Datagrams (and TCP frames) handed to the core.
    pub packets_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams (and TCP frames) the core gave the driver to send.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Transports closed because DTLS failed or the remote closed it.
    pub dtls_failures: u64,
    /// Transports closed because ICE consent was lost too long, or that never connected.
    pub ice_failures: u64,
    /// Transports closed because handling one of their datagrams or timers panicked (an
    /// internal error, contained: see `containment.rs`).
    pub transport_panics: u64,
}

/// Table sizes of a worker core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSizes {
    /// Rooms (routers).
    pub rooms: usize,
    /// WebRTC transports.
    pub transports: usize,
    /// ICE usernames routed.
    pub ufrags: usize,
    /// Tuples routed.
    pub tuples: usize,
    /// Producers.
    pub producers: usize,
    /// Consumers.
    pub consumers: usize,
    /// SSRC, MID and fan-out entries, and the producer and consumer UUID index.
    pub routes: usize,
    /// Producer streams with a key frame request pending or delayed.
    pub key_frame_timers: usize,
    /// The transport UUID index and the transports' scheduled deadlines.
    pub per_transport: usize,
    /// Peers with a transport (the index of commands that name no room).
    pub peers: usize,
    /// Rooms with a scheduled deadline (NACKs, key frame requests, reports).
    pub room_timers: usize,
}
