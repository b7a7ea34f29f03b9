//! `POST /demo/join`: the meeting page's only way in. It takes `{room, nickname}` and
//! answers `{room, roomId, peerId, nickname, query: {peerId, roomId, authToken}}`: a new
//! peer (SUBSCRIBER, PUBLISHER and SCREEN: no moderation) of the room with that name,
//! created on first use and kept under that name while it lives. The page connects its
//! signaling socket to its own origin with that query.
//!
//! Every input is bounded, requests are rate-limited per address and overall, the
//! name-to-room map is bounded, and cross-origin or (on loopback) foreign-host requests
//! are refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use kolabmeet_engine::RoomId;
use kolabmeet_signaling::control::{ControlError, ControlPlane, Now};
use kolabmeet_signaling::rate_limit::TokenBucket;
use kolabmeet_signaling::roles::Role;
use serde_json::{Value, json};

use crate::front::{HttpRequest, HttpResponse};
use crate::routes;

/// The endpoint's path.
pub const JOIN_PATH: &str = "/demo/join";
/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Longest nickname, in characters.
pub const MAX_NICKNAME_CHARS: usize = 64;
/// Largest request body.
const MAX_BODY: usize = 4096;
/// Room names remembered at most (rooms that closed are forgotten first).
pub const MAX_DEMO_ROOMS: usize = 1000;
/// Peers a demo room takes at most (a page that reloads leaves its old peer behind
/// until the room closes, so this is more than the people in it).
pub const MAX_DEMO_PEERS_PER_ROOM: usize = 50;
/// Addresses whose rate limits are tracked at most.
const MAX_TRACKED_ADDRESSES: usize = 4096;
/// An address unseen this long has a full bucket again and is forgotten.
const ADDRESS_IDLE: Duration = Duration::from_secs(60);
/// Joins one address may burst, and sustain per second.
const PER_ADDRESS: (u32, u32) = (10, 1);
/// Joins all addresses together may burst, and sustain per second.
const OVERALL: (u32, u32) = (30, 2);
/// The role of a demo peer: it can publish webcam, microphone and screen and receive,
/// but not moderate (no kicking others or closing the room).
const DEMO_ROLE: u64 = 1 | 2 | 8;

/// Why a join was refused; each maps to one status and a message for the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The body is not labelled JSON (which also makes browsers preflight a
    /// cross-origin request, which this server never approves).
    #[error("the body must be JSON (Content-Type: application/json)")]
    NotJson,
    /// The body is too large or not the expected object.
    #[error("{0}")]
    BadBody(String),
    /// The room name is empty, too long or has other characters than letters, digits,
    /// space, '-', '_' and '.'.
    #[error(
        "the room name must be 1 to {MAX_ROOM_NAME_CHARS} letters, digits, spaces, '-', '_' or '.'"
    )]
    BadRoomName,
    /// The nickname is empty, too long or has control characters.
    #[error("the nickname must be 1 to {MAX_NICKNAME_CHARS} characters without control characters")]
    BadNickname,
    /// The request comes from a page of another origin.
    #[error("cross-origin requests are refused")]
    ForeignOrigin,
    /// A loopback listener got a request for a non-loopback host name (DNS rebinding),
    /// or one that a proxy forwarded (a reverse proxy on this machine would otherwise
    /// open the endpoint to whoever reaches the proxy).
    #[error("this page answers only on a loopback host name, not through a proxy")]
    ForeignHost,
    /// Too many joins lately.
    #[error("too many joins, try again in a few seconds")]
    RateLimited,
    /// Too many named rooms live at once.
    #[error("too many meeting rooms are open")]
    TooManyRooms,
    /// The room has as many peers as a demo room takes.
    #[error("this room is full")]
    RoomFull,
    /// The control plane refused (one of its own bounds).
    #[error("cannot join: {0}")]
    Control(#[from] ControlError),
}

impl JoinError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotJson => 415,
            Self::BadBody(_) | Self::BadRoomName | Self::BadNickname => 400,
            Self::ForeignOrigin | Self::ForeignHost => 403,
            Self::RateLimited => 429,
            Self::TooManyRooms | Self::RoomFull | Self::Control(_) => 503,
        }
    }
}

/// A validated join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The room name as given (trimmed).
    pub room: String,
    /// The nickname as given (trimmed).
    pub nickname: String,
}

/// The room name, trimmed, if it is acceptable.
pub fn room_name(raw: &str) -> Option<&str> {
    let name = raw.trim();
    let chars = name.chars().count();
    let ok = (1..=MAX_ROOM_NAME_CHARS).contains(&chars)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
    ok.then_some(name)
}

