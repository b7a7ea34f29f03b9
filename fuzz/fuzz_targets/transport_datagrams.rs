//! Datagrams into connected WebRTC transports of a real worker core (in memory, the test
//! kit's [`Sim`]): a sender's browser producing VP8 with RTX, Opus and VP8 simulcast by
//! RID, a receiver's browser consuming all three, both with ICE and DTLS done. The input
//! is a list of operations, each one byte (low 4 bits: what; high 4 bits: how far time
//! moves first, so timers run in between) and the bytes it reads:
//!
//! - RTP the sender's browser protects with its SRTP keys, built from input bytes around
//!   the streams it produces (SSRC, RID/MID/transport-cc extensions, sequence numbers
//!   near the last ones, VP8 descriptors, RTX with an original sequence number), or its
//!   header fixed up from raw bytes: the post-decrypt paths (routing, RTX, NACK lists,
//!   simulcast, key frames) get fuzzed, not just the SRTP check;
//! - RTCP from either browser, built (NACKs of recently forwarded packets, PLI, FIR,
//!   receiver and sender reports, REMB, BYE, SDES) or fixed up from raw bytes, protected;
//! - raw datagrams, DTLS records and STUN checks (valid, from new addresses, mutated);
//! - engine commands (pause, resume, close, consume again, restartIce) and long waits.
//!
//! Asserts: no panic, and every table of the core stays within what this setup can
//! hold. Setup runs per input (certificates are made once): about 2 DTLS handshakes,
//! about a quarter of an input's time; sanitizer instrumentation costs far more (see
//! "Fuzzing" in docs/testing.md: run this target with `-s none` to go five times faster).
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::transport::ice_lite::MAX_TUPLES;
use kolabmeet_engine::{ConsumerId, EngineCommand, PeerId, ProducerId, TransportId};
use kolabmeet_net::rtcp::{
    ReportBlockData, SenderReportData, write_bye, write_fir, write_nack, write_pli,
    write_receiver_report, write_remb, write_sdes_cname, write_sender_report,
};
use kolabmeet_net::rtp::RtpPacket;
use kolabmeet_testkit::packets::{Ext, write_extensions, write_rtp_header};
use kolabmeet_testkit::{
    BindingRequest, Media, RECEIVER, SENDER, Sim, consumer_ssrc, opus_params, setup,
    simulcast_params,
};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Operations one input may run.
const MAX_OPS: usize = 400;
/// How far time moves before an operation, by its byte's high 4 bits (ms).
const STEPS_MS: [u64; 16] = [0, 0, 0, 0, 0, 0, 1, 2, 5, 10, 20, 50, 100, 300, 1000, 5000];
/// Consumers the receiver may have (three at setup, more from "consume again").
const MAX_CONSUMERS: usize = 8;
/// Addresses strangers send from start here.
const STRANGER_PORT: u16 = 7000;

/// One stream the sender's browser sends.
#[derive(Clone, Copy)]
struct Stream {
    ssrc: u32,
    pt: u8,
    mid: &'static str,
    rid: Option<&'static str>,
    /// The RID an RTX stream repairs (RFC 8852 §3.2).
    repaired_rid: Option<&'static str>,
}

const fn stream(ssrc: u32, pt: u8, mid: &'static str) -> Stream {
    Stream {
        ssrc,
        pt,
        mid,
        rid: None,
        repaired_rid: None,
    }
}

/// The streams the sender's browser produces: VP8 and its RTX, Opus, simulcast layers 0
/// and 1, and their RTX.
const STREAMS: [Stream; 7] = [
    stream(1111, 96, "0"),
    stream(1112, 97, "0"),
    stream(2222, 111, "1"),
    Stream {
        rid: Some("r0"),
        ..stream(3333, 96, "2")
    },
    Stream {
        rid: Some("r1"),
        ..stream(4444, 96, "2")
    },
    Stream {
        repaired_rid: Some("r0"),
        ..stream(3334, 97, "2")
    },
    Stream {
        repaired_rid: Some("r1"),
        ..stream(4445, 97, "2")
    },
];

