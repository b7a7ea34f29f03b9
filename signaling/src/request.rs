//! Client requests of contract section 5, parsed from `{method, data}` into typed values.
//!
//! Every field is checked here, at the edge, so the room logic only sees well-formed
//! requests; a wrong type gets a failure ack naming the field. This module is the
//! `request_data` fuzz target.

use std::net::IpAddr;

use kolabmeet_media_types::ortc::{DtlsParameters, MediaKind, RtpCapabilities, RtpParameters};
use kolabmeet_media_types::{ConsumerId, PeerId, ProducerId, TransportId};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::RequestError;
use crate::roles::Role;

/// Longest nickname accepted, in characters.
pub const MAX_NICKNAME_CHARS: usize = 256;
/// Longest chat message accepted, in characters.
pub const MAX_CHAT_CHARS: usize = 4096;
/// Longest join request id accepted, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 256;

/// What a producer sends (`appData.source`).
pub use kolabmeet_media_types::media_engine::ProducerSource as Source;

/// A parsed client request.
#[derive(Debug, Clone)]
pub enum Request {
    /// `ping`.
    Ping,
    /// `dumpStats`.
    DumpStats,
    /// `getRouterRtpCapabilities`.
    GetRouterRtpCapabilities,
    /// `join`.
    Join {
        /// New nickname, if given.
        nickname: Option<String>,
        /// The device's capabilities, if given.
        rtp_capabilities: Option<Box<RtpCapabilities>>,
    },
    /// `createWebRtcTransport`.
    CreateWebRtcTransport {
        /// Only TCP candidates.
        force_tcp: bool,
        /// For sending.
        producing: bool,
        /// For receiving.
        consuming: bool,
    },
    /// `connectWebRtcTransport`.
    ConnectWebRtcTransport {
        /// The transport.
        transport: TransportId,
        /// Client DTLS parameters.
        dtls_parameters: Box<DtlsParameters>,
    },
    /// `restartIce`.
    RestartIce {
        /// The transport.
        transport: TransportId,
    },
    /// `createPlainTransport`.
    CreatePlainTransport {
        /// For sending.
        producing: bool,
        /// For receiving.
        consuming: bool,
    },
    /// `connectPlainTransport`.
    ConnectPlainTransport {
        /// The transport.
        transport: TransportId,
        /// Remote address.
        ip: IpAddr,
        /// Remote RTP port.
        port: u16,
        /// Remote RTCP port.
        rtcp_port: u16,
    },
    /// `produce`.
    Produce {
        /// The sending transport.
        transport: TransportId,
        /// Audio or video.
        kind: MediaKind,
        /// The sender's parameters.
        rtp_parameters: Box<RtpParameters>,
        /// `appData.source`.
        source: Source,
        /// The whole `appData`, echoed to consumers.
        app_data: Value,
    },
    /// `closeProducer`.
    CloseProducer(ProducerId),
    /// `pauseProducer`.
    PauseProducer(ProducerId),
    /// `resumeProducer`.
    ResumeProducer(ProducerId),
    /// `pauseConsumer`.
    PauseConsumer(ConsumerId),
    /// `resumeConsumer`.
    ResumeConsumer(ConsumerId),
    /// `changeNickname`.
    ChangeNickname(String),
    /// `raisedHand`.
    RaisedHand(bool),
    /// `chatMessage`.
    ChatMessage(String),
    /// `moderator:addRole`.
    AddRole {
        /// Target.
        peer: PeerId,
        /// Bits to add.
        role: Role,
    },
    /// `moderator:removeRole`.
    RemoveRole {
        /// Target.
        peer: PeerId,
        /// Bits to remove.
        role: Role,
    },
    /// `moderator:changeLanguage`.
    ChangeLanguage {
        /// Target.
        peer: PeerId,
        /// Two lowercase letters, or none.
        language: Option<String>,
    },
    /// `moderator:joinRequestAccept`.
    JoinRequestAccept(String),
    /// `moderator:joinRequestDeny`.
    JoinRequestDeny(String),
    /// `moderator:kickPeer`.
    KickPeer(PeerId),
    /// `moderator:closeRoom`.
    CloseRoom,
}

