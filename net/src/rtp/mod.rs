//! RTP packets (RFC 3550 §5.1) with RFC 8285 header extensions: views over byte slices.

mod error;
pub mod extensions;
pub mod header;
pub mod packet;

pub use error::RtpError;
pub use extensions::ONE_BYTE_PROFILE;
pub use extensions::{ExtensionElement, ExtensionForm, ExtensionIter, write_extension_block};
pub use header::{MAX_INDEXED_EXTENSIONS, RtpHeader};
pub use packet::RtpPacket;
