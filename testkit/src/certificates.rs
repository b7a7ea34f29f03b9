//! DTLS certificates made once per process and shared: generating one costs milliseconds,
//! which a fuzz target running thousands of inputs a minute (or a test making many
//! simulations) should not pay every time.

use std::sync::OnceLock;

use kolabmeet_engine::crypto::DtlsCertificate;

/// A worker's certificate and the one its browsers share.
pub struct Certificates {
    /// The worker core's.
    pub server: DtlsCertificate,
    /// Every browser's.
    pub browsers: DtlsCertificate,
}

/// The process's shared certificates, generated at the first call.
pub fn certificates() -> &'static Certificates {
    static CERTS: OnceLock<Certificates> = OnceLock::new();
    CERTS.get_or_init(|| {
        let make = || DtlsCertificate::generate().expect("a DTLS certificate");
        Certificates {
            server: make(),
            browsers: make(),
        }
    })
}