impl Request {
    /// Whether the request may be made before `join` (contract section 5: transports may
    /// be created before joining).
    pub fn allowed_before_join(&self) -> bool {
        matches!(
            self,
            Request::Ping
                | Request::DumpStats
                | Request::GetRouterRtpCapabilities
                | Request::Join { .. }
                | Request::CreateWebRtcTransport { .. }
                | Request::ConnectWebRtcTransport { .. }
                | Request::RestartIce { .. }
                | Request::CreatePlainTransport { .. }
                | Request::ConnectPlainTransport { .. }
        )
    }

    /// The method name, for logs and error messages.
    pub fn method(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::DumpStats => "dumpStats",
            Request::GetRouterRtpCapabilities => "getRouterRtpCapabilities",
            Request::Join { .. } => "join",
            Request::CreateWebRtcTransport { .. } => "createWebRtcTransport",
            Request::ConnectWebRtcTransport { .. } => "connectWebRtcTransport",
            Request::RestartIce { .. } => "restartIce",
            Request::CreatePlainTransport { .. } => "createPlainTransport",
            Request::ConnectPlainTransport { .. } => "connectPlainTransport",
            Request::Produce { .. } => "produce",
            Request::CloseProducer(_) => "closeProducer",
            Request::PauseProducer(_) => "pauseProducer",
            Request::ResumeProducer(_) => "resumeProducer",
            Request::PauseConsumer(_) => "pauseConsumer",
            Request::ResumeConsumer(_) => "resumeConsumer",
            Request::ChangeNickname(_) => "changeNickname",
            Request::RaisedHand(_) => "raisedHand",
            Request::ChatMessage(_) => "chatMessage",
            Request::AddRole { .. } => "moderator:addRole",
            Request::RemoveRole { .. } => "moderator:removeRole",
            Request::ChangeLanguage { .. } => "moderator:changeLanguage",
            Request::JoinRequestAccept(_) => "moderator:joinRequestAccept",
            Request::JoinRequestDeny(_) => "moderator:joinRequestDeny",
            Request::KickPeer(_) => "moderator:kickPeer",
            Request::CloseRoom => "moderator:closeRoom",
        }
    }
}

/// Reads the arguments of a `request` event: `{method, data}`. Returns the method text
/// (for the unknown-method message) and the data (`null` when absent).
pub fn split_envelope(arg: &Value) -> Result<(&str, &Value), RequestError> {
    static NULL: Value = Value::Null;
    let obj = arg.as_object().ok_or(RequestError::Malformed(
        "request must be an object {method, data}",
    ))?;
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .ok_or(RequestError::Malformed("request.method must be a string"))?;
    Ok((method, obj.get("data").unwrap_or(&NULL)))
}

/// Field access with errors that name the method and the field.
struct Fields<'a> {
    method: &'static str,
    data: &'a Value,
}

impl<'a> Fields<'a> {
    fn new(
        method: &'static str,
        data: &'a Value,
        needs_object: bool,
    ) -> Result<Self, RequestError> {
        if needs_object && !data.is_object() {
            return Err(RequestError::InvalidField {
                method,
                field: "data",
                problem: "must be an object".into(),
            });
        }
        Ok(Self { method, data })
    }

    fn err(&self, field: &'static str, problem: impl Into<String>) -> RequestError {
        RequestError::InvalidField {
            method: self.method,
            field,
            problem: problem.into(),
        }
    }

    fn get(&self, field: &'static str) -> Option<&'a Value> {
        self.data.get(field).filter(|v| !v.is_null())
    }

    fn required(&self, field: &'static str) -> Result<&'a Value, RequestError> {
        self.get(field)
            .ok_or_else(|| self.err(field, "is required"))
    }

    fn flag(&self, field: &'static str) -> Result<bool, RequestError> {
        match self.get(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err(field, "must be a boolean")),
        }
    }

    fn bool_required(&self, field: &'static str) -> Result<bool, RequestError> {
        self.required(field)?
            .as_bool()
            .ok_or_else(|| self.err(field, "must be a boolean"))
    }

    fn string(&self, field: &'static str, max_chars: usize) -> Result<String, RequestError> {
        let s = self
            .required(field)?
            .as_str()
            .ok_or_else(|| self.err(field, "must be a string"))?;
        if s.chars().count() > max_chars {
            return Err(self.err(field, format!("must be at most {max_chars} characters")));
        }
        Ok(s.to_owned())
    }

    fn id<T: std::str::FromStr>(&self, field: &'static str) -> Result<T, RequestError> {
        self.required(field)?
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.err(field, "must be an id (a UUID string)"))
    }

