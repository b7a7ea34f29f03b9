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
        let mut d = self.level.directive().to_owned();
        for t in &self.tags {
            d.push_str(&format!(",kolabmeet::{t}=debug"));
        }
        d
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

/// Installs the global subscriber (logs to stderr) and returns its control.
pub fn init(level: LogLevel) -> LogControl {
    let filter = EnvFilter::new(level.directive());
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
            "debug,kolabmeet::ice=debug,kolabmeet::dtls=debug"
        );
        assert!(c.set_tags("ice,bogus").is_err());
        assert_eq!(c.set_tags("none").unwrap(), "logTags: none");
    }
}
