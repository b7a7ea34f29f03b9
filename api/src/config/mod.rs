//! Configuration from the environment (contract section 2, plus the test and operations
//! knobs of this server). Parsing is a pure function of the variables so every bad value
//! can be tested; a bad value is reported as one line naming the variable.

use kolabmeet_engine::worker::SenderReportClock;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::demo::DemoPageMode;

mod variables;
pub use variables::{VARIABLES, VarDoc};

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Room and connection life.
    Info,
    /// Per-request detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// Parses `error|warn|info|debug|trace` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "error" => Self::Error,
            "warn" | "warning" => Self::Warn,
            "info" => Self::Info,
            "debug" => Self::Debug,
            "trace" => Self::Trace,
            _ => return None,
        })
    }

    /// The `tracing` filter directive.
    pub fn directive(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// The whole configuration.
#[derive(Clone)]
pub struct Config {
    /// API secret.
    pub auth_token: String,
    /// True when `auth_token` was generated (it is printed once).
    pub auth_token_generated: bool,
    /// TURN URL and secret.
    pub turn: Option<(String, String)>,
    /// Webhook URL and token.
    pub webhook: Option<(String, String)>,
    /// TLS, when a certificate is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Hand out wss:// URLs.
    pub force_wss: bool,
    /// Listener address.
    pub listen: SocketAddr,
    /// `host:port` of signaling URLs.
    pub public_domain: String,
    /// Peers per router.
    pub router_scale_size: usize,
    /// Media worker threads.
    pub num_workers: usize,
    /// Media listen address.
    pub webrtc_listen_ip: IpAddr,
    /// Address in ICE candidates.
    pub webrtc_announced_address: String,
    /// `WEBRTC_PORT`: the first worker's media port (0: free ports).
    pub webrtc_port: u16,
    /// Log level.
    pub log_level: LogLevel,
    /// Console socket path.
    pub console_socket: Option<PathBuf>,
    /// Reconnection grace.
    pub peer_grace: Duration,
    /// Empty room close delay.
    pub room_close_delay: Duration,
    /// Unused room expiry.
    pub room_idle_expiry: Duration,
    /// Heartbeat interval.
    pub ping_interval: Duration,
    /// Heartbeat timeout.
    pub ping_timeout: Duration,
    /// Server request timeout.
    pub request_timeout: Duration,
    /// Connections at most.
    pub max_connections: usize,
    /// `DRAIN_TIMEOUT`: how long a stop signal waits for the rooms to empty (issue 10).
    pub drain_timeout: Duration,
    /// `DEMO_PAGE`: whether the meeting page is served (see [`Config::demo_page_enabled`]).
    pub demo_page: DemoPageMode,
    /// `SENDER_REPORT_CLOCK`: the NTP/RTP mapping of consumers' sender reports.
    pub sender_report_clock: SenderReportClock,
}

fn get<'a>(env: &'a HashMap<String, String>, var: &str) -> Option<&'a str> {
    env.get(var).map(String::as_str)
}

fn number<T: std::str::FromStr>(
    env: &HashMap<String, String>,
    var: &'static str,
    default: T,
    what: &str,
) -> Result<T, ConfigError> {
    match get(env, var) {
        None | Some("") => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| bad(var, format!("{v:?} is not {what}"))),
    }
}

fn millis(
    env: &HashMap<String, String>,
    var: &'static str,
    default_ms: u64,
) -> Result<Duration, ConfigError> {
    let ms: u64 = number(env, var, default_ms, "a number of milliseconds")?;
    if ms == 0 || ms > 7 * 86_400_000 {
        return Err(bad(var, "must be between 1 ms and 7 days"));
    }
    Ok(Duration::from_millis(ms))
}

/// An IP address variable (`default` when unset or empty), and its text as given.
fn ip_address<'a>(
    env: &'a HashMap<String, String>,
    var: &'static str,
    default: &'a str,
) -> Result<(IpAddr, &'a str), ConfigError> {
    let text = get(env, var).filter(|s| !s.is_empty()).unwrap_or(default);
    let ip = text
        .parse()
        .map_err(|_| bad(var, format!("{text:?} is not an IP address")))?;
    Ok((ip, text))
}

