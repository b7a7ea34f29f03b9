//! The two-party call most sender-receiver tests start from: one browser producing,
//! another consuming it, in a [`Sim`].

use kolabmeet_engine::ortc::{MediaKind, RtpParameters};
use kolabmeet_engine::{PeerId, ProducerId, RoomId, TransportId};
use serde_json::Value;

use crate::sim::Sim;

/// The sender's browser port.
pub const SENDER: u16 = 5000;
/// The receiver's browser port.
pub const RECEIVER: u16 = 6000;

/// A call in memory: a sender (browser at [`SENDER`]) producing, a receiver
/// ([`RECEIVER`]) consuming it, in a room of their own.
pub struct Call {
    /// The simulation.
    pub sim: Sim,
    /// The room.
    pub room: RoomId,
    /// The sending peer and its transport.
    pub sender: (PeerId, TransportId),
    /// The receiving peer and its transport.
    pub receiver: (PeerId, TransportId),
    /// The producer.
    pub producer: ProducerId,
    /// The `consume` answer.
    pub consumed: Value,
}

impl Call {
    /// The sender produces video with `params`; the receiver consumes it.
    pub fn video(params: RtpParameters) -> Self {
        Call::in_sim(Sim::new(), MediaKind::Video, params)
    }

    /// The sender produces audio with `params`; the receiver consumes it.
    pub fn audio(params: RtpParameters) -> Self {
        Call::in_sim(Sim::new(), MediaKind::Audio, params)
    }

    /// The call set up in `sim`, in a new room.
    pub fn in_sim(mut sim: Sim, kind: MediaKind, params: RtpParameters) -> Self {
        let room = sim.room();
        let sender = sim.connect_peer_at(room, SENDER);
        let receiver = sim.connect_peer_at(room, RECEIVER);
        let producer = sim
            .produce(sender.0, sender.1, kind, params)
            .expect("the sender produces");
        let consumed = sim
            .consume(receiver.0, receiver.1, producer)
            .expect("the receiver consumes");
        Call {
            sim,
            room,
            sender,
            receiver,
            producer,
            consumed: crate::setup::wire(&consumed),
        }
    }
}
