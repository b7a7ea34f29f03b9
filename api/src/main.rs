//! `kolabmeet-server`: reads its configuration from the environment, binds the HTTP(S)
//! listener and the console socket, and runs the control loop.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use kolabmeet_engine::worker::{WorkerEngine, WorkerSettings};
use kolabmeet_server::config::Config;
use kolabmeet_server::demo::DemoPage;
use kolabmeet_server::front::{Front, FrontConfig};
use kolabmeet_server::service::ServerService;
use kolabmeet_server::shutdown::{STOP_SIGNALS, WEBHOOK_FLUSH};
use kolabmeet_server::webhooks::WebhookSender;
use kolabmeet_server::{logging, routes};
use kolabmeet_signaling::control::{ControlConfig, ControlPlane, TurnConfig};
use kolabmeet_signaling::session::SessionConfig;

/// The contract's 5 MB body limit.
const MAX_BODY: usize = 5 * 1024 * 1024;

fn environment() -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        match v.into_string() {
            Ok(v) => {
                map.insert(k.to_owned(), v);
            }
            Err(_) => return Err(format!("{k}: is not valid UTF-8")),
        }
    }
    Ok(map)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{}", Config::help());
                return ExitCode::SUCCESS;
            }
            "--version" | "-V" => {
                println!("kolabmeet-server {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("kolabmeet-server: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let config =
        match environment().and_then(|env| Config::from_env(&env).map_err(|e| e.to_string())) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kolabmeet-server: {e}");
                return ExitCode::from(2);
            }
        };
    let log = logging::init(config.log_level);
    if config.auth_token_generated {
        println!(
            "kolabmeet-server: generated AUTH_TOKEN={} (set AUTH_TOKEN to choose one)",
            config.auth_token
        );
        let _ = std::io::stdout().flush();
    }
    let webhooks = match &config.webhook {
        None => WebhookSender::disabled(),
        Some((url, token)) => match WebhookSender::start(url.clone(), token.clone()) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("kolabmeet-server: cannot start the webhook thread: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let control_config = ControlConfig {
        session: SessionConfig {
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            request_timeout: config.request_timeout,
            ..SessionConfig::default()
        },
        peer_grace: config.peer_grace,
        room_close_delay: config.room_close_delay,
        room_idle_expiry: config.room_idle_expiry,
        turn: config
            .turn
            .clone()
            .map(|(url, secret)| TurnConfig { url, secret }),
        public_domain: config.public_domain.clone(),
        wss: config.wss(),
    };
    // The workers wake the control loop when they have events; its waker exists once the
    // listener is bound, so they reach it through a cell filled below.
    let wake_control: Arc<OnceLock<Arc<mio::Waker>>> = Arc::new(OnceLock::new());
    let notify = {
        let cell = wake_control.clone();
        Arc::new(move || {
            if let Some(w) = cell.get() {
                let _ = w.wake();
            }
        })
    };
    let mut engine = match WorkerEngine::start(
        WorkerSettings {
            listen_ip: config.webrtc_listen_ip,
            announced_address: config.webrtc_announced_address.clone(),
            port: config.webrtc_port,
            sender_report_clock: config.sender_report_clock,
        },
        config.num_workers,
        notify,
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "kolabmeet-server: WEBRTC_LISTEN_IP/WEBRTC_PORT: cannot open the media ports {}:{}: {e}",
                config.webrtc_listen_ip, config.webrtc_port
            );
            return ExitCode::FAILURE;
        }
    };
    engine.set_router_scale_size(config.router_scale_size);
    let media_ports = engine.ports();
    #[cfg(feature = "fault-injection")]
    let faults = engine.fault_injector();
    let control = ControlPlane::new(control_config, Box::new(engine));
    let mut front = match Front::bind(FrontConfig {
        listen: config.listen,
        tls: config.tls.clone(),
        console_path: config.console_socket.clone(),
        max_body: MAX_BODY,
        max_connections: config.max_connections,
        idle_http_timeout: std::time::Duration::from_secs(60),
        header_timeout: std::time::Duration::from_secs(10),
        max_ws_message: 1_000_000,
        max_ws_pending_out: 4 * 1024 * 1024,
        front_error_headers: vec![("Strict-Transport-Security".into(), routes::HSTS.into())],
    }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kolabmeet-server: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    // SIGTERM and SIGINT drain the server (issue 10) instead of killing it.
    if let Err(e) = front.watch_signals(&STOP_SIGNALS) {
        eprintln!("kolabmeet-server: {e}");
        return ExitCode::FAILURE;
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(
        "listening on {scheme}://{} (signaling at /meetmedia/signaling, API at /meetmedia/api/, console {})",
        front.local_addr(),
        config
            .console_socket
            .as_ref()
            .map_or("disabled".to_owned(), |p| p.display().to_string())
    );
    tracing::info!(
        "{} media worker(s) on {} (UDP and TCP ports {:?}), announced as {}",
        media_ports.len(),
        config.webrtc_listen_ip,
        media_ports,
        config.webrtc_announced_address
    );
    let _ = wake_control.set(front.waker());
    let service = ServerService::new(control, config.auth_token.clone(), webhooks, log)
        .with_drain_timeout(config.drain_timeout);
    #[cfg(feature = "fault-injection")]
    let service = {
        tracing::warn!(
            "test build: the console's crashWorker and crashTransport make media workers and transports fail"
        );
        service.with_fault_injector(faults)
    };
    let service = if config.demo_page_enabled() {
        tracing::info!(
            "meeting page at {scheme}://{}/ (DEMO_PAGE=off disables it)",
            front.local_addr()
        );
        service.with_demo_page(DemoPage::new(config.listen.ip(), std::time::Instant::now()))
    } else {
        service
    };
    let mut service = service;
    if let Err(e) = front.run(&mut service) {
        tracing::error!(error = %e, "event loop failed");
        eprintln!("kolabmeet-server: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(status) = service.forced_exit_status() {
        // A second stop signal: no waiting for workers or webhooks.
        tracing::warn!(status, "stopped at once");
        std::process::exit(i32::from(status));
    }
    tracing::info!("drain finished: stopping the media workers and posting the last webhooks");
    let unsent = service.finish(WEBHOOK_FLUSH);
    if unsent > 0 {
        tracing::warn!(
            unsent,
            wait_s = WEBHOOK_FLUSH.as_secs(),
            "webhooks still unsent when the wait ended"
        );
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