/// The worker core with the call set up, and what the operations remember.
struct Call {
    sim: Sim,
    sender: (PeerId, TransportId),
    receiver: (PeerId, TransportId),
    producers: Vec<ProducerId>,
    consumers: Vec<ConsumerId>,
    /// SSRCs the receiver gets media on (each consumer's, and its RTX).
    recv_ssrcs: Vec<u32>,
    /// Next sequence number and timestamp of each of [`STREAMS`].
    next: [(u16, u32); 7],
    /// The last sequence number the receiver got on each SSRC (for NACKs that hit).
    received: HashMap<u32, u16>,
}

impl Call {
    fn new() -> Self {
        let mut sim = Sim::with_shared_certificates();
        sim.strict = false;
        let room = sim.room();
        let sender = sim.connect_peer_at(room, SENDER);
        let receiver = sim.connect_peer_at(room, RECEIVER);
        let mut simulcast = simulcast_params();
        simulcast.mid = Some("2".into());
        let mut call = Call {
            sim,
            sender,
            receiver,
            producers: Vec::new(),
            consumers: Vec::new(),
            recv_ssrcs: Vec::new(),
            next: [(100, 90_000); 7],
            received: HashMap::new(),
        };
        for (kind, params) in [
            (MediaKind::Video, Media::Vp8.rtp_parameters(1111)),
            (MediaKind::Audio, opus_params(2222, "1")),
            (MediaKind::Video, simulcast),
        ] {
            let p = call.sim.produce(sender.0, sender.1, kind, params);
            call.producers.push(p.expect("the sender produces"));
        }
        for i in 0..3 {
            call.consume(i);
        }
        call
    }

    /// The receiver consumes producer `i` (again).
    fn consume(&mut self, i: usize) {
        let Some(&producer) = self.producers.get(i) else {
            return;
        };
        let (peer, transport) = self.receiver;
        let Ok(reply) = self.sim.consume(peer, transport, producer) else {
            return;
        };
        let v = setup::wire(&reply);
        self.recv_ssrcs.push(consumer_ssrc(&v));
        if let Some(rtx) = v["rtpParameters"]["encodings"][0]["rtx"]["ssrc"].as_u64() {
            self.recv_ssrcs.push(rtx as u32);
        }
        if let Ok(id) = setup::answer_id(&reply) {
            self.consumers.push(id);
        }
    }

    /// Protects `packet` with the browser at `port`'s keys and hands it to the core.
    fn send(&mut self, port: u16, mut packet: Vec<u8>, rtcp: bool) {
        let b = &mut self.sim.endpoint(port).browser;
        let protected = if rtcp {
            b.protect_rtcp(&mut packet)
        } else {
            b.protect_rtp(&mut packet)
        };
        if protected.is_ok() {
            self.sim.raw(port, &packet);
        }
    }

