//! Routing inside a room (mediasoup's `Router`): producers receive, consumers send, and
//! every packet of a producer is written once per consumer into that consumer's buffer.
//!
//! | file | what |
//! |---|---|
//! | [`room`] | [`Router`]: the room's producers and consumers (slab arenas), their UUID index, its timers' deadlines |
//! | [`control`] | `produce`, `consume`, pause and resume, closing |
//! | [`forwarding`] | the hot path: one packet in, one packet per consumer out |
//! | [`rtcp_feedback`] | RTCP received: PLI, FIR, NACK, SR, report blocks |
//! | [`rtcp_reports`] | RTCP sent: SR, RR, NACK; scores |
//! | [`key_frames`] | PLIs towards producers, through each producer's `KeyFrameRequestManager` |
//! | [`timers`] | when the router must run next, and running it |
//! | [`egress`] | what a router writes to outside the room (lent by the worker per call) |
//! | [`producer`], [`recv_stream`], [`recv_stats`] | ingress: stream identification, router terms, reception statistics |
//! | [`consumer`], [`send_stream`] | egress: rewriting per consumer, what was sent, retransmissions |

pub mod bandwidth_allocation;
pub mod consumer;
pub mod control;
pub mod egress;
pub mod forwarding;
pub mod key_frames;
pub mod mirroring;
pub mod producer;
pub mod recent_rates;
pub mod recv_stats;
pub mod recv_stream;
pub mod report_interval;
pub mod room;
pub mod rtcp_feedback;
mod rtcp_reports;
pub mod send_stream;
pub mod stats;
pub mod timers;

pub use consumer::{Consumer, ConsumerInit, ConsumerType, Forwarded, SendContext};
pub use control::{
    ConsumeRequest, MAX_CONSUMERS_PER_TRANSPORT, MAX_PRODUCERS_PER_TRANSPORT, ProduceRequest,
};
pub use egress::{Egress, RoomTransports};
pub use producer::{Ingress, Producer, ProducerInit, RoutedPacket};
pub use recv_stats::RecvStats;
pub use recv_stream::RecvStream;
pub use report_interval::REPORT_INTERVAL;
pub use room::{Router, RouterSizes};
pub use send_stream::{ReportFigures, SendStream};