    fn parsed<T: DeserializeOwned>(&self, field: &'static str) -> Result<T, RequestError> {
        T::deserialize(self.required(field)?).map_err(|e| self.err(field, e.to_string()))
    }

    fn role(&self, field: &'static str) -> Result<Role, RequestError> {
        let role = self
            .required(field)?
            .as_u64()
            .and_then(Role::from_bits)
            .ok_or_else(|| self.err(field, "must be a combination of known role bits (1-31)"))?;
        if role.is_empty() {
            return Err(self.err(field, "must name at least one role bit"));
        }
        Ok(role)
    }

    fn port(&self, field: &'static str) -> Result<u16, RequestError> {
        self.required(field)?
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| self.err(field, "must be a port number (1-65535)"))
    }
}

/// True for `^[a-z]{2}$`.
fn is_language_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase())
}

/// Parses one request. `method` is the client's text, `data` its data.
pub fn parse_request(method: &str, data: &Value) -> Result<Request, RequestError> {
    Ok(match method {
        "ping" => Request::Ping,
        "dumpStats" => Request::DumpStats,
        "getRouterRtpCapabilities" => Request::GetRouterRtpCapabilities,
        "join" => {
            let f = Fields::new("join", data, false)?;
            if !(data.is_object() || data.is_null()) {
                return Err(f.err("data", "must be an object"));
            }
            let nickname = match f.get("nickname") {
                None | Some(Value::Bool(false)) => None,
                Some(_) => Some(f.string("nickname", MAX_NICKNAME_CHARS)?),
            };
            let rtp_capabilities = match f.get("rtpCapabilities") {
                None => None,
                Some(_) => {
                    let caps: RtpCapabilities = f.parsed("rtpCapabilities")?;
                    caps.validate()
                        .map_err(|e| f.err("rtpCapabilities", e.to_string()))?;
                    Some(Box::new(caps))
                }
            };
            Request::Join {
                nickname,
                rtp_capabilities,
            }
        }
        "createWebRtcTransport" => {
            let f = Fields::new("createWebRtcTransport", data, false)?;
            if !(data.is_object() || data.is_null()) {
                return Err(f.err("data", "must be an object"));
            }
            Request::CreateWebRtcTransport {
                force_tcp: f.flag("forceTcp")?,
                producing: f.flag("producing")?,
                consuming: f.flag("consuming")?,
            }
        }
        "connectWebRtcTransport" => {
            let f = Fields::new("connectWebRtcTransport", data, true)?;
            let transport = f.id("transportId")?;
            let dtls: DtlsParameters = f.parsed("dtlsParameters")?;
            dtls.validate()
                .map_err(|e| f.err("dtlsParameters", e.to_string()))?;
            Request::ConnectWebRtcTransport {
                transport,
                dtls_parameters: Box::new(dtls),
            }
        }
        "restartIce" => {
            let f = Fields::new("restartIce", data, true)?;
            Request::RestartIce {
                transport: f.id("transportId")?,
            }
        }
        "createPlainTransport" => {
            let f = Fields::new("createPlainTransport", data, false)?;
            if !(data.is_object() || data.is_null()) {
                return Err(f.err("data", "must be an object"));
            }
            Request::CreatePlainTransport {
                producing: f.flag("producing")?,
                consuming: f.flag("consuming")?,
            }
        }
        "connectPlainTransport" => {
            let f = Fields::new("connectPlainTransport", data, true)?;
            Request::ConnectPlainTransport {
                transport: f.id("transportId")?,
                ip: f
                    .required("ip")?
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| f.err("ip", "must be an IP address"))?,
                port: f.port("port")?,
                rtcp_port: f.port("rtcpPort")?,
            }
        }
        "produce" => {
            let f = Fields::new("produce", data, true)?;
            let transport = f.id("transportId")?;
            let kind = f.parsed("kind")?;
            let rtp_parameters: RtpParameters = f.parsed("rtpParameters")?;
            rtp_parameters
                .validate()
                .map_err(|e| f.err("rtpParameters", e.to_string()))?;
            let rtp_parameters = Box::new(rtp_parameters);
            let app_data = f.required("appData")?;
            if !app_data.is_object() {
                return Err(f.err("appData", "must be an object"));
            }
            let source = match app_data.get("source").and_then(Value::as_str) {
                Some("mic") => Source::Mic,
                Some("webcam") => Source::Webcam,
                Some("screen") => Source::Screen,
                _ => {
                    return Err(f.err(
                        "appData.source",
                        "must be \"mic\", \"webcam\" or \"screen\"",
                    ));
                }
            };
            Request::Produce {
                transport,
                kind,
                rtp_parameters,
                source,
                app_data: app_data.clone(),
            }
        }
        "closeProducer" => {
            Request::CloseProducer(Fields::new("closeProducer", data, true)?.id("producerId")?)
        }
        "pauseProducer" => {
            Request::PauseProducer(Fields::new("pauseProducer", data, true)?.id("producerId")?)
        }
        "resumeProducer" => {
            Request::ResumeProducer(Fields::new("resumeProducer", data, true)?.id("producerId")?)
        }
        "pauseConsumer" => {
            Request::PauseConsumer(Fields::new("pauseConsumer", data, true)?.id("consumerId")?)
        }
        "resumeConsumer" => {
            Request::ResumeConsumer(Fields::new("resumeConsumer", data, true)?.id("consumerId")?)
        }
        "changeNickname" => Request::ChangeNickname(
            Fields::new("changeNickname", data, true)?.string("nickname", MAX_NICKNAME_CHARS)?,
        ),
        "raisedHand" => {
            Request::RaisedHand(Fields::new("raisedHand", data, true)?.bool_required("raisedHand")?)
        }
        "chatMessage" => Request::ChatMessage(
            Fields::new("chatMessage", data, true)?.string("message", MAX_CHAT_CHARS)?,
        ),
        "moderator:addRole" | "moderator:removeRole" => {
            let name = if method == "moderator:addRole" {
                "moderator:addRole"
            } else {
                "moderator:removeRole"
            };
            let f = Fields::new(name, data, true)?;
            let peer = f.id("peerId")?;
            let role = f.role("role")?;
            if name == "moderator:addRole" {
                Request::AddRole { peer, role }
            } else {
                Request::RemoveRole { peer, role }
            }
        }
        "moderator:changeLanguage" => {
            let f = Fields::new("moderator:changeLanguage", data, true)?;
            let peer = f.id("peerId")?;
            let language = match f.get("language") {
                None => None,
                Some(Value::String(s)) if is_language_code(s) => Some(s.clone()),
                Some(_) => return Err(f.err("language", "must match ^[a-z]{2}$ or be null")),
            };
            Request::ChangeLanguage { peer, language }
        }
        "moderator:joinRequestAccept" | "moderator:joinRequestDeny" => {
            let name = if method == "moderator:joinRequestAccept" {
                "moderator:joinRequestAccept"
            } else {
                "moderator:joinRequestDeny"
            };
            let f = Fields::new(name, data, true)?;
            let id = match f.required("requestId")? {
                Value::String(s) if !s.is_empty() && s.len() <= MAX_REQUEST_ID_LEN => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(f.err("requestId", "must be a non-empty string")),
            };
            if name == "moderator:joinRequestAccept" {
                Request::JoinRequestAccept(id)
            } else {
                Request::JoinRequestDeny(id)
            }
        }
        "moderator:kickPeer" => {
            Request::KickPeer(Fields::new("moderator:kickPeer", data, true)?.id("peerId")?)
        }
        "moderator:closeRoom" => Request::CloseRoom,
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(RequestError::UnknownMethod(shown));
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(method: &str, data: Value) -> Result<Request, RequestError> {
        parse_request(method, &data)
    }

    #[test]
    fn envelope() {
        let v = json!({"method": "ping"});
        let (m, d) = split_envelope(&v).unwrap();
        assert_eq!(m, "ping");
        assert!(d.is_null());
        assert!(split_envelope(&json!("ping")).is_err());
        assert!(split_envelope(&json!({"method": 3})).is_err());
    }

    #[test]
    fn unknown_method_message() {
        let e = parse("fly", json!({})).unwrap_err();
        assert_eq!(e.to_string(), "unknown request.method \"fly\"");
        let long = "x".repeat(10_000);
        assert!(parse(&long, json!({})).unwrap_err().to_string().len() < 100);
    }

    #[test]
    fn join_fields() {
        match parse("join", json!({"nickname": "Ann"})).unwrap() {
            Request::Join { nickname, .. } => assert_eq!(nickname.as_deref(), Some("Ann")),
            _ => unreachable!(),
        }
        assert!(parse("join", json!({"nickname": 5})).is_err());
        assert!(parse("join", json!({"nickname": "x".repeat(257)})).is_err());
        assert!(parse("join", json!("x")).is_err());
        assert!(parse("join", json!({"rtpCapabilities": 5})).is_err());
        assert!(parse("join", Value::Null).is_ok());
    }

    #[test]
    fn transport_requests() {
        assert!(matches!(
            parse(
                "createWebRtcTransport",
                json!({"forceTcp": true, "producing": true})
            )
            .unwrap(),
            Request::CreateWebRtcTransport {
                force_tcp: true,
                producing: true,
                consuming: false
            }
        ));
        let e = parse("createWebRtcTransport", json!({"forceTcp": "yes"})).unwrap_err();
        assert!(e.to_string().contains("forceTcp"), "{e}");
        let e = parse("restartIce", json!({"transportId": 12})).unwrap_err();
        assert!(e.to_string().contains("transportId"), "{e}");
        assert!(parse("restartIce", json!({})).is_err());
        assert!(parse("restartIce", json!(null)).is_err());
        let tid = TransportId::random().to_string();
        assert!(parse("restartIce", json!({"transportId": tid})).is_ok());
        let e = parse(
            "connectPlainTransport",
            json!({"transportId": tid, "ip": "1.2.3.4", "port": 70000, "rtcpPort": 5}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        let e = parse(
            "connectPlainTransport",
            json!({"transportId": tid, "ip": "not-ip", "port": 7, "rtcpPort": 5}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("ip"), "{e}");
    }

    #[test]
    fn produce_source() {
        let tid = TransportId::random().to_string();
        let e = parse(
            "produce",
            json!({"transportId": tid, "kind": "video", "rtpParameters": {"codecs": []}, "appData": {"source": "tv"}}),
        )
        .unwrap_err();
        assert_eq!(e.code(), 400);
        let e = parse(
            "produce",
            json!({"transportId": tid, "kind": "smell", "rtpParameters": {"codecs": []}, "appData": {"source": "mic"}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
    }

    #[test]
    fn moderator_requests() {
        let pid = PeerId::random().to_string();
        assert!(matches!(
            parse("moderator:addRole", json!({"peerId": pid, "role": 2})).unwrap(),
            Request::AddRole {
                role: Role::PUBLISHER,
                ..
            }
        ));
        assert!(parse("moderator:addRole", json!({"peerId": pid, "role": 64})).is_err());
        assert!(parse("moderator:addRole", json!({"peerId": pid, "role": 0})).is_err());
        assert!(parse("moderator:addRole", json!({"peerId": pid, "role": -1})).is_err());
        assert!(parse("moderator:addRole", json!({"peerId": pid, "role": "2"})).is_err());
        assert!(
            parse(
                "moderator:changeLanguage",
                json!({"peerId": pid, "language": "de"})
            )
            .is_ok()
        );
        assert!(
            parse(
                "moderator:changeLanguage",
                json!({"peerId": pid, "language": null})
            )
            .is_ok()
        );
        assert!(
            parse(
                "moderator:changeLanguage",
                json!({"peerId": pid, "language": "DE"})
            )
            .is_err()
        );
        assert!(
            parse(
                "moderator:changeLanguage",
                json!({"peerId": pid, "language": "deu"})
            )
            .is_err()
        );
        assert!(parse("moderator:joinRequestAccept", json!({"requestId": ""})).is_err());
        assert!(parse("moderator:joinRequestAccept", json!({"requestId": "r1"})).is_ok());
        assert!(parse("moderator:kickPeer", json!({"peerId": "nope"})).is_err());
    }

    #[test]
    fn chat_and_hand() {
        assert!(parse("chatMessage", json!({"message": "hi"})).is_ok());
        assert!(parse("chatMessage", json!({"message": "x".repeat(4097)})).is_err());
        assert!(parse("chatMessage", json!({"message": ["hi"]})).is_err());
        assert!(parse("raisedHand", json!({"raisedHand": 1})).is_err());
        assert!(matches!(
            parse("raisedHand", json!({"raisedHand": true})).unwrap(),
            Request::RaisedHand(true)
        ));
    }

    #[test]
    fn before_join_rules() {
        assert!(
            parse("createWebRtcTransport", json!({}))
                .unwrap()
                .allowed_before_join()
        );
        assert!(
            !parse("chatMessage", json!({"message": "x"}))
                .unwrap()
                .allowed_before_join()
        );
    }
}