    /// Runs one operation.
    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let op: u8 = u.arbitrary()?;
        self.sim.now += Duration::from_millis(STEPS_MS[usize::from(op >> 4)]);
        if self
            .sim
            .core
            .poll_timeout()
            .is_some_and(|t| t <= self.sim.now)
        {
            self.sim.core.handle_timeout(self.sim.now);
            self.sim.pump();
        }
        match op & 0x0f {
            0..=3 => {
                let p = self.built_rtp(u)?;
                self.send(SENDER, p, false);
            }
            4 => {
                let p = fixed_up(u, false)?;
                self.send(SENDER, p, false);
            }
            5 | 6 => {
                let p = self.receiver_rtcp(u)?;
                self.send(RECEIVER, p, true);
            }
            7 => {
                let p = self.sender_rtcp(u)?;
                self.send(SENDER, p, true);
            }
            8 => {
                let port = if u.arbitrary()? { SENDER } else { RECEIVER };
                let p = fixed_up(u, true)?;
                self.send(port, p, true);
            }
            9 => {
                let port = self.any_port(u)?;
                let len = u.int_in_range(0..=1500)?;
                let bytes = u.bytes(len.min(u.len()))?.to_vec();
                self.sim.raw(port, &bytes);
            }
            10 => self.stun(u)?,
            11 => {
                let port = if u.arbitrary()? { SENDER } else { RECEIVER };
                let len = u.int_in_range(1..=300)?;
                let mut d = u.bytes(len.min(u.len()))?.to_vec();
                if let Some(b) = d.first_mut() {
                    *b = 20 + *b % 44; // DTLS (RFC 7983)
                }
                self.sim.raw(port, &d);
            }
            12 => self.command(u)?,
            13 => {
                let secs: u8 = u.arbitrary()?;
                self.sim
                    .advance(Duration::from_millis(u64::from(secs) * 250));
            }
            14 => {
                // The receiver sends RTP too (it produces nothing).
                let mut p = self.built_rtp(u)?;
                p[8..12].copy_from_slice(&u.arbitrary::<u32>()?.to_be_bytes());
                self.send(RECEIVER, p, false);
            }
            _ => {
                let p = self.built_rtp(u)?;
                self.send(SENDER, p, false);
            }
        }
        Ok(())
    }

    /// A sender packet on one of [`STREAMS`] (or a stranger SSRC), with fields near the
    /// stream's last ones.
    fn built_rtp(&mut self, u: &mut Unstructured) -> Result<Vec<u8>> {
        let i = u.choose_index(STREAMS.len() + 1)?;
        let Stream {
            ssrc,
            pt,
            mid,
            rid,
            repaired_rid: rrid,
        } = match STREAMS.get(i) {
            Some(s) => *s,
            None => stream(u.arbitrary()?, u.arbitrary::<u8>()? & 0x7f, "0"),
        };
        let flags: u8 = u.arbitrary()?;
        let (seq, ts) = match self.next.get_mut(i) {
            Some(n) => {
                // Mostly in order; sometimes back (reordering, repeats) or far ahead.
                let delta = match flags & 0x03 {
                    0 => i16::from(u.arbitrary::<i8>()?),
                    3 => u.arbitrary()?,
                    _ => 1,
                };
                n.0 = n.0.wrapping_add_signed(delta);
                if flags & 0x04 != 0 {
                    n.1 = n.1.wrapping_add(3000);
                }
                *n
            }
            None => (u.arbitrary()?, u.arbitrary()?),
        };
        let marker = if flags & 0x08 != 0 { 0x80 } else { 0 };
        let mut p = Vec::with_capacity(64);
        write_rtp_header(&mut p, true, pt | marker, seq, ts, ssrc);
        let tcc = u.arbitrary::<u16>()?.to_be_bytes();
        let mut exts: Vec<(u8, &[u8])> = Vec::new();
        if flags & 0x10 == 0 {
            exts.push((Ext::Mid.id(), mid.as_bytes()));
        }
        if let Some(r) = rid.filter(|_| flags & 0x20 == 0) {
            exts.push((Ext::Rid.id(), r.as_bytes()));
        }
        if let Some(r) = rrid.filter(|_| flags & 0x20 == 0) {
            exts.push((Ext::RepairedRid.id(), r.as_bytes()));
        }
        exts.push((Ext::TransportCc.id(), &tcc));
        if flags & 0x40 != 0 {
            exts.push((Ext::AbsSendTime.id(), &[1, 2, 3]));
        }
        write_extensions(&mut p, &exts);
        if pt == 97 {
            // RTX: the original sequence number of a recent packet first.
            let back: u8 = u.arbitrary()?;
            let media = self.next[repaired(i)].0;
            p.extend_from_slice(&media.wrapping_sub(u16::from(back)).to_be_bytes());
        }
        if pt == 96 || pt == 97 {
            // VP8 descriptor: X, S, PID; picture id, TL0PICIDX, TID; key frame bit.
            let d: [u8; 4] = u.arbitrary()?;
            p.extend_from_slice(&[0x80 | (d[0] & 0x1f), 0xe0, 0x80 | (d[1] & 0x7f), d[2]]);
            p.extend_from_slice(&[d[3], d[0] & 0xe0, u8::from(flags & 0x80 == 0)]);
        }
        let len = u.int_in_range(0..=64)?;
        p.extend_from_slice(u.bytes(len.min(u.len()))?);
        Ok(p)
    }

    /// RTCP the receiver's browser sends about what it receives.
    fn receiver_rtcp(&mut self, u: &mut Unstructured) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let sender: u32 = u.arbitrary()?;
        for _ in 0..u.int_in_range(1..=3)? {
            let media = match u.choose(&self.recv_ssrcs) {
                Ok(s) if u.ratio(7, 8)? => *s,
                _ => u.arbitrary()?,
            };
            match u.int_in_range(0..=6)? {
                0 | 1 => {
                    let last = self.received.get(&media).copied();
                    let base = match last {
                        Some(l) => l.wrapping_sub(u16::from(u.arbitrary::<u8>()?)),
                        None => u.arbitrary()?,
                    };
                    let mut lost = vec![base];
                    for _ in 0..u.int_in_range(0..=20)? {
                        let step = u16::from(u.arbitrary::<u8>()? % 24) + 1;
                        lost.push(lost[lost.len() - 1].wrapping_add(step));
                    }
                    write_nack(&mut out, sender, media, &lost);
                }
                2 => write_pli(&mut out, sender, media),
                3 => write_fir(&mut out, sender, media, u.arbitrary()?),
                4 => {
                    let block = report_block(u, media)?;
                    write_receiver_report(&mut out, sender, &[block]);
                }
                5 => {
                    let ssrcs = [media, u.arbitrary()?];
                    write_remb(
                        &mut out,
                        sender,
                        u.arbitrary()?,
                        &ssrcs[..u.int_in_range(0..=2)?],
                    );
                }
                _ => write_bye(&mut out, &[media]),
            }
        }
        Ok(out)
    }

    /// RTCP the sender's browser sends about its streams.
    fn sender_rtcp(&mut self, u: &mut Unstructured) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let ssrc = match u.choose(&STREAMS) {
            Ok(s) => s.ssrc,
            Err(_) => u.arbitrary()?,
        };
        match u.int_in_range(0..=3)? {
            0 | 1 => {
                let info = SenderReportData {
                    ssrc,
                    ntp: u.arbitrary()?,
                    rtp_time: u.arbitrary()?,
                    packets: u.arbitrary()?,
                    octets: u.arbitrary()?,
                };
                let blocks = match u.arbitrary()? {
                    true => {
                        let about = u.arbitrary()?;
                        vec![report_block(u, about)?]
                    }
                    false => Vec::new(),
                };
                write_sender_report(&mut out, &info, &blocks);
                let cname: String = u.arbitrary()?;
                write_sdes_cname(&mut out, ssrc, &cname);
            }
            2 => write_bye(&mut out, &[ssrc]),
            _ => {
                let about = u.arbitrary()?;
                write_receiver_report(&mut out, ssrc, &[report_block(u, about)?]);
            }
        }
        Ok(out)
    }

    /// A STUN check: valid from a browser (consent), valid from a new address (a tuple
    /// switch), with attributes left out or wrong, or mutated bytes.
    fn stun(&mut self, u: &mut Unstructured) -> Result<()> {
        let owner = if u.arbitrary()? { SENDER } else { RECEIVER };
        let b = &self.sim.endpoint(owner).browser;
        let mut req = b.binding();
        let flags: u8 = u.arbitrary()?;
        req.nominate = flags & 1 != 0;
        req.controlled = flags & 0x02 != 0 && flags & 0x80 != 0;
        req.priority = flags & 0x04 == 0 || flags & 0x80 == 0;
        req.integrity = flags & 0x08 == 0 || flags & 0x80 == 0;
        req.fingerprint = flags & 0x10 == 0 || flags & 0x80 == 0;
        let mut bytes = req.encode();
        if flags & 0x40 != 0 {
            let at = u.choose_index(bytes.len())?;
            bytes[at] ^= u.arbitrary::<u8>()? | 1;
        }
        let port = if flags & 0x20 != 0 {
            self.any_port(u)?
        } else {
            owner
        };
        self.sim.raw(port, &bytes);
        // A check that is not the browser's own: an unknown username.
        if flags & 0x60 == 0x60 {
            let bad = BindingRequest::new("nobody0000000000:x", "x").encode();
            self.sim.raw(port, &bad);
        }
        Ok(())
    }

    /// An engine command on the call's objects (its reply, if any, is not checked).
    fn command(&mut self, u: &mut Unstructured) -> Result<()> {
        let (sender, receiver) = (self.sender, self.receiver);
        let producer = *u.choose(&self.producers)?;
        let consumer = u.choose(&self.consumers).ok().copied();
        let paused: bool = u.arbitrary()?;
        let sim = &mut self.sim;
        match (u.int_in_range(0..=6)?, consumer) {
            (0, _) => drop(sim.command(|tag| EngineCommand::SetProducerPaused {
                tag,
                peer: sender.0,
                producer,
                paused,
            })),
            (1 | 2, Some(consumer)) => drop(sim.command(|tag| EngineCommand::SetConsumerPaused {
                tag,
                peer: receiver.0,
                consumer,
                paused,
            })),
            (3, _) if self.consumers.len() < MAX_CONSUMERS => {
                let i = u.choose_index(self.producers.len())?;
                self.consume(i);
            }
            (4, Some(consumer)) => {
                let close = EngineCommand::CloseConsumer {
                    peer: receiver.0,
                    consumer,
                };
                sim.core.handle_command(sim.now, close);
                sim.pump();
            }
            (5, _) => drop(sim.command(|tag| EngineCommand::CloseProducer {
                tag,
                peer: sender.0,
                producer,
            })),
            (6, _) => {
                let (peer, transport) = if paused { sender } else { receiver };
                drop(sim.command(|tag| EngineCommand::RestartIce {
                    tag,
                    peer,
                    transport,
                }));
            }
            _ => {}
        }
        Ok(())
    }

    /// The sender's, the receiver's, or one of a few strangers' port.
    fn any_port(&self, u: &mut Unstructured) -> Result<u16> {
        Ok(match u.int_in_range(0..=5)? {
            0 => SENDER,
            1 => RECEIVER,
            n => STRANGER_PORT + n,
        })
    }

    /// After each operation: what the browsers got is noted and dropped, and the core's
    /// tables are checked.
    fn settle(&mut self) {
        for p in self.sim.endpoint(RECEIVER).rtp.drain(..) {
            if let Ok(r) = RtpPacket::parse(&p[..]) {
                self.received.insert(r.ssrc(), r.sequence_number());
            }
        }
        for e in self.sim.endpoints.values_mut() {
            e.rtp.clear();
            e.rtcp.clear();
        }
        self.sim.to_strangers.clear();
        self.sim.events.clear();
        let s = self.sim.core.sizes();
        assert!(s.rooms <= 1 && s.transports <= 2, "{s:?}");
        assert!(s.ufrags <= 2 * s.transports, "{s:?}");
        assert!(s.tuples <= MAX_TUPLES * s.transports, "{s:?}");
        assert!(s.producers <= 3 && s.consumers <= MAX_CONSUMERS, "{s:?}");
        assert!(s.routes <= 64, "routes grow: {s:?}");
        assert!(s.key_frame_timers <= 16, "{s:?}");
        assert!(s.per_transport <= 4 * s.transports.max(1), "{s:?}");
        assert!(
            self.received.len() <= 2 * MAX_CONSUMERS,
            "{:?}",
            self.received
        );
    }
}

