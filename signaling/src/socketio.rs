//! Socket.IO packet codec (protocol v5, and v4 for Engine.IO v3 clients), text packets only.
//!
//! A packet is `<type>[<attachments>-][<namespace>,][<ack id>][<json data>]`
//! (<https://socket.io/docs/v4/socket-io-protocol/>). The JSON data is returned as text
//! and parsed by the caller; this module only splits the envelope, so decoding never
//! allocates.

use std::fmt::Write as _;

/// Largest ack id accepted (JavaScript's safe integer range is larger; ids from real
/// clients are small counters).
pub const MAX_ACK_ID: u64 = 1 << 52;

/// Errors decoding a Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SioError {
    /// The payload was empty.
    #[error("empty socket.io packet")]
    Empty,
    /// The first character is not a packet type.
    #[error("unknown socket.io packet type {0:?}")]
    UnknownType(char),
    /// Binary events and acks need attachments, which the WebSocket text transport of
    /// this server does not carry.
    #[error("binary socket.io packets are not supported")]
    BinaryUnsupported,
    /// The ack id is not a number or is too large.
    #[error("invalid socket.io ack id")]
    BadAckId,
    /// An event or ack without data.
    #[error("socket.io packet without data")]
    MissingData,
    /// Event or ack data that is not a JSON array.
    #[error("socket.io event data is not a JSON array")]
    NotAnArray,
    /// The namespace is not terminated by a comma.
    #[error("invalid socket.io namespace")]
    BadNamespace,
}

/// One decoded Socket.IO packet; `data` is JSON text borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioPacket<'a> {
    /// `0`: connect to a namespace (v5: with optional auth data).
    Connect {
        /// Namespace, `/` by default.
        nsp: &'a str,
        /// Optional JSON payload (v5 auth object).
        data: Option<&'a str>,
    },
    /// `1`: leave a namespace.
    Disconnect {
        /// Namespace.
        nsp: &'a str,
    },
    /// `2`: an event: a JSON array `[name, ...args]`, with an ack id when the sender
    /// wants an acknowledgement.
    Event {
        /// Namespace.
        nsp: &'a str,
        /// Ack id.
        id: Option<u64>,
        /// JSON array text.
        data: &'a str,
    },
    /// `3`: the acknowledgement of an event: a JSON array of arguments.
    Ack {
        /// Namespace.
        nsp: &'a str,
        /// The acknowledged event's id.
        id: u64,
        /// JSON array text.
        data: &'a str,
    },
    /// `4`: connect error (v5) or error (v4).
    ConnectError {
        /// Namespace.
        nsp: &'a str,
        /// JSON data.
        data: &'a str,
    },
}

