//! The packaging in `deploy/` agrees with the server (issue 10): the systemd unit waits
//! longer than a drain can take before it kills, its environment file and the
//! Containerfile name variables the server knows, with values it accepts, and expose the
//! default ports.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use kolabmeet_server::config::{Config, VARIABLES};
use kolabmeet_server::front::LINGER;
use kolabmeet_server::shutdown::{DEFAULT_DRAIN_TIMEOUT, WEBHOOK_FLUSH};

fn deploy(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `Key=value` lines of a unit or environment file (comments and sections skipped).
fn assignments(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn unit_value(unit: &[(String, String)], key: &str) -> String {
    unit.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{key} missing from the unit"))
}

#[test]
fn the_unit_outlasts_a_drain_and_is_sandboxed() {
    let unit = assignments(&deploy("kolabmeet-server.service"));
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");
    let stop: u64 = unit_value(&unit, "TimeoutStopSec").parse().unwrap();
    let env = assignments(&deploy("kolabmeet-server.env"));
    let drain: u64 = env
        .iter()
        .find(|(k, _)| k == "DRAIN_TIMEOUT")
        .map_or(DEFAULT_DRAIN_TIMEOUT.as_secs(), |(_, v)| v.parse().unwrap());
    let longest = Duration::from_secs(drain) + WEBHOOK_FLUSH + LINGER;
    assert!(
        Duration::from_secs(stop) > longest,
        "TimeoutStopSec={stop} does not cover DRAIN_TIMEOUT={drain} + webhook flush + linger"
    );
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("CapabilityBoundingSet", ""),
        ("DynamicUser", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("EnvironmentFile", "/etc/kolabmeet/kolabmeet-server.env"),
    ] {
        assert_eq!(unit_value(&unit, key), value, "{key}");
    }
}

#[test]
fn the_example_environment_is_a_valid_configuration() {
    let env: HashMap<String, String> = assignments(&deploy("kolabmeet-server.env"))
        .into_iter()
        .collect();
    for k in env.keys() {
        assert!(
            VARIABLES.iter().any(|v| v.name == k),
            "{k} is not a variable of the server"
        );
    }
    let config = Config::from_env(&env).unwrap_or_else(|e| panic!("example env: {e}"));
    assert!(config.wss(), "behind the TLS proxy the URLs are wss://");
    assert!(config.tls.is_none());
    assert_eq!(config.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
}

#[test]
fn the_containerfile_exposes_the_default_ports_and_stops_with_sigterm() {
    let file = deploy("Containerfile");
    assert!(file.contains("EXPOSE 12443/tcp"));
    assert!(file.contains("EXPOSE 44444/udp 44444/tcp"));
    assert!(file.contains("STOPSIGNAL SIGTERM"));
    assert!(file.contains("USER kolabmeet"));
    let stages = file.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "multi-stage: build and runtime");
}