/// The index in [`STREAMS`] of the stream an RTX stream `i` repairs (`i` itself for the
/// others).
fn repaired(i: usize) -> usize {
    match i {
        1 => 0,
        5 => 3,
        6 => 4,
        _ => i.min(STREAMS.len() - 1),
    }
}

/// A report block about `ssrc` with arbitrary counts.
fn report_block(u: &mut Unstructured, ssrc: u32) -> Result<ReportBlockData> {
    Ok(ReportBlockData {
        ssrc,
        fraction_lost: u.arbitrary()?,
        cumulative_lost: u.int_in_range(-(1 << 23)..=(1 << 23) - 1)?,
        highest_seq: u.arbitrary()?,
        jitter: u.arbitrary()?,
        last_sr: u.arbitrary()?,
        delay_since_last_sr: u.arbitrary()?,
    })
}

/// Raw bytes whose first two are fixed up to look like RTP (not RTCP) or RTCP (types
/// 200-206, with the length field right when a flag says so).
fn fixed_up(u: &mut Unstructured, rtcp: bool) -> Result<Vec<u8>> {
    let len = u.int_in_range(12..=300)?;
    let mut p = u.bytes(len.min(u.len()))?.to_vec();
    p.resize(len.max(12), 0);
    p[0] = 0x80 | (p[0] & 0x3f);
    if rtcp {
        p[1] = 200 + p[1] % 7;
        if p[2] & 0x80 == 0 {
            p.truncate(p.len() & !3);
            let words = (p.len() / 4 - 1) as u16;
            p[2..4].copy_from_slice(&words.to_be_bytes());
        }
    } else if (64..96).contains(&(p[1] & 0x7f)) {
        p[1] ^= 0x40; // payload types 64-95 would read as RTCP (RFC 5761 §4)
    }
    Ok(p)
}

fuzz_target!(|data: &[u8]| {
    let mut call = Call::new();
    let mut u = Unstructured::new(data);
    for _ in 0..MAX_OPS {
        if u.is_empty() || call.step(&mut u).is_err() {
            break;
        }
        call.settle();
    }
});
