//! Sans-IO HTTP/1.1 pieces (RFC 9112): the request head (through `httparse`), the
//! chunked body decoder and response serialisation. The `http_request` fuzz target drives
//! [`parse_request_head`] and [`ChunkedDecoder`].

use std::fmt::Write as _;

/// Bounds of a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Bytes of request line plus headers.
    pub max_head_bytes: usize,
    /// Number of headers.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method.
    pub method: String,
    /// Request-target.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body framing.
    pub body: BodyKind,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// `Sec-WebSocket-Key` of a valid WebSocket upgrade request (RFC 6455 §4.2.1).
    pub websocket_key: Option<String>,
}

/// Why a head is refused; each maps to a status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpParseError {
    /// Not HTTP (400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Head too large or too many headers (431).
    #[error("request header fields too large")]
    HeadTooLarge,
    /// Unsupported `Transfer-Encoding` (501).
    #[error("unsupported transfer-encoding")]
    UnsupportedEncoding,
    /// Invalid chunked body (400).
    #[error("malformed chunked body")]
    BadChunk,
}

impl HttpParseError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::BadChunk => 400,
            Self::HeadTooLarge => 431,
            Self::UnsupportedEncoding => 501,
        }
    }
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &'static str,
) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses a request head from the start of `buf`. `Ok(None)`: not complete yet;
/// `Ok(Some((head, n)))`: the head used `n` bytes.
pub fn parse_request_head(
    buf: &[u8],
    limits: HeadLimits,
) -> Result<Option<(RequestHead, usize)>, HttpParseError> {
    let mut storage = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut storage);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                return Err(HttpParseError::HeadTooLarge);
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpParseError::HeadTooLarge),
        Err(e) => return Err(HttpParseError::Malformed(e.to_string())),
    };
    if n > limits.max_head_bytes {
        return Err(HttpParseError::HeadTooLarge);
    }
    let method = req.method.unwrap_or("").to_owned();
    let target = req.path.unwrap_or("").to_owned();
    let minor_version = req.version.unwrap_or(1);
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpParseError::Malformed("header value is not UTF-8".into()))?;
        headers.push((h.name.to_owned(), value.trim().to_owned()));
    }
    let get = |name: &'static str| header_values(&headers, name);
    let mut body = BodyKind::None;
    let te: Vec<&str> = get("transfer-encoding").collect();
    if !te.is_empty() {
        let joined = te.join(",");
        if joined.trim().eq_ignore_ascii_case("chunked") {
            body = BodyKind::Chunked;
        } else {
            return Err(HttpParseError::UnsupportedEncoding);
        }
    }
    let lengths: Vec<&str> = get("content-length").collect();
    if !lengths.is_empty() {
        if body == BodyKind::Chunked {
            return Err(HttpParseError::Malformed(
                "both Content-Length and Transfer-Encoding".into(),
            ));
        }
        let first = lengths[0];
        if lengths.iter().any(|l| *l != first) {
            return Err(HttpParseError::Malformed(
                "conflicting Content-Length".into(),
            ));
        }
        let len: u64 = first
            .parse()
            .map_err(|_| HttpParseError::Malformed("invalid Content-Length".into()))?;
        if len > 0 {
            body = BodyKind::Length(len);
        }
    }
    let connection = get("connection").collect::<Vec<_>>().join(",");
    let keep_alive = if minor_version == 0 {
        has_token(&connection, "keep-alive")
    } else {
        !has_token(&connection, "close")
    };
    let expect_continue = get("expect").any(|v| v.eq_ignore_ascii_case("100-continue"));
    let websocket_key = if method == "GET"
        && get("upgrade").any(|v| has_token(v, "websocket"))
        && has_token(&connection, "upgrade")
        && get("sec-websocket-version").any(|v| v == "13")
    {
        get("sec-websocket-key")
            .next()
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
    } else {
        None
    };
    Ok(Some((
        RequestHead {
            method,
            target,
            minor_version,
            headers,
            body,
            expect_continue,
            keep_alive,
            websocket_key,
        },
        n,
    )))
}

/// Incremental decoder of a chunked body (RFC 9112 §7.1); trailers are skipped.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    /// Bytes left in the current chunk's data.
    remaining: u64,
    /// Expecting the CRLF after a chunk's data.
    need_crlf: bool,
    /// The last chunk was seen; reading trailers.
    in_trailers: bool,
}

/// Progress of [`ChunkedDecoder::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkProgress {
    /// Needs more input; `consumed` bytes were used.
    More {
        /// Bytes of input used.
        consumed: usize,
    },
    /// The body is complete; `consumed` bytes were used.
    Done {
        /// Bytes of input used.
        consumed: usize,
    },
}

