//! mediasoup v3's RTP parameter formats and ortc rules (mediasoup `node/src/ortc.ts`,
//! `RtpParameters.ts`, `supportedRtpCapabilities.ts`), so that `mediasoup-client` accepts
//! every object the server sends and the server checks every object a client sends.

mod dtls_parameters;
mod error;
mod router_capabilities;
mod rtp_capabilities;
mod rtp_parameters;
mod values;

pub use dtls_parameters::{DtlsFingerprint, DtlsParameters, DtlsRole};
pub use error::OrtcError;
pub use router_capabilities::{
    RouterCodec, contract_media_codecs, generate_router_rtp_capabilities, router_rtp_capabilities,
};
pub use rtp_capabilities::{Direction, RtpCapabilities, RtpCodecCapability, RtpHeaderExtension};
pub use rtp_parameters::{
    RtcpParameters, RtpCodecParameters, RtpEncodingParameters, RtpHeaderExtensionParameters,
    RtpParameters, RtxParameters,
};
pub use values::{MediaKind, ParamValue, Parameters, RtcpFeedback};
