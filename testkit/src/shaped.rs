//! The receiver of a [`Sim`] call behind a shaped link, for the bandwidth allocation tests
//! (issue 9): what the worker sends the browser at [`RECEIVER`] crosses a [`LinkModel`]
//! (a bottleneck with a drop-tail queue), and the receiver answers with real transport-cc
//! feedback (the engine's own [`TwccFeedback`], as Chromium would) about what arrived and
//! when. [`ShapedReceiver::run`] drives the call in 1 ms steps of virtual time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kolabmeet_engine::transport::TwccFeedback;
use kolabmeet_net::rtp::RtpPacket;
use serde_json::Value;

use crate::call::{RECEIVER, SENDER};
use crate::link_model::LinkModel;
use crate::params::{TRANSPORT_CC_URI, consumer_extension_id};
use crate::sim::Sim;

/// What happened to a media packet the worker sent the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The worker sent it at this time (it enters the link; it may be lost there).
    Sent(Instant),
    /// It came out of the link at this time.
    Arrived(Instant),
}

/// The receiving browser of a call ([`RECEIVER`]) behind its link. See the module
/// documentation.
pub struct ShapedReceiver {
    /// The path from the worker to the receiver.
    pub link: LinkModel,
    in_flight: VecDeque<(Instant, Vec<u8>)>,
    twcc: TwccFeedback,
    tcc_id: u8,
    /// Bytes of probe packets (the probation stream) that reached the link.
    pub probe_bytes: u64,
    next_consent: Instant,
}

impl ShapedReceiver {
    /// A receiver of the consumer answered with `consumed` (its transport-cc extension
    /// id), behind a link of `capacity_bps` with 20 ms of delay (seed 7), from `sim.now`.
    pub fn new(sim: &Sim, consumed: &Value, capacity_bps: u64) -> Self {
        ShapedReceiver {
            link: LinkModel::new(capacity_bps, Duration::from_millis(20), 7),
            in_flight: VecDeque::new(),
            twcc: TwccFeedback::new(),
            tcc_id: consumer_extension_id(consumed, TRANSPORT_CC_URI)
                .expect("transport-cc negotiated"),
            probe_bytes: 0,
            next_consent: sim.now,
        }
    }

    /// Runs `sim` for `d` in 1 ms steps: `send` (the sender's browser) before each step;
    /// after it, every media packet the worker sent the receiver goes onto the link
    /// (`seen` with [`Seen::Sent`]), every one that has come out of it by now is received
    /// ([`Seen::Arrived`]), and transport-cc feedback goes back when due. Both browsers
    /// keep ICE consent fresh (RFC 7675), every 5 s as browsers do.
    pub fn run(
        &mut self,
        sim: &mut Sim,
        d: Duration,
        mut send: impl FnMut(&mut Sim),
        mut seen: impl FnMut(Seen, &RtpPacket<&[u8]>),
    ) {
        let end = sim.now + d;
        while sim.now < end {
            if sim.now >= self.next_consent {
                self.next_consent += Duration::from_secs(5);
                for port in [SENDER, RECEIVER] {
                    let check = sim.endpoint(port).browser.binding_request();
                    sim.raw(port, &check);
                }
            }
            send(sim);
            sim.advance(Duration::from_millis(1));
            self.receive(sim, &mut seen);
        }
    }

    fn receive(&mut self, sim: &mut Sim, seen: &mut impl FnMut(Seen, &RtpPacket<&[u8]>)) {
        let now = sim.now;
        let probes = sim.take_probes(RECEIVER);
        self.probe_bytes += probes.iter().map(|p| p.len() as u64).sum::<u64>();
        for p in sim.take_rtp(RECEIVER) {
            seen(Seen::Sent(now), &RtpPacket::parse(&p[..]).expect("RTP"));
            self.enter_link(now, p);
        }
        for p in probes {
            self.enter_link(now, p);
        }
        while self.in_flight.front().is_some_and(|(at, _)| *at <= now) {
            let (at, p) = self.in_flight.pop_front().expect("looked at");
            let v = RtpPacket::parse(&p[..]).expect("RTP");
            if let Some(&[a, b]) = v.extension(self.tcc_id) {
                self.twcc
                    .on_packet(at, u16::from_be_bytes([a, b]), v.ssrc());
            }
            if v.ssrc() != kolabmeet_engine::transport::PROBATOR_SSRC {
                seen(Seen::Arrived(at), &v);
            }
        }
        if self.twcc.poll_timeout().is_some_and(|t| t <= now) {
            let mut out = Vec::new();
            self.twcc.poll_feedback(now, 99, &mut out);
            for fb in out {
                sim.send_rtcp(RECEIVER, fb);
            }
        }
    }

    /// A packet enters the link (with the SRTP overhead of AEAD-GCM and the UDP/IP
    /// headers on the wire).
    fn enter_link(&mut self, now: Instant, p: Vec<u8>) {
        if let Some(at) = self.link.send(now, p.len() + 16 + 28) {
            self.in_flight.push_back((at, p));
        }
    }
}
