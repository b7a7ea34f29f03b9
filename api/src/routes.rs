//! The HTTP API of contract section 3: `/ping`, and under `/meetmedia/api/` (token
//! checked in constant time) ping, health, stats, sessions, connection and signal.

use kolabmeet_engine::{EngineHealth, RoomId};
use kolabmeet_signaling::control::{ControlError, ControlPlane, Now};
use kolabmeet_signaling::roles::Role;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::front::{HttpRequest, HttpResponse};

/// Path prefix of the API.
pub const API_PREFIX: &str = "/meetmedia/api/";
/// `Strict-Transport-Security` sent with every API response.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Largest `type` of a signal.
const MAX_SIGNAL_TYPE: usize = 128;

fn text(status: u16, body: &str) -> HttpResponse {
    HttpResponse::new(status).with_body("text/plain; charset=utf-8", body.as_bytes().to_vec())
}

fn json_response(status: u16, v: &Value) -> HttpResponse {
    HttpResponse::new(status).with_body("application/json", v.to_string().into_bytes())
}

fn empty(status: u16) -> HttpResponse {
    HttpResponse::new(status)
}

/// A 400 with a reason, as JSON.
fn bad_request(reason: &str) -> HttpResponse {
    json_response(400, &json!({ "error": reason }))
}

/// Splits a request-target into path and query.
pub fn split_target(target: &str) -> (&str, &str) {
    match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    }
}

/// The request body as JSON: `application/x-www-form-urlencoded` bodies become an object
/// of strings (numbers where they parse); anything else must be JSON. An empty body is
/// `null`.
pub fn body_json(req: &HttpRequest) -> Result<Value, String> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let ctype = req
        .header("content-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let looks_json = req
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    // curl -d sends JSON labelled as a form; a body that starts like JSON is JSON.
    if ctype.starts_with("application/x-www-form-urlencoded") && !looks_json {
        let body = std::str::from_utf8(&req.body).map_err(|_| "body is not UTF-8".to_owned())?;
        let mut map = serde_json::Map::new();
        for (k, v) in form_urlencoded_pairs(body) {
            let value = match v.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => Value::String(v),
            };
            map.insert(k, value);
        }
        return Ok(Value::Object(map));
    }
    serde_json::from_slice(&req.body).map_err(|e| format!("malformed JSON body: {e}"))
}

