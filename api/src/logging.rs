//! Logging with `tracing`: level from `LOG_LEVEL`, changeable at run time from the console
//! (`logLevel`, `logTags`, contract section 7).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogLevel;

/// The debug tags of mediasoup's worker, kept for operators used to them. Each enables
/// `debug` for the log target `kolabmeet::<tag>`.
pub const LOG_TAGS: &[&str] = &[
    "info",
    "ice",
    "dtls",
    "rtp",
    "srtp",
    "rtcp",
    "rtx",
    "bwe",
    "score",
    "simulcast",
    "svc",
    "sctp",
    "message",
];

/// Changes the active filter.
pub struct LogControl {
    handle: Option<reload::Handle<EnvFilter, Registry>>,
    level: LogLevel,
    tags: Vec<String>,
}

impl LogControl {
    /// A control that changes nothing (tests).
    pub fn detached(level: LogLevel) -> Self {
        Self {
            handle: None,
            level,
            tags: Vec::new(),
        }
    }

    fn directives(&self) -> String {
        directives(self.level, &self.tags)
    }

    fn apply(&self) -> Result<(), String> {
        let Some(h) = &self.handle else {
            return Ok(());
        };
        let filter = EnvFilter::try_new(self.directives()).map_err(|e| e.to_string())?;
        h.reload(filter).map_err(|e| e.to_string())
    }

    /// `logLevel <level>`.
    pub fn set_level(&mut self, level: &str) -> Result<String, String> {
        let l = LogLevel::parse(level)
            .ok_or_else(|| format!("unknown level {level:?} (error, warn, info, debug, trace)"))?;
        self.level = l;
        self.apply()?;
        Ok(format!("logLevel: {}", l.directive()))
    }

    /// `logTags <tag,tag,...>` (empty or `none` clears them).
    pub fn set_tags(&mut self, tags: &str) -> Result<String, String> {
        let mut list = Vec::new();
        for t in tags
            .split([',', ' '])
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "none")
        {
            if !LOG_TAGS.contains(&t) {
                return Err(format!(
                    "unknown tag {t:?} (known: {})",
                    LOG_TAGS.join(", ")
                ));
            }
            list.push(t.to_owned());
        }
        self.tags = list;
        self.apply()?;
        Ok(format!(
            "logTags: {}",
            if self.tags.is_empty() {
                "none".to_owned()
            } else {
                self.tags.join(",")
            }
        ))
    }
}

/// The DTLS stack (`rtc-dtls`, through the `log` bridge) writes lines such as `WARN
/// Unsupported Extension Type` for every Chrome handshake: at the default level nothing per
/// handshake or per packet may reach the log, so its own lines are kept to errors unless the
/// `dtls` tag is on.
const STACK_TARGETS: &[&str] = &["rtc_dtls", "rtc_shared"];

/// The filter directives for a level and the debug tags on.
fn directives(level: LogLevel, tags: &[String]) -> String {
    let mut d = level.directive().to_owned();
    let stack = if tags.iter().any(|t| t == "dtls") {
        "debug"
    } else {
        "error"
    };
    for target in STACK_TARGETS {
        d.push_str(&format!(",{target}={stack}"));
    }
    for t in tags {
        d.push_str(&format!(",kolabmeet::{t}=debug"));
    }
    d
}

/// Installs the global subscriber (logs to stderr) and returns its control.
pub fn init(level: LogLevel) -> LogControl {
    let filter = EnvFilter::new(directives(level, &[]));
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init();
    LogControl {
        handle: Some(handle),
        level,
        tags: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_and_tags() {
        let mut c = LogControl::detached(LogLevel::Info);
        assert_eq!(c.set_level("debug").unwrap(), "logLevel: debug");
        assert!(c.set_level("loud").is_err());
        assert_eq!(c.set_tags("ice,dtls").unwrap(), "logTags: ice,dtls");
        assert_eq!(
            c.directives(),
            "debug,rtc_dtls=debug,rtc_shared=debug,kolabmeet::ice=debug,kolabmeet::dtls=debug"
        );
        assert!(c.set_tags("ice,bogus").is_err());
        assert_eq!(c.set_tags("none").unwrap(), "logTags: none");
    }

    /// Issue 8: the DTLS stack's per-handshake warnings stay out of the log at the default
    /// level (and at `debug`), our own warnings do not.
    #[test]
    fn dtls_stack_warnings_are_filtered_by_default() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::Layer;

        struct Capture(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> Layer<S> for Capture {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0
                    .lock()
                    .unwrap()
                    .push(event.metadata().target().to_owned());
            }
        }
        for level in [LogLevel::Info, LogLevel::Debug] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let filter = EnvFilter::new(directives(level, &[]));
            let subscriber =
                tracing_subscriber::registry().with(Capture(seen.clone()).with_filter(filter));
            tracing::subscriber::with_default(subscriber, || {
                tracing::warn!(target: "rtc_dtls::handshake", "Unsupported Extension Type 35 0");
                tracing::warn!(target: "kolabmeet::worker", "ours");
            });
            assert_eq!(
                *seen.lock().unwrap(),
                vec!["kolabmeet::worker"],
                "{level:?}"
            );
        }
    }
}