/// The nickname, trimmed, if it is acceptable.
pub fn nickname(raw: &str) -> Option<&str> {
    let name = raw.trim();
    let chars = name.chars().count();
    let ok = (1..=MAX_NICKNAME_CHARS).contains(&chars) && !name.chars().any(char::is_control);
    ok.then_some(name)
}

/// Parses and checks the body of a join.
pub fn parse_join(req: &HttpRequest) -> Result<JoinRequest, JoinError> {
    let ctype = req.header("content-type").unwrap_or("");
    if !ctype
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(JoinError::NotJson);
    }
    if req.body.len() > MAX_BODY {
        return Err(JoinError::BadBody(format!(
            "the body is larger than {MAX_BODY} bytes"
        )));
    }
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| JoinError::BadBody(format!("malformed JSON body: {e}")))?;
    let field = |k: &str| body.get(k).and_then(Value::as_str);
    let room = field("room")
        .and_then(room_name)
        .ok_or(JoinError::BadRoomName)?;
    let nick = field("nickname")
        .and_then(nickname)
        .ok_or(JoinError::BadNickname)?;
    Ok(JoinRequest {
        room: room.to_owned(),
        nickname: nick.to_owned(),
    })
}

/// The host name of a `Host` header value (`name:port`, `[v6]:port`, `name`).
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Whether a `Host` names this machine's loopback interface.
pub fn loopback_host(host: &str) -> bool {
    let name = host_name(host);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Headers that reverse proxies add to what they forward.
const FORWARDING_HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
];

/// Checks that the request is same-origin (an `Origin`, when sent, is this `Host`) and,
/// when `loopback_only`, addressed to a loopback host name.
pub fn check_origin(req: &HttpRequest, loopback_only: bool) -> Result<(), JoinError> {
    let host = req.header("host").unwrap_or("").trim();
    let forwarded = FORWARDING_HEADERS.iter().any(|h| req.header(h).is_some());
    if loopback_only && (!loopback_host(host) || forwarded) {
        return Err(JoinError::ForeignHost);
    }
    if let Some(origin) = req.header("origin") {
        let origin = origin.trim();
        let same = ["http://", "https://"]
            .iter()
            .any(|s| origin.strip_prefix(s).is_some_and(|o| o == host));
        if !same || host.is_empty() {
            return Err(JoinError::ForeignOrigin);
        }
    }
    Ok(())
}

/// Rate limits per address and overall, with a bounded table of addresses.
struct JoinLimits {
    overall: TokenBucket,
    per_address: HashMap<IpAddr, (TokenBucket, Instant)>,
}

impl JoinLimits {
    fn new(now: Instant) -> Self {
        Self {
            overall: TokenBucket::new(OVERALL.0, OVERALL.1, now),
            per_address: HashMap::new(),
        }
    }

    /// Whether `ip` may join now (takes a token from both buckets when it may).
    fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.per_address.contains_key(&ip) && self.per_address.len() >= MAX_TRACKED_ADDRESSES {
            self.per_address
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < ADDRESS_IDLE);
            if self.per_address.len() >= MAX_TRACKED_ADDRESSES {
                return false;
            }
        }
        let (bucket, seen) = self
            .per_address
            .entry(ip)
            .or_insert_with(|| (TokenBucket::new(PER_ADDRESS.0, PER_ADDRESS.1, now), now));
        *seen = now;
        // The address's own bucket first: a flooding address spends only its own tokens,
        // not everyone's.
        bucket.try_take(now) && self.overall.try_take(now)
    }
}

/// The join endpoint's state: rate limits and the room names of live rooms.
pub struct DemoJoin {
    /// Only loopback `Host` names are answered (the listener is on loopback).
    loopback_only: bool,
    limits: JoinLimits,
    /// Lower-cased room name -> its room, while the room lives.
    rooms: HashMap<String, RoomId>,
}

impl DemoJoin {
    /// A fresh endpoint.
    pub fn new(loopback_only: bool, now: Instant) -> Self {
        Self {
            loopback_only,
            limits: JoinLimits::new(now),
            rooms: HashMap::new(),
        }
    }

    /// Handles one `POST /demo/join`.
    pub fn handle(
        &mut self,
        control: &mut ControlPlane,
        req: &HttpRequest,
        now: Now,
    ) -> HttpResponse {
        match self.join(control, req, now) {
            Ok(v) => {
                HttpResponse::new(200).with_body("application/json", v.to_string().into_bytes())
            }
            Err(e) => {
                tracing::info!(remote = %req.remote, error = %e, "demo join refused");
                HttpResponse::new(e.status()).with_body(
                    "application/json",
                    json!({ "error": e.to_string() }).to_string().into_bytes(),
                )
            }
        }
    }