fn flag(env: &HashMap<String, String>, var: &'static str) -> Result<bool, ConfigError> {
    match get(env, var).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "" | "0" | "false" | "no" | "off" => Ok(false),
            "1" | "true" | "yes" | "on" => Ok(true),
            _ => Err(bad(var, format!("{v:?} is not a boolean (true/false)"))),
        },
    }
}

/// A fresh API token: 32 random bytes as 64 hex characters.
pub fn generate_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn load_tls(cert: &str, key: &str) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let open = |var: &'static str, path: &str| {
        std::fs::read(path).map_err(|e| bad(var, format!("cannot read {path}: {e}")))
    };
    let cert_pem = open("SSL_CERT", cert)?;
    let key_pem = open("SSL_KEY", key)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| bad("SSL_CERT", format!("{cert}: not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(bad("SSL_CERT", format!("{cert}: no certificate found")));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| bad("SSL_KEY", format!("{key}: not a PEM key: {e}")))?
        .ok_or_else(|| bad("SSL_KEY", format!("{key}: no private key found")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("SSL_CERT", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            bad(
                "SSL_KEY",
                format!("does not match SSL_CERT or is unsupported: {e}"),
            )
        })?;
    Ok(Arc::new(config))
}

impl Config {
    /// Reads the configuration from `env` (the process environment, as a map).
    pub fn from_env(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let (auth_token, auth_token_generated) = match get(env, "AUTH_TOKEN") {
            None => (generate_token(), true),
            Some(t) if t.trim().is_empty() => {
                return Err(bad(
                    "AUTH_TOKEN",
                    "is empty (unset it to have one generated)",
                ));
            }
            Some(t) if t.len() < 8 => {
                return Err(bad("AUTH_TOKEN", "is shorter than 8 characters"));
            }
            Some(t) => (t.to_owned(), false),
        };
        let turn = match get(env, "TURN_SERVER").map(str::trim) {
            None | Some("") | Some("none") => None,
            Some(url) => {
                if !(url.starts_with("turn:") || url.starts_with("turns:")) {
                    return Err(bad(
                        "TURN_SERVER",
                        format!("{url:?} is not a turn: or turns: URL"),
                    ));
                }
                let secret = get(env, "TURN_STATIC_SECRET")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        bad("TURN_STATIC_SECRET", "is required when TURN_SERVER is set")
                    })?;
                Some((url.to_owned(), secret.to_owned()))
            }
        };
        let webhook = match get(env, "WEBHOOK_URL").map(str::trim) {
            None | Some("") => None,
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(bad("WEBHOOK_URL", format!("{url:?} is not an http(s) URL")));
                }
                Some((
                    url.to_owned(),
                    get(env, "WEBHOOK_TOKEN").unwrap_or("").to_owned(),
                ))
            }
        };
        let tls = match (get(env, "SSL_CERT"), get(env, "SSL_KEY")) {
            (None | Some("") | Some("none"), _) => None,
            (Some(_), None | Some("") | Some("none")) => {
                return Err(bad("SSL_KEY", "is required when SSL_CERT is set"));
            }
            (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
        };
        let force_wss = flag(env, "FORCE_WSS")?;
        let (ip, host) = ip_address(env, "LISTENING_HOST", "127.0.0.1")?;
        let port: u16 = number(env, "LISTENING_PORT", 12443, "a port number (0-65535)")?;
        let listen = SocketAddr::new(ip, port);
        let public_domain = match get(env, "PUBLIC_DOMAIN").filter(|d| !d.is_empty()) {
            Some(d) => {
                if d.contains(['/', '?', '#', ' ']) {
                    return Err(bad(
                        "PUBLIC_DOMAIN",
                        format!("{d:?} must be host[:port] only"),
                    ));
                }
                d.to_owned()
            }
            None => {
                let shown = if ip.is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    host.to_owned()
                };
                if ip.is_ipv6() {
                    format!("[{shown}]:{port}")
                } else {
                    format!("{shown}:{port}")
                }
            }
        };
        let router_scale_size: usize = number(env, "ROUTER_SCALE_SIZE", 16, "a number")?;
        if router_scale_size == 0 {
            return Err(bad("ROUTER_SCALE_SIZE", "must be at least 1"));
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let num_workers: usize = number(env, "MEDIASOUP_NUM_WORKERS", cpus, "a number")?;
        if num_workers == 0 || num_workers > 256 {
            return Err(bad("MEDIASOUP_NUM_WORKERS", "must be between 1 and 256"));
        }
        let (webrtc_listen_ip, _) = ip_address(env, "WEBRTC_LISTEN_IP", "127.0.0.1")?;
        let webrtc_port: u16 = number(env, "WEBRTC_PORT", 44444, "a port number (0-65535)")?;
        if webrtc_port != 0 && usize::from(webrtc_port) + num_workers > 65536 {
            return Err(bad("WEBRTC_PORT", "leaves no room for one port per worker"));
        }
        let webrtc_announced_address =
            match get(env, "WEBRTC_ANNOUNCED_ADDRESS").filter(|s| !s.is_empty()) {
                Some(a) => {
                    if a.contains([' ', '/', ',']) {
                        return Err(bad(
                            "WEBRTC_ANNOUNCED_ADDRESS",
                            format!("{a:?} is not an address"),
                        ));
                    }
                    a.to_owned()
                }
                None if webrtc_listen_ip.is_unspecified() => {
                    return Err(bad(
                        "WEBRTC_ANNOUNCED_ADDRESS",
                        "is required when WEBRTC_LISTEN_IP is a wildcard address",
                    ));
                }
                None => webrtc_listen_ip.to_string(),
            };
        let log_level = match get(env, "LOG_LEVEL").filter(|s| !s.is_empty()) {
            None => LogLevel::Info,
            Some(l) => LogLevel::parse(l).ok_or_else(|| {
                bad(
                    "LOG_LEVEL",
                    format!("{l:?} is not one of error, warn, info, debug, trace"),
                )
            })?,
        };
        let console_socket = match get(env, "CONSOLE_SOCKET") {
            None | Some("") => Some(PathBuf::from("/tmp/kolabmeet-server.sock")),
            Some("none") => None,
            Some(p) => Some(PathBuf::from(p)),
        };
        let max_connections: usize = number(env, "MAX_CONNECTIONS", 20_000, "a number")?;
        if max_connections == 0 {
            return Err(bad("MAX_CONNECTIONS", "must be at least 1"));
        }
        let drain_secs: u64 = number(
            env,
            "DRAIN_TIMEOUT",
            crate::shutdown::DEFAULT_DRAIN_TIMEOUT.as_secs(),
            "a number of seconds",
        )?;
        if drain_secs > 7 * 86_400 {
            return Err(bad("DRAIN_TIMEOUT", "must be at most 7 days (604800 s)"));
        }
        let demo_page = match get(env, "DEMO_PAGE").map(str::trim) {
            None | Some("") => DemoPageMode::Auto,
            Some(v) => DemoPageMode::parse(v)
                .ok_or_else(|| bad("DEMO_PAGE", format!("{v:?} is not one of auto, on, off")))?,
        };
        let sender_report_clock = match get(env, "SENDER_REPORT_CLOCK").map(str::trim) {
            None | Some("") | Some("capture") => SenderReportClock::Capture,
            Some("forwarding") => SenderReportClock::Forwarding,
            Some(v) => {
                return Err(bad(
                    "SENDER_REPORT_CLOCK",
                    format!("{v:?} is not one of capture, forwarding"),
                ));
            }
        };
        Ok(Config {
            demo_page,
            sender_report_clock,
            auth_token,
            auth_token_generated,
            turn,
            webhook,
            tls,
            force_wss,
            listen,
            public_domain,
            router_scale_size,
            num_workers,
            webrtc_listen_ip,
            webrtc_announced_address,
            webrtc_port,
            log_level,
            console_socket,
            peer_grace: millis(env, "PEER_RECONNECT_GRACE_MS", 10_000)?,
            room_close_delay: millis(env, "ROOM_CLOSE_DELAY_MS", 10_000)?,
            room_idle_expiry: millis(env, "ROOM_IDLE_EXPIRY_MS", 3_600_000)?,
            ping_interval: millis(env, "PING_INTERVAL_MS", 25_000)?,
            ping_timeout: millis(env, "PING_TIMEOUT_MS", 20_000)?,
            request_timeout: millis(env, "REQUEST_TIMEOUT_MS", 20_000)?,
            max_connections,
            drain_timeout: Duration::from_secs(drain_secs),
        })
    }

    /// Whether the meeting page and its join endpoint are served.
    pub fn demo_page_enabled(&self) -> bool {
        self.demo_page.enabled(self.listen.ip())
    }

    /// Whether signaling URLs use `wss://`.
    pub fn wss(&self) -> bool {
        self.tls.is_some() || self.force_wss
    }

    /// The `--help` text.
    pub fn help() -> String {
        let mut s = String::from(
            "kolabmeet-server: the Kolab Meet media server (HTTP API, signaling, media).\n\n\
             Usage: kolabmeet-server [--help | --version]\n\n\
             Configuration comes from environment variables; with none set it runs on\n\
             127.0.0.1:12443 without TLS and prints a generated AUTH_TOKEN.\n\n\
             Variables (default in brackets):\n",
        );
        for v in VARIABLES {
            s.push_str(&format!("  {:<26} {} [{}]\n", v.name, v.meaning, v.default));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults() {
        let c = Config::from_env(&env(&[])).unwrap();
        assert!(c.auth_token_generated);
        assert_eq!(c.auth_token.len(), 64);
        assert_eq!(
            c.listen,
            "127.0.0.1:12443".parse::<std::net::SocketAddr>().unwrap()
        );
        assert_eq!(c.public_domain, "127.0.0.1:12443");
        assert!(c.tls.is_none());
        assert!(!c.wss());
        assert!(c.turn.is_none());
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.peer_grace, Duration::from_secs(10));
        assert_eq!(c.drain_timeout, Duration::from_secs(600));
        assert_eq!(c.sender_report_clock, SenderReportClock::Capture);
        assert_eq!(c.demo_page, DemoPageMode::Auto);
        assert!(c.demo_page_enabled(), "auto on loopback serves the page");
    }

    /// Issue 10: `DEMO_PAGE` as configured, against the listen address.
    #[test]
    fn demo_page_switch() {
        let enabled =
            |pairs: &[(&str, &str)]| Config::from_env(&env(pairs)).unwrap().demo_page_enabled();
        assert!(enabled(&[]));
        assert!(enabled(&[("DEMO_PAGE", "auto"), ("LISTENING_HOST", "::1")]));
        assert!(!enabled(&[("DEMO_PAGE", "off")]));
        assert!(!enabled(&[
            ("DEMO_PAGE", "auto"),
            ("LISTENING_HOST", "0.0.0.0")
        ]));
        assert!(!enabled(&[("LISTENING_HOST", "192.168.1.5")]));
        assert!(enabled(&[
            ("DEMO_PAGE", "on"),
            ("LISTENING_HOST", "0.0.0.0")
        ]));
        assert!(enabled(&[("DEMO_PAGE", "ON")]));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("LISTENING_PORT", "abc")], "LISTENING_PORT"),
            (&[("LISTENING_PORT", "70000")], "LISTENING_PORT"),
            (&[("LISTENING_HOST", "example")], "LISTENING_HOST"),
            (&[("LOG_LEVEL", "loud")], "LOG_LEVEL"),
            (
                &[("SSL_CERT", "/nonexistent"), ("SSL_KEY", "/nonexistent")],
                "SSL_CERT",
            ),
            (&[("SSL_CERT", "/etc/hostname")], "SSL_KEY"),
            (&[("TURN_SERVER", "turn:x:3478")], "TURN_STATIC_SECRET"),
            (&[("TURN_SERVER", "http://x")], "TURN_SERVER"),
            (&[("FORCE_WSS", "maybe")], "FORCE_WSS"),
            (&[("AUTH_TOKEN", "")], "AUTH_TOKEN"),
            (&[("PING_INTERVAL_MS", "0")], "PING_INTERVAL_MS"),
            (&[("WEBHOOK_URL", "ftp://x")], "WEBHOOK_URL"),
            (&[("MEDIASOUP_NUM_WORKERS", "0")], "MEDIASOUP_NUM_WORKERS"),
            (
                &[("WEBRTC_LISTEN_IP", "0.0.0.0")],
                "WEBRTC_ANNOUNCED_ADDRESS",
            ),
            (&[("PUBLIC_DOMAIN", "a/b")], "PUBLIC_DOMAIN"),
            (&[("DRAIN_TIMEOUT", "-1")], "DRAIN_TIMEOUT"),
            (&[("DRAIN_TIMEOUT", "10m")], "DRAIN_TIMEOUT"),
            (&[("DRAIN_TIMEOUT", "604801")], "DRAIN_TIMEOUT"),
            (&[("DEMO_PAGE", "maybe")], "DEMO_PAGE"),
            (&[("SENDER_REPORT_CLOCK", "ntp")], "SENDER_REPORT_CLOCK"),
        ];
        for (vars, var) in cases {
            let e = Config::from_env(&env(vars))
                .err()
                .unwrap_or_else(|| panic!("{vars:?} accepted"));
            assert_eq!(e.var, *var, "{vars:?}: {e}");
            assert!(e.to_string().starts_with(var));
        }
    }

    #[test]
    fn explicit_values() {
        let c = Config::from_env(&env(&[
            ("AUTH_TOKEN", "secret-token"),
            ("LISTENING_HOST", "0.0.0.0"),
            ("LISTENING_PORT", "8443"),
            ("FORCE_WSS", "1"),
            ("TURN_SERVER", "turn:127.0.0.1:3478?transport=tcp"),
            ("TURN_STATIC_SECRET", "s"),
            ("LOG_LEVEL", "DEBUG"),
            ("CONSOLE_SOCKET", "none"),
            ("DRAIN_TIMEOUT", "0"),
            ("SENDER_REPORT_CLOCK", "forwarding"),
        ]))
        .unwrap();
        assert_eq!(c.drain_timeout, Duration::ZERO);
        assert_eq!(c.sender_report_clock, SenderReportClock::Forwarding);
        assert!(!c.auth_token_generated);
        assert_eq!(c.public_domain, "127.0.0.1:8443");
        assert!(c.wss());
        assert_eq!(c.turn.unwrap().1, "s");
        assert_eq!(c.log_level, LogLevel::Debug);
        assert!(c.console_socket.is_none());
    }

    #[test]
    fn help_lists_every_contract_variable() {
        let h = Config::help();
        for v in [
            "AUTH_TOKEN",
            "TURN_SERVER",
            "TURN_STATIC_SECRET",
            "WEBHOOK_URL",
            "WEBHOOK_TOKEN",
            "SSL_CERT",
            "SSL_KEY",
            "FORCE_WSS",
            "LISTENING_HOST",
            "LISTENING_PORT",
            "PUBLIC_DOMAIN",
            "ROUTER_SCALE_SIZE",
            "MEDIASOUP_NUM_WORKERS",
            "WEBRTC_LISTEN_IP",
            "WEBRTC_ANNOUNCED_ADDRESS",
        ] {
            assert!(h.contains(v), "{v} missing from --help");
        }
    }
}
