//! The meeting page (issue 10): on a server that only its own machine can reach, `GET /`
//! serves a small page to try a meeting in a browser, and `POST /demo/join` hands that
//! page a peer of a room picked by name. The API token never leaves the server: the
//! server creates the room and the peer itself, as the Kolab web application would
//! through the API. See docs/meeting-page.md for the security reasoning.

mod assets;
mod join;

use std::net::IpAddr;

use kolabmeet_signaling::control::{ControlPlane, Now};

use crate::front::{HttpRequest, HttpResponse};
pub use join::{DemoJoin, JoinError};

/// `DEMO_PAGE`: whether the meeting page is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoPageMode {
    /// Served only when the listener is on a loopback address.
    Auto,
    /// Always served (the operator accepts that anyone reaching the port may create
    /// rooms through it, within its rate limit).
    On,
    /// Never served: `/` and `/demo/*` answer 404.
    Off,
}

impl DemoPageMode {
    /// Parses `auto|on|off` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "auto" => Self::Auto,
            "on" => Self::On,
            "off" => Self::Off,
            _ => return None,
        })
    }

    /// Whether the page is served by a listener on `listen`.
    pub fn enabled(self, listen: IpAddr) -> bool {
        match self {
            Self::On => true,
            Self::Off => false,
            Self::Auto => listen.is_loopback(),
        }
    }
}

/// Headers of every demo response: no caching of peer tokens, no framing, no sniffing,
/// and a content security policy that lets the page load only its own script and style
/// and talk only to its own origin.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data:; media-src 'self' blob: mediastream:; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'none'",
    ),
];

/// The meeting page's routes: the static files and the join endpoint.
pub struct DemoPage {
    join: DemoJoin,
}

impl DemoPage {
    /// The page for a listener on `listen` (a loopback listener only answers requests
    /// whose `Host` is a loopback name, against DNS rebinding).
    pub fn new(listen: IpAddr, now: std::time::Instant) -> Self {
        Self {
            join: DemoJoin::new(listen.is_loopback(), now),
        }
    }

    /// Answers `req` when it is one of the page's paths; `None` otherwise.
    pub fn handle(
        &mut self,
        control: &mut ControlPlane,
        req: &HttpRequest,
        path: &str,
        now: Now,
    ) -> Option<HttpResponse> {
        let method = req.method.as_str();
        let resp = if path == join::JOIN_PATH {
            if method == "POST" {
                self.join.handle(control, req, now)
            } else {
                HttpResponse::new(405).with_header("Allow", "POST")
            }
        } else {
            let asset = assets::find(path)?;
            match method {
                "GET" | "HEAD" => HttpResponse::new(200).with_body(asset.content_type, asset.body),
                _ => HttpResponse::new(405).with_header("Allow", "GET, HEAD"),
            }
        };
        Some(
            SECURITY_HEADERS
                .iter()
                .fold(resp, |r, (k, v)| r.with_header(k, v)),
        )
    }
}