impl ChunkedDecoder {
    /// Decodes from `input`, appending data to `body`, never beyond `max_body` bytes.
    pub fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        max_body: usize,
    ) -> Result<ChunkProgress, HttpParseError> {
        let mut pos = 0;
        loop {
            if self.remaining > 0 {
                let avail = input.len() - pos;
                if avail == 0 {
                    return Ok(ChunkProgress::More { consumed: pos });
                }
                let take = (self.remaining as usize).min(avail);
                if body.len() + take > max_body {
                    return Err(HttpParseError::HeadTooLarge);
                }
                body.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.need_crlf = true;
                }
                continue;
            }
            if self.need_crlf {
                if input.len() - pos < 2 {
                    return Ok(ChunkProgress::More { consumed: pos });
                }
                if &input[pos..pos + 2] != b"\r\n" {
                    return Err(HttpParseError::BadChunk);
                }
                pos += 2;
                self.need_crlf = false;
                continue;
            }
            if self.in_trailers {
                // Trailer lines until an empty line.
                let Some(end) = input[pos..].windows(2).position(|w| w == b"\r\n") else {
                    if input.len() - pos > 8192 {
                        return Err(HttpParseError::BadChunk);
                    }
                    return Ok(ChunkProgress::More { consumed: pos });
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(ChunkProgress::Done { consumed: pos });
                }
                continue;
            }
            match httparse::parse_chunk_size(&input[pos..]) {
                Ok(httparse::Status::Complete((used, size))) => {
                    pos += used;
                    if size == 0 {
                        self.in_trailers = true;
                    } else {
                        if size > max_body as u64 {
                            return Err(HttpParseError::HeadTooLarge);
                        }
                        self.remaining = size;
                    }
                }
                Ok(httparse::Status::Partial) => {
                    if input.len() - pos > 1024 {
                        return Err(HttpParseError::BadChunk);
                    }
                    return Ok(ChunkProgress::More { consumed: pos });
                }
                Err(_) => return Err(HttpParseError::BadChunk),
            }
        }
    }
}

/// The reason phrase of common status codes.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Serialises a response head and body into `out`.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) {
    let mut head = String::with_capacity(128);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        // Header injection is impossible from here on: values come from the server, but
        // strip CR/LF anyway.
        let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        let _ = write!(head, "{k}: {v}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n", body.len());
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(RequestHead, usize)>, HttpParseError> {
        parse_request_head(s.as_bytes(), HeadLimits::default())
    }

    #[test]
    fn simple_get() {
        let (h, n) = parse("GET /ping HTTP/1.1\r\nHost: x\r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(n, 31);
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/ping");
        assert!(h.keep_alive);
        assert_eq!(h.body, BodyKind::None);
        assert!(h.websocket_key.is_none());
    }

    #[test]
    fn partial_and_limits() {
        assert_eq!(parse("GET /ping HTTP/1.1\r\nHost"), Ok(None));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert_eq!(parse(&big), Err(HttpParseError::HeadTooLarge));
        let many: String = (0..100).map(|i| format!("X{i}: y\r\n")).collect();
        assert_eq!(
            parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            Err(HttpParseError::HeadTooLarge)
        );
        assert!(matches!(
            parse("\x00\x01\x02 garbage\r\n\r\n"),
            Err(HttpParseError::Malformed(_))
        ));
    }

    #[test]
    fn bodies() {
        let (h, _) = parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyKind::Length(5));
        let (h, _) = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyKind::Chunked);
        assert_eq!(
            parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(HttpParseError::UnsupportedEncoding)
        );
        assert!(
            parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").is_err()
        );
        assert!(parse("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(
            parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
                .is_err()
        );
    }

    #[test]
    fn connection_semantics() {
        let (h, _) = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let (h, _) = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let (h, _) = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let (h, _) = parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.expect_continue);
    }

    #[test]
    fn websocket_upgrade() {
        let req = "GET /meetmedia/signaling/?EIO=4 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let (h, _) = parse(req).unwrap().unwrap();
        assert_eq!(h.websocket_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        let wrong_version = req.replace("Version: 13", "Version: 8");
        assert!(
            parse(&wrong_version)
                .unwrap()
                .unwrap()
                .0
                .websocket_key
                .is_none()
        );
    }

    #[test]
    fn chunked_decoding() {
        let mut d = ChunkedDecoder::default();
        let mut body = Vec::new();
        let input = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        // Byte by byte, to exercise every partial state.
        let mut pos = 0;
        let mut fed = 0;
        loop {
            fed = (fed + 1).min(input.len());
            match d.decode(&input[pos..fed], &mut body, 100).unwrap() {
                ChunkProgress::More { consumed } => pos += consumed,
                ChunkProgress::Done { consumed } => {
                    pos += consumed;
                    break;
                }
            }
        }
        assert_eq!(body, b"hello world");
        assert_eq!(&input[pos..], b"NEXT");
    }

    #[test]
    fn chunked_limits_and_garbage() {
        let mut body = Vec::new();
        assert!(
            ChunkedDecoder::default()
                .decode(b"ffffffff\r\n", &mut body, 100)
                .is_err()
        );
        assert!(
            ChunkedDecoder::default()
                .decode(b"zz\r\n", &mut body, 100)
                .is_err()
        );
        assert!(
            ChunkedDecoder::default()
                .decode(b"3\r\nabcXX", &mut body, 100)
                .is_err()
        );
    }

    #[test]
    fn response_format() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            200,
            &[("X-A".into(), "b\r\nInjected: 1".into())],
            b"PONG",
            true,
            false,
        );
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nX-A: bInjected: 1\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\nPONG"
        );
    }
}
