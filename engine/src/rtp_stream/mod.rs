//! Per-stream RTP machinery of the SFU, sans-IO, after mediasoup's worker (`RTC::RtpStream*`
//! and helpers): sequence-number arithmetic and rewriting, the retransmission buffer that
//! answers NACKs, NACK generation towards producers, key-frame request coalescing, bit
//! rates and stream scores.
//!
//! Nothing here reads a clock or touches a socket: time is passed in as
//! [`std::time::Instant`], outputs are returned, and timers are exposed as
//! `poll_timeout()` deadlines. Every structure a remote peer can grow is bounded, and no
//! input (sequence numbers, timestamps, packet sizes) can cause a panic.
//!
//! | File | mediasoup model | Role |
//! |---|---|---|
//! | [`seq_num`] | `SeqManager::IsSeqHigherThan` | RFC 1982 comparisons, 64-bit unwrapping |
//! | [`seq_manager`] | `SeqManager<uint16_t>` | producer → consumer sequence rewriting |
//! | [`retransmission_buffer`] | `RtpRetransmissionBuffer` | sent packets kept for NACK (RFC 4585) |
//! | [`packet_store`] | (the packets it shares) | one copy of a stream's packets for every consumer's buffer |
//! | [`nack_generator`] | `NackGenerator` | loss detection, NACK scheduling |
//! | [`key_frame_requests`] | `KeyFrameRequestManager` | PLI/FIR coalescing and retry |
//! | [`rate_calculator`] | `RateCalculator` | sliding-window bit rate |
//! | [`rtp_clock`] | | RTP ticks and NTP timestamps |
//! | [`stream_score`] | `RtpStream::UpdateScore` | 0–10 stream score |

pub mod key_frame_requests;
pub mod nack_generator;
pub mod packet_store;
pub mod rate_calculator;
pub mod retransmission_buffer;
pub mod rtp_clock;
pub mod seq_manager;
pub mod seq_num;
pub mod stream_score;

pub use key_frame_requests::KeyFrameRequestManager;
pub use nack_generator::{NackGenerator, NackOutcome};
pub use packet_store::{PacketStore, StoredRef};
pub use rate_calculator::RateCalculator;
pub use retransmission_buffer::{
    Retained, RetransmissionBuffer, RetransmissionBufferConfig, RetransmissionBufferError,
    StoredPacketInfo,
};
pub use rtp_clock::{
    MediaClock, NTP_UNIX_OFFSET, SenderReportClock, ntp_add, ntp_from_unix, rtp_ticks,
};
pub use seq_manager::SeqManager;
pub use seq_num::{SeqUnwrapper, TimestampUnwrapper, seq_delta, seq_newer, seq_older, ts_newer};
pub use stream_score::{StreamScore, interval_score};