    fn join(
        &mut self,
        control: &mut ControlPlane,
        req: &HttpRequest,
        now: Now,
    ) -> Result<Value, JoinError> {
        check_origin(req, self.loopback_only)?;
        if !self.limits.allow(req.remote.ip(), now.mono) {
            return Err(JoinError::RateLimited);
        }
        let join = parse_join(req)?;
        let room = self.room_for(control, &join.room, now)?;
        if control.peer_count(&room).unwrap_or(0) >= MAX_DEMO_PEERS_PER_ROOM {
            return Err(JoinError::RoomFull);
        }
        let role = Role::from_bits(DEMO_ROLE).unwrap_or(Role::NONE);
        let (peer, url) = control.create_peer(room, role, now)?;
        let mut query = serde_json::Map::new();
        let (_, q) = routes::split_target(&url);
        for (k, v) in routes::form_urlencoded_pairs(q) {
            query.insert(k, Value::String(v));
        }
        tracing::info!(room = %room, peer = %peer, name = %join.room, "demo page: peer created");
        Ok(json!({
            "room": join.room,
            "roomId": room,
            "peerId": peer,
            "nickname": join.nickname,
            "query": query,
        }))
    }

    /// The live room of that name, created when there is none.
    fn room_for(
        &mut self,
        control: &mut ControlPlane,
        name: &str,
        now: Now,
    ) -> Result<RoomId, JoinError> {
        let key = name.to_lowercase();
        if let Some(id) = self.rooms.get(&key)
            && control.room_exists(id)
        {
            return Ok(*id);
        }
        self.rooms.remove(&key);
        if self.rooms.len() >= MAX_DEMO_ROOMS {
            self.rooms.retain(|_, id| control.room_exists(id));
            if self.rooms.len() >= MAX_DEMO_ROOMS {
                return Err(JoinError::TooManyRooms);
            }
        }
        let id = control.create_room(now)?;
        self.rooms.insert(key, id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            target: JOIN_PATH.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
            remote: "127.0.0.1:5000".parse().unwrap(),
        }
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(room_name("  Team sync-1 "), Some("Team sync-1"));
        assert_eq!(room_name("Café_2.0"), Some("Café_2.0"));
        assert_eq!(room_name(""), None);
        assert_eq!(room_name("   "), None);
        assert_eq!(room_name("a/b"), None);
        assert_eq!(room_name("<script>"), None);
        assert_eq!(room_name(&"x".repeat(65)), None);
        assert!(room_name(&"é".repeat(64)).is_some());
        assert_eq!(nickname(" Ann "), Some("Ann"));
        assert_eq!(nickname("a\nb"), None);
        assert_eq!(nickname(""), None);
        assert_eq!(nickname(&"y".repeat(65)), None);
    }

