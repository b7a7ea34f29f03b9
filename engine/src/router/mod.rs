//! Routing inside a room (mediasoup's `Router`): producers receive, consumers send, and
//! every packet of a producer is written once per consumer into that consumer's buffer.

pub mod consumer;
pub mod producer;
pub mod recv_stats;
pub mod send_stream;

pub use consumer::{Consumer, ConsumerInit, ConsumerType, Forwarded, SendContext};
pub use producer::{Ingress, Producer, ProducerInit, RecvStream};
pub use recv_stats::RecvStats;
pub use send_stream::{ReportFigures, SendStream};
