//! The test kit of kolabmeet, shared by the engine's integration tests, the benches and
//! the fuzz targets: browser-like media peers and the harnesses that connect them to a
//! media worker.
//!
//! - [`Browser`]: the client end of one WebRTC transport (ICE checks, DTLS, SRTP), sans-IO.
//! - [`Sim`]: a worker core in memory with virtual time and browsers at UDP ports;
//!   [`Call`] sets up the usual sender and receiver in one.
//! - [`UdpWorker`]: a real worker thread whose browsers talk to it over sockets ([`Pipe`]);
//!   [`OpusRoom`]: an Opus call on one, for tests of faults and churn.
//! - [`SimEngine`]: a [`kolabmeet_engine::MediaEngine`] over a [`Sim`], for driving the
//!   control plane against the real core.
//! - [`setup`]: rooms, producers and consumers on either harness ([`MediaWorker`]).
//! - [`packets`], [`params`], [`PacketMaker`]: what browsers send and how they describe it.
//! - [`BindingRequest`]: ICE Binding requests, valid or not.
//! - [`certificates`]: DTLS certificates made once per process, for fast set-ups.
//! - [`process`]: this process's resident memory and descriptors (soaks, churn).
//! - [`LinkModel`]: a network path in virtual time (capacity, delay, jitter, loss);
//!   [`ShapedReceiver`]: a call's receiver behind one, sending transport-cc feedback.

pub mod browser;
pub mod call;
pub mod certificates;
pub mod link_model;
pub mod opus_room;
pub mod packet_maker;
pub mod packets;
pub mod params;
pub mod pipe;
pub mod process;
pub mod setup;
pub mod shaped;
pub mod sim;
pub mod sim_engine;
pub mod sim_pair;
pub mod stun;
pub mod udp_worker;

pub use browser::{Browser, CHROMIUM_SRTP_PROFILES, Incoming};
pub use call::{Call, RECEIVER, SENDER};
pub use certificates::{Certificates, certificates};
pub use link_model::LinkModel;
pub use opus_room::OpusRoom;
pub use packet_maker::{PacketMaker, read_stamp};
pub use packets::{chrome_packet, opus_packet, plain_rtp, rtx_of, sender_report, vp8};
pub use params::{
    Media, TRANSPORT_CC_URI, consumer_extension_id, consumer_ssrc, opus_params, simulcast_params,
    video_extensions, vp8_params, vp8_rtx_codecs,
};
pub use pipe::Pipe;
pub use process::{open_fds, rss_kib};
pub use setup::{
    MediaWorker, Peer, Publisher, Subscriber, connect_peers, consume, consume_answer, create_room,
    produce, setup_consumers, setup_producer,
};
pub use shaped::{Seen, ShapedReceiver};
pub use sim::{Endpoint, SIM_PORT, Sim, tuple};
pub use sim_engine::{SharedSim, SimEngine};
pub use sim_pair::SimPair;
pub use stun::BindingRequest;
pub use udp_worker::{UdpClient, UdpPeer, UdpWorker};
