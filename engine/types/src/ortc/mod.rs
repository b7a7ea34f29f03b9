//! mediasoup v3's RTP parameter formats and ortc rules (mediasoup `node/src/ortc.ts`,
//! `RtpParameters.ts`, `supportedRtpCapabilities.ts`), so that `mediasoup-client` accepts
//! every object the server sends and the server checks every object a client sends.

mod codec_match;
mod consumer_parameters;
mod dtls_parameters;
mod error;
mod router_capabilities;
mod rtp_capabilities;
mod rtp_mapping;
mod rtp_parameters;
mod values;

pub use consumer_parameters::{
    ABS_SEND_TIME_URI, ScalabilityMode, TRANSPORT_CC_URI, consumer_rtp_parameters,
};
pub use dtls_parameters::{DtlsFingerprint, DtlsParameters, DtlsRole};
pub use error::OrtcError;
pub use router_capabilities::{
    RouterCodec, contract_media_codecs, generate_router_rtp_capabilities, router_rtp_capabilities,
};
pub use rtp_capabilities::{Direction, RtpCapabilities, RtpCodecCapability, RtpHeaderExtension};
pub use rtp_mapping::{
    CodecMapping, EncodingMapping, RtpMapping, can_consume, consumable_rtp_parameters,
    producer_rtp_mapping,
};
pub use rtp_parameters::{
    RtcpParameters, RtpCodecParameters, RtpEncodingParameters, RtpHeaderExtensionParameters,
    RtpParameters, RtxParameters,
};
pub use values::{MediaKind, ParamValue, Parameters, RtcpFeedback};