    #[test]
    fn body_must_be_json_with_both_fields() {
        let json = [("Content-Type", "application/json")];
        assert_eq!(
            parse_join(&req(&[], r#"{"room":"a","nickname":"b"}"#)),
            Err(JoinError::NotJson)
        );
        assert_eq!(
            parse_join(&req(
                &[("Content-Type", "text/plain")],
                r#"{"room":"a","nickname":"b"}"#
            )),
            Err(JoinError::NotJson)
        );
        assert!(matches!(
            parse_join(&req(&json, "{")),
            Err(JoinError::BadBody(_))
        ));
        assert!(matches!(
            parse_join(&req(&json, &"x".repeat(5000))),
            Err(JoinError::BadBody(_))
        ));
        assert_eq!(
            parse_join(&req(&json, r#"{"nickname":"b"}"#)),
            Err(JoinError::BadRoomName)
        );
        assert_eq!(
            parse_join(&req(&json, r#"{"room":"a","nickname":5}"#)),
            Err(JoinError::BadNickname)
        );
        assert_eq!(
            parse_join(&req(&json, r#"{"room":" a ","nickname":"b"}"#)),
            Ok(JoinRequest {
                room: "a".into(),
                nickname: "b".into()
            })
        );
    }

    #[test]
    fn only_same_origin_and_loopback_hosts() {
        let ok = req(
            &[
                ("Host", "127.0.0.1:12443"),
                ("Origin", "http://127.0.0.1:12443"),
            ],
            "",
        );
        assert_eq!(check_origin(&ok, true), Ok(()));
        assert_eq!(
            check_origin(&req(&[("Host", "localhost:1")], ""), true),
            Ok(())
        );
        assert_eq!(check_origin(&req(&[("Host", "[::1]:1")], ""), true), Ok(()));
        let rebound = req(
            &[
                ("Host", "evil.example:12443"),
                ("Origin", "http://evil.example:12443"),
            ],
            "",
        );
        assert_eq!(check_origin(&rebound, true), Err(JoinError::ForeignHost));
        assert_eq!(check_origin(&rebound, false), Ok(()));
        let cross = req(
            &[
                ("Host", "127.0.0.1:12443"),
                ("Origin", "http://evil.example"),
            ],
            "",
        );
        assert_eq!(check_origin(&cross, true), Err(JoinError::ForeignOrigin));
        let null = req(&[("Host", "127.0.0.1:12443"), ("Origin", "null")], "");
        assert_eq!(check_origin(&null, true), Err(JoinError::ForeignOrigin));
        assert_eq!(
            check_origin(&req(&[], ""), true),
            Err(JoinError::ForeignHost)
        );
        // A proxy on this machine that rewrites Host to the loopback address.
        let proxied = req(
            &[
                ("Host", "127.0.0.1:12443"),
                ("X-Forwarded-For", "203.0.113.9"),
            ],
            "",
        );
        assert_eq!(check_origin(&proxied, true), Err(JoinError::ForeignHost));
        assert_eq!(check_origin(&proxied, false), Ok(()));
    }

    /// A media engine that accepts every command and never answers: the name-to-room
    /// map and peer creation need no media.
    struct NoMedia(kolabmeet_engine::ortc::RtpCapabilities);

    impl kolabmeet_engine::MediaEngine for NoMedia {
        fn router_rtp_capabilities(&self) -> &kolabmeet_engine::ortc::RtpCapabilities {
            &self.0
        }
        fn submit(&mut self, _: kolabmeet_engine::EngineCommand) {}
        fn poll_event(&mut self) -> Option<kolabmeet_engine::EngineEvent> {
            None
        }
        fn health(&self) -> kolabmeet_engine::EngineHealth {
            kolabmeet_engine::EngineHealth::Healthy
        }
    }

    fn join_as(
        demo: &mut DemoJoin,
        control: &mut ControlPlane,
        room: &str,
        at: Instant,
    ) -> (u16, Value) {
        let body = json!({ "room": room, "nickname": "Ann" }).to_string();
        let r = req(
            &[
                ("Host", "127.0.0.1:12443"),
                ("Content-Type", "application/json"),
            ],
            &body,
        );
        let resp = demo.handle(control, &r, Now { mono: at, unix: 0 });
        (resp.status, serde_json::from_slice(&resp.body).unwrap())
    }

    /// A room name maps to one room while it lives (any case), to another room once it
    /// has closed, and each join is a new peer of it with a token of its own.
    #[test]
    fn room_names_map_to_live_rooms() {
        let t0 = Instant::now();
        let config = kolabmeet_signaling::control::ControlConfig::default();
        let expiry = config.room_idle_expiry;
        let engine = NoMedia(kolabmeet_engine::ortc::router_rtp_capabilities());
        let mut control = ControlPlane::new(config, Box::new(engine));
        let mut demo = DemoJoin::new(true, t0);
        let (status, a) = join_as(&mut demo, &mut control, "Team", t0);
        assert_eq!(status, 200, "{a}");
        let (_, b) = join_as(&mut demo, &mut control, " team ", t0);
        let (_, c) = join_as(&mut demo, &mut control, "Other", t0);
        assert_eq!(a["roomId"], b["roomId"]);
        assert_ne!(a["roomId"], c["roomId"]);
        assert_ne!(a["peerId"], b["peerId"]);
        assert_eq!(a["query"]["roomId"], a["roomId"]);
        assert_eq!(a["query"]["peerId"], a["peerId"]);
        assert_eq!(a["query"]["authToken"].as_str().unwrap().len(), 32);
        assert_eq!(
            control.peer_count(&a["roomId"].as_str().unwrap().parse().unwrap()),
            Some(2)
        );
        // Nobody connects: the rooms expire, and the name gets a new room.
        let later = t0 + expiry + Duration::from_secs(1);
        control.handle_timeout(Now {
            mono: later,
            unix: 0,
        });
        let (_, d) = join_as(&mut demo, &mut control, "TEAM", later);
        assert_ne!(d["roomId"], a["roomId"]);
        assert!(control.room_exists(&d["roomId"].as_str().unwrap().parse().unwrap()));
    }

    #[test]
    fn joins_are_rate_limited_per_address_and_overall() {
        let t0 = Instant::now();
        let mut limits = JoinLimits::new(t0);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let allowed = (0..20).filter(|_| limits.allow(a, t0)).count();
        assert_eq!(allowed, PER_ADDRESS.0 as usize);
        assert!(
            limits.allow(a, t0 + Duration::from_secs(1)),
            "refilled after a second"
        );
        // Other addresses share the overall bucket.
        let others = (0..100u8)
            .filter(|i| limits.allow(IpAddr::from([10, 0, 0, *i]), t0 + Duration::from_secs(1)))
            .count();
        assert!(others < OVERALL.0 as usize, "{others}");
    }
}
