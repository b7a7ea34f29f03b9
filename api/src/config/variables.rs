//! The documented environment variables (`--help`): contract section 2 plus the test and
//! operations knobs of this server.

/// One documented variable: name, default (as shown by `--help`) and meaning.
pub struct VarDoc {
    /// The variable.
    pub name: &'static str,
    /// Its default, as text.
    pub default: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

/// Every variable the server reads, for `--help`.
pub const VARIABLES: &[VarDoc] = &[
    VarDoc {
        name: "AUTH_TOKEN",
        default: "generated at start and printed once",
        meaning: "shared secret of the HTTP API (X-Auth-Token header)",
    },
    VarDoc {
        name: "TURN_SERVER",
        default: "none",
        meaning: "TURN URL handed to clients in roomReady, or 'none'",
    },
    VarDoc {
        name: "TURN_STATIC_SECRET",
        default: "(required with TURN_SERVER)",
        meaning: "coturn static-auth-secret for time-limited credentials",
    },
    VarDoc {
        name: "WEBHOOK_URL",
        default: "unset: no webhooks",
        meaning: "where room events are POSTed",
    },
    VarDoc {
        name: "WEBHOOK_TOKEN",
        default: "empty",
        meaning: "X-Auth-Token sent with webhooks",
    },
    VarDoc {
        name: "SSL_CERT",
        default: "none",
        meaning: "PEM certificate chain; 'none' disables TLS",
    },
    VarDoc {
        name: "SSL_KEY",
        default: "none",
        meaning: "PEM private key for SSL_CERT",
    },
    VarDoc {
        name: "FORCE_WSS",
        default: "false",
        meaning: "hand out wss:// URLs without TLS here (TLS terminated in front)",
    },
    VarDoc {
        name: "LISTENING_HOST",
        default: "127.0.0.1",
        meaning: "address of the HTTP(S) listener (API and signaling)",
    },
    VarDoc {
        name: "LISTENING_PORT",
        default: "12443",
        meaning: "port of the HTTP(S) listener",
    },
    VarDoc {
        name: "PUBLIC_DOMAIN",
        default: "LISTENING_HOST:LISTENING_PORT",
        meaning: "host:port written into signaling URLs",
    },
    VarDoc {
        name: "ROUTER_SCALE_SIZE",
        default: "16",
        meaning: "peers per router before a room spreads to another worker",
    },
    VarDoc {
        name: "MEDIASOUP_NUM_WORKERS",
        default: "number of CPUs",
        meaning: "media worker threads",
    },
    VarDoc {
        name: "WEBRTC_LISTEN_IP",
        default: "127.0.0.1",
        meaning: "address the media sockets bind",
    },
    VarDoc {
        name: "WEBRTC_PORT",
        default: "44444",
        meaning: "UDP and TCP media port of the first worker (+1 per further worker); 0 picks free ports",
    },
    VarDoc {
        name: "WEBRTC_ANNOUNCED_ADDRESS",
        default: "WEBRTC_LISTEN_IP",
        meaning: "address put into ICE candidates (public IP behind NAT)",
    },
    VarDoc {
        name: "LOG_LEVEL",
        default: "info",
        meaning: "error, warn, info, debug or trace",
    },
    VarDoc {
        name: "CONSOLE_SOCKET",
        default: "/tmp/kolabmeet-server.sock",
        meaning: "unix socket of the console ('none' disables it)",
    },
    VarDoc {
        name: "PEER_RECONNECT_GRACE_MS",
        default: "10000",
        meaning: "how long a peer whose socket was lost waits for a reconnection",
    },
    VarDoc {
        name: "ROOM_CLOSE_DELAY_MS",
        default: "10000",
        meaning: "how long a room waits after its last peer left before closing",
    },
    VarDoc {
        name: "ROOM_IDLE_EXPIRY_MS",
        default: "3600000",
        meaning: "how long a room (or a new peer token) keeps a room nobody is in alive",
    },
    VarDoc {
        name: "PING_INTERVAL_MS",
        default: "25000",
        meaning: "Engine.IO heartbeat interval",
    },
    VarDoc {
        name: "PING_TIMEOUT_MS",
        default: "20000",
        meaning: "Engine.IO heartbeat timeout",
    },
    VarDoc {
        name: "REQUEST_TIMEOUT_MS",
        default: "20000",
        meaning: "how long a server-to-client request (newConsumer) waits for its ack; tried 3 times",
    },
    VarDoc {
        name: "MAX_CONNECTIONS",
        default: "20000",
        meaning: "open TCP connections (API and signaling) at most",
    },
    VarDoc {
        name: "DRAIN_TIMEOUT",
        default: "600",
        meaning: "seconds a stop signal (SIGTERM/SIGINT) waits for the rooms to empty before closing them; 0 closes them at once",
    },
    VarDoc {
        name: "SENDER_REPORT_CLOCK",
        default: "capture",
        meaning: "what consumers' sender reports map: capture (the publisher's own audio/video clock, true lip sync) or forwarding (when the server forwarded each stream, as mediasoup does; for comparisons)",
    },
    VarDoc {
        name: "DEMO_PAGE",
        default: "auto",
        meaning: "the meeting page at / and its /demo/join endpoint: on, off, or auto (on only when LISTENING_HOST is a loopback address)",
    },
];