impl<'a> SioPacket<'a> {
    /// Decodes a Socket.IO payload (the data of an Engine.IO message packet).
    pub fn decode(payload: &'a str) -> Result<Self, SioError> {
        let mut chars = payload.chars();
        let kind = chars.next().ok_or(SioError::Empty)?;
        let rest = chars.as_str();
        match kind {
            '0'..='4' => {}
            '5' | '6' => return Err(SioError::BinaryUnsupported),
            other => return Err(SioError::UnknownType(other)),
        }
        let (nsp, rest) = if rest.starts_with('/') {
            let comma = rest.find(',');
            match comma {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                // A namespace alone ("0/admin") is valid for connect/disconnect.
                None if rest.bytes().all(|b| b != b'[' && b != b'{') => (rest, ""),
                None => return Err(SioError::BadNamespace),
            }
        } else {
            ("/", rest)
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits == 0 {
            None
        } else {
            if digits > 16 {
                return Err(SioError::BadAckId);
            }
            let id: u64 = rest[..digits].parse().map_err(|_| SioError::BadAckId)?;
            if id > MAX_ACK_ID {
                return Err(SioError::BadAckId);
            }
            Some(id)
        };
        let data = &rest[digits..];
        Ok(match kind {
            '0' => Self::Connect {
                nsp,
                data: (!data.is_empty()).then_some(data),
            },
            '1' => Self::Disconnect { nsp },
            '2' => {
                check_array(data)?;
                Self::Event { nsp, id, data }
            }
            '3' => {
                let id = id.ok_or(SioError::BadAckId)?;
                check_array(data)?;
                Self::Ack { nsp, id, data }
            }
            _ => Self::ConnectError { nsp, data },
        })
    }
}

/// Event and ack data is a JSON array; only its first character is checked here.
fn check_array(data: &str) -> Result<(), SioError> {
    match data.as_bytes().first() {
        None => Err(SioError::MissingData),
        Some(b'[') => Ok(()),
        Some(_) => Err(SioError::NotAnArray),
    }
}

fn write_head(out: &mut String, kind: char, nsp: &str, id: Option<u64>) {
    out.push(kind);
    if nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
}

/// Appends a connect packet (`0`, with `data` JSON when given).
pub fn write_connect(out: &mut String, nsp: &str, data: Option<&str>) {
    write_head(out, '0', nsp, None);
    if let Some(d) = data {
        out.push_str(d);
    }
}

/// Appends a disconnect packet (`1`).
pub fn write_disconnect(out: &mut String, nsp: &str) {
    write_head(out, '1', nsp, None);
}

/// Appends an event packet (`2`) whose data is the JSON array text `args`.
pub fn write_event(out: &mut String, nsp: &str, id: Option<u64>, args: &str) {
    write_head(out, '2', nsp, id);
    out.push_str(args);
}

/// Appends an ack packet (`3`) whose data is the JSON array text `args`.
pub fn write_ack(out: &mut String, nsp: &str, id: u64, args: &str) {
    write_head(out, '3', nsp, Some(id));
    out.push_str(args);
}

/// Appends a connect error (`4`); `data` is JSON text (v5: `{"message":..}`; v4: a string).
pub fn write_connect_error(out: &mut String, nsp: &str, data: &str) {
    write_head(out, '4', nsp, None);
    out.push_str(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_connect() {
        assert_eq!(
            SioPacket::decode("0"),
            Ok(SioPacket::Connect {
                nsp: "/",
                data: None
            })
        );
        assert_eq!(
            SioPacket::decode("0{\"token\":1}"),
            Ok(SioPacket::Connect {
                nsp: "/",
                data: Some("{\"token\":1}")
            })
        );
        assert_eq!(
            SioPacket::decode("0/admin,"),
            Ok(SioPacket::Connect {
                nsp: "/admin",
                data: None
            })
        );
        assert_eq!(
            SioPacket::decode("0/admin"),
            Ok(SioPacket::Connect {
                nsp: "/admin",
                data: None
            })
        );
    }

    #[test]
    fn decodes_events_and_acks() {
        assert_eq!(
            SioPacket::decode("2[\"request\",{}]"),
            Ok(SioPacket::Event {
                nsp: "/",
                id: None,
                data: "[\"request\",{}]"
            })
        );
        assert_eq!(
            SioPacket::decode("212[\"request\",{}]"),
            Ok(SioPacket::Event {
                nsp: "/",
                id: Some(12),
                data: "[\"request\",{}]"
            })
        );
        assert_eq!(
            SioPacket::decode("2/x,3[\"a\"]"),
            Ok(SioPacket::Event {
                nsp: "/x",
                id: Some(3),
                data: "[\"a\"]"
            })
        );
        assert_eq!(
            SioPacket::decode("37[null]"),
            Ok(SioPacket::Ack {
                nsp: "/",
                id: 7,
                data: "[null]"
            })
        );
        assert_eq!(
            SioPacket::decode("1"),
            Ok(SioPacket::Disconnect { nsp: "/" })
        );
    }

    #[test]
    fn rejects_hostile_payloads() {
        assert_eq!(SioPacket::decode(""), Err(SioError::Empty));
        assert_eq!(SioPacket::decode("x"), Err(SioError::UnknownType('x')));
        assert_eq!(
            SioPacket::decode("51-[\"a\",{\"_placeholder\":true,\"num\":0}]"),
            Err(SioError::BinaryUnsupported)
        );
        assert_eq!(SioPacket::decode("2"), Err(SioError::MissingData));
        assert_eq!(SioPacket::decode("3[1]"), Err(SioError::BadAckId));
        assert_eq!(SioPacket::decode("37"), Err(SioError::MissingData));
        assert_eq!(
            SioPacket::decode("299999999999999999999[1]"),
            Err(SioError::BadAckId)
        );
        assert_eq!(
            SioPacket::decode("2/nsp[\"a\"]"),
            Err(SioError::BadNamespace)
        );
        // Found by the fuzzer: an explicit default namespace and data that is no array.
        assert_eq!(SioPacket::decode("2/,/"), Err(SioError::NotAnArray));
        assert_eq!(SioPacket::decode("2{}"), Err(SioError::NotAnArray));
    }

    #[test]
    fn encodes() {
        let mut s = String::new();
        write_event(&mut s, "/", Some(4), "[\"request\",{}]");
        assert_eq!(s, "24[\"request\",{}]");
        s.clear();
        write_ack(&mut s, "/", 4, "[null,{}]");
        assert_eq!(s, "34[null,{}]");
        s.clear();
        write_connect(&mut s, "/", Some("{\"sid\":\"a\"}"));
        assert_eq!(s, "0{\"sid\":\"a\"}");
        s.clear();
        write_connect_error(&mut s, "/x", "{\"message\":\"no\"}");
        assert_eq!(s, "4/x,{\"message\":\"no\"}");
        s.clear();
        write_disconnect(&mut s, "/");
        assert_eq!(s, "1");
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut s = String::new();
        write_event(&mut s, "/", Some(99), "[\"x\",1]");
        assert_eq!(
            SioPacket::decode(&s),
            Ok(SioPacket::Event {
                nsp: "/",
                id: Some(99),
                data: "[\"x\",1]"
            })
        );
    }
}
