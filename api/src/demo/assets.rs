//! The meeting page's files, built into the binary: the HTML and CSS as written in
//! `api/demo/`, and the script bundled by esbuild from `api/demo/src/` with
//! `mediasoup-client` and `socket.io-client` (`api/demo/dist/meeting.js`, committed;
//! `scripts/test-all.sh` checks that rebuilding it gives the same bytes).

/// One embedded file.
pub struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("../../demo/index.html"),
};
const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("../../demo/style.css"),
};
const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("../../demo/dist/meeting.js"),
};

/// The file served at `path`, if any.
pub fn find(path: &str) -> Option<Asset> {
    match path {
        "/" | "/index.html" => Some(INDEX),
        "/demo/style.css" => Some(STYLE),
        "/demo/meeting.js" => Some(SCRIPT),
        _ => None,
    }
}