/// Decodes `a=1&b=x+y%21` into pairs.
pub fn form_urlencoded_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Percent-decoding with `+` as space; invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%' {
            let pair = bytes
                .get(i + 1)
                .copied()
                .and_then(hex)
                .zip(bytes.get(i + 2).copied().and_then(hex));
            match pair {
                Some((hi, lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                None => out.push(b'%'),
            }
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the request carries the API token (constant-time comparison).
fn authorized(req: &HttpRequest, token: &str) -> bool {
    match req.header("x-auth-token") {
        Some(given) => bool::from(given.as_bytes().ct_eq(token.as_bytes())),
        None => false,
    }
}

/// Whether a `/metrics` request carries the API token: as `X-Auth-Token`, or as
/// `Authorization: Bearer <token>` (what Prometheus sends for a scrape job's
/// `authorization` credentials).
pub fn metrics_authorized(req: &HttpRequest, token: &str) -> bool {
    authorized(req, token)
        || req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

/// Handles one API request. `token` is the API secret.
pub fn handle(
    control: &mut ControlPlane,
    token: &str,
    req: &HttpRequest,
    now: Now,
) -> HttpResponse {
    let (path, _) = split_target(&req.target);
    let method = req.method.as_str();
    if path == "/ping" {
        return match method {
            "GET" | "HEAD" => text(200, "PONG"),
            _ => empty(405).with_header("Allow", "GET, HEAD"),
        };
    }
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return empty(404);
    };
    let response = if !authorized(req, token) {
        empty(403)
    } else {
        api(control, method, rest, req, now)
    };
    response.with_header("Strict-Transport-Security", HSTS)
}

/// `GET /meetmedia/api/health`: 200 `{"success":true,"message":"Healthy"}` while every
/// media worker runs; 503 `{"success":false,"message":"<why>"}` while one has failed and
/// its replacement is not running yet (its rooms cannot carry media meanwhile), and while
/// the server drains (issue 10: it takes no new rooms, so a balancer should send them
/// elsewhere; the message says so).
fn health(control: &ControlPlane, now: Now) -> HttpResponse {
    if let Some(d) = control.drain_status(now.mono) {
        let message = format!(
            "draining: no new rooms; {} room(s) with {} peer(s) still open, closed in at most {} s",
            d.rooms,
            d.peers,
            d.closes_in.as_secs()
        );
        return json_response(503, &json!({"success": false, "message": message}));
    }
    match control.media_health() {
        EngineHealth::Healthy => {
            json_response(200, &json!({"success": true, "message": "Healthy"}))
        }
        EngineHealth::Degraded(why) => {
            json_response(503, &json!({"success": false, "message": why}))
        }
    }
}

fn api(
    control: &mut ControlPlane,
    method: &str,
    rest: &str,
    req: &HttpRequest,
    now: Now,
) -> HttpResponse {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["ping"]) => text(200, "PONG"),
        ("GET", ["health"]) => health(control, now),
        ("GET", ["stats"]) => json_response(200, &control.stats()),
        ("GET", ["sessions"]) => {
            let list: Vec<Value> = control
                .sessions()
                .into_iter()
                .map(|(id, t)| json!({"roomId": id, "createdAt": t}))
                .collect();
            json_response(200, &Value::Array(list))
        }
        ("GET", ["sessions", id]) => match id.parse::<RoomId>() {
            Ok(room) if control.room_exists(&room) => empty(200),
            _ => empty(404),
        },
        ("POST", ["sessions"]) => match control.create_room(now) {
            Ok(id) => json_response(200, &json!({ "id": id })),
            Err(e) => json_response(503, &json!({ "error": e.to_string() })),
        },
        ("POST", ["sessions", id, "connection"]) => {
            let Ok(room) = id.parse::<RoomId>() else {
                return empty(404);
            };
            if !control.room_exists(&room) {
                return empty(404);
            }
            let body = match body_json(req) {
                Ok(b) => b,
                Err(reason) => return bad_request(&reason),
            };
            let role = match &body {
                Value::Null => Role::NONE,
                Value::Object(m) => match m.get("role") {
                    None | Some(Value::Null) => Role::NONE,
                    Some(v) => match v.as_u64().and_then(Role::from_bits) {
                        Some(r) => r,
                        None => {
                            return bad_request(
                                "role must be a number made of the bits 1, 2, 4, 8, 16",
                            );
                        }
                    },
                },
                _ => return bad_request("body must be a JSON object"),
            };
            match control.create_peer(room, role, now) {
                Ok((peer, url)) => json_response(200, &json!({ "id": peer, "token": url })),
                Err(ControlError::RoomNotFound) => empty(404),
                Err(e) => json_response(503, &json!({ "error": e.to_string() })),
            }
        }
        ("POST", ["signal"]) => {
            let body = match body_json(req) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return bad_request("body must be a JSON object {roomId, type, role?, data}");
                }
                Err(reason) => return bad_request(&reason),
            };
            let Some(room) = body.get("roomId").and_then(Value::as_str) else {
                return bad_request("roomId must be a string");
            };
            let Some(kind) = body
                .get("type")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            else {
                return bad_request("type must be a non-empty string");
            };
            if kind.len() > MAX_SIGNAL_TYPE {
                return bad_request("type is too long");
            }
            let role = match body.get("role") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64().and_then(Role::from_bits) {
                    Some(r) => Some(r),
                    None => {
                        return bad_request(
                            "role must be a number made of the bits 1, 2, 4, 8, 16",
                        );
                    }
                },
            };
            let data = body.get("data").cloned().unwrap_or(Value::Null);
            let Ok(room) = room.parse::<RoomId>() else {
                return json_response(404, &json!({"error": "room not found"}));
            };
            match control.signal(room, kind, role, &data) {
                Ok(_) => json_response(200, &json!({})),
                Err(_) => json_response(404, &json!({"error": "room not found"})),
            }
        }
        (_, ["ping" | "health" | "stats"]) | (_, ["sessions", ..]) | (_, ["signal"]) => empty(405),
        _ => empty(404),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use kolabmeet_engine::ortc::{RtpCapabilities, router_rtp_capabilities};
    use kolabmeet_engine::{EngineCommand, EngineEvent, MediaEngine};
    use kolabmeet_signaling::control::ControlConfig;

    use super::*;

    /// An engine whose health the test sets.
    struct Sick(RtpCapabilities, Arc<Mutex<EngineHealth>>);

    impl MediaEngine for Sick {
        fn router_rtp_capabilities(&self) -> &RtpCapabilities {
            &self.0
        }
        fn submit(&mut self, _: EngineCommand) {}
        fn poll_event(&mut self) -> Option<EngineEvent> {
            None
        }
        fn health(&self) -> EngineHealth {
            self.1.lock().unwrap().clone()
        }
    }

    fn call(control: &mut ControlPlane, method: &str, target: &str) -> (u16, Value) {
        let req = HttpRequest {
            method: method.into(),
            target: target.into(),
            headers: vec![("X-Auth-Token".into(), "t".into())],
            body: Vec::new(),
            remote: "127.0.0.1:1".parse().unwrap(),
        };
        let now = Now {
            mono: Instant::now(),
            unix: 0,
        };
        let resp = handle(control, "t", &req, now);
        let body = if resp.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&resp.body).unwrap()
        };
        (resp.status, body)
    }

    fn get_health(control: &mut ControlPlane) -> (u16, Value) {
        call(control, "GET", "/meetmedia/api/health")
    }

    /// Issue 10: while draining, no new rooms (503 saying why), health says draining, the
    /// existing rooms are served.
    #[test]
    fn draining_refuses_rooms_and_health_says_so() {
        let engine = Sick(
            router_rtp_capabilities(),
            Arc::new(Mutex::new(EngineHealth::Healthy)),
        );
        let mut control = ControlPlane::new(ControlConfig::default(), Box::new(engine));
        let (status, body) = call(&mut control, "POST", "/meetmedia/api/sessions");
        assert_eq!(status, 200);
        let room = body["id"].as_str().unwrap().to_owned();
        let now = Now {
            mono: Instant::now(),
            unix: 0,
        };
        control.begin_drain(now, std::time::Duration::from_secs(600));
        let (status, body) = call(&mut control, "POST", "/meetmedia/api/sessions");
        assert_eq!(status, 503);
        assert!(
            body["error"].as_str().unwrap().contains("draining"),
            "{body}"
        );
        let (status, body) = get_health(&mut control);
        assert_eq!(status, 503);
        assert_eq!(body["success"], false);
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("draining"), "{message}");
        assert!(message.contains("1 room(s)"), "{message}");
        let (status, body) = call(
            &mut control,
            "POST",
            &format!("/meetmedia/api/sessions/{room}/connection"),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            call(
                &mut control,
                "GET",
                &format!("/meetmedia/api/sessions/{room}")
            )
            .0,
            200
        );
    }

    /// Issue 8: health follows the media workers: 503 with the reason while one is down.
    #[test]
    fn health_says_when_a_media_worker_is_down() {
        let state = Arc::new(Mutex::new(EngineHealth::Healthy));
        let engine = Sick(router_rtp_capabilities(), state.clone());
        let mut control = ControlPlane::new(ControlConfig::default(), Box::new(engine));
        assert_eq!(
            get_health(&mut control),
            (200, json!({"success": true, "message": "Healthy"}))
        );
        *state.lock().unwrap() =
            EngineHealth::Degraded("media worker 1 failed (it panicked)".into());
        assert_eq!(
            get_health(&mut control),
            (
                503,
                json!({"success": false, "message": "media worker 1 failed (it panicked)"})
            )
        );
        *state.lock().unwrap() = EngineHealth::Healthy;
        assert_eq!(get_health(&mut control).0, 200);
    }
}
