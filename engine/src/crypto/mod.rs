//! DTLS-SRTP for WebRTC transports: certificate, DTLS 1.2 endpoint (RFC 5764), SRTP sessions.
//!
//! * [`DtlsCertificate`]: the worker's self-signed certificate and its fingerprints
//!   (`dtlsParameters.fingerprints`).
//! * [`DtlsSession`]: one transport's sans-IO DTLS association; on success it yields the
//!   negotiated [`SrtpProfile`] and both directions' [`SrtpKeyMaterial`].
//! * [`SrtpSession`]: protects and unprotects RTP and RTCP with those keys (libsrtp2).

mod certificate;
mod client_hello;
mod dtls_record;
mod dtls_session;
mod error;
mod fingerprint;
mod srtp_outbound;
mod srtp_profile;
mod srtp_session;

pub use certificate::DtlsCertificate;
pub use dtls_record::is_dtls;
pub use dtls_session::{DtlsEvent, DtlsSession, DtlsState};
pub use error::{DtlsError, SrtpError};
pub use fingerprint::{FingerprintAlgorithm, format_fingerprint, parse_fingerprint};
pub use srtp_outbound::MAX_OUTBOUND_SSRCS;
pub use srtp_profile::{SrtpKeyMaterial, SrtpProfile};
pub use srtp_session::SrtpSession;
