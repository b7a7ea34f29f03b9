//! The DTLS handshake of a WebRTC transport of a real worker core (in memory, the test
//! kit's [`Sim`]), fed arbitrary records and fragments before and during it, interleaved
//! with a real browser-side handshake ([`Browser`], the engine's own DTLS stack as the
//! other end). The first byte picks the browser's DTLS role (client, the usual case, or
//! server, so that the core is the client) and the SRTP profiles it offers; then a list
//! of operations, each one byte (low 4 bits: what; high 4 bits: how far time moves
//! first, so both sides' retransmission timers run in between) and the bytes it reads:
//!
//! - the browser's ICE check (which validates its address) and `connectWebRtcTransport`
//!   with its real fingerprint or a wrong one, in any order, at any time;
//! - the browser's flights to the core: delivered, dropped, repeated later, with a byte
//!   changed, with their handshake messages fragmented again at any point (valid DTLS,
//!   RFC 6347 §4.2.3), or with fuzzer bytes in a message body behind valid headers;
//! - the core's flights to the browser: delivered or dropped;
//! - records built by the fuzzer (any content type, version, epoch, sequence number and
//!   length; handshake headers with any type, length, message sequence and fragment
//!   range) and raw datagrams in the DTLS range, from the browser's address or from one
//!   ICE never validated.
//!
//! Asserts: no panic; nothing is ever sent to the unvalidated address; given a wrong
//! fingerprint, the browser never completes the handshake (the core checks the peer's
//! certificate before it sends its `Finished`, in either role: no SRTP keys are ever
//! shared); the core's tables stay within one transport's.
//! Each input builds its state (a transport with no handshake yet) afresh: most of an
//! input's cost is the handshake it runs.
#![no_main]

use std::collections::VecDeque;
use std::time::Duration;

use kolabmeet_engine::crypto::SrtpProfile;
use kolabmeet_engine::ortc::{DtlsFingerprint, DtlsRole};
use kolabmeet_engine::transport::ice_lite::MAX_TUPLES;
use kolabmeet_engine::{PeerId, TransportId};
use kolabmeet_testkit::{Browser, CHROMIUM_SRTP_PROFILES, Sim, certificates, setup, tuple};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Operations one input may run.
const MAX_OPS: usize = 200;
/// How far time moves before an operation, by its byte's high 4 bits (ms).
const STEPS_MS: [u64; 16] = [
    0, 0, 0, 0, 0, 0, 0, 1, 10, 50, 100, 300, 1000, 3000, 10_000, 60_000,
];
/// The browser's port.
const BROWSER: u16 = 40_000;
/// A port ICE never validates.
const STRANGER: u16 = 40_001;
/// Browser datagrams kept for repeating later.
const HISTORY: usize = 16;
/// DTLS record header length (RFC 6347 §4.1).
const RECORD_HEADER: usize = 13;
/// DTLS handshake message header length (RFC 6347 §4.2.2).
const HANDSHAKE_HEADER: usize = 12;

/// The SRTP profile lists the browser may offer.
const OFFERS: [&[SrtpProfile]; 4] = [
    &CHROMIUM_SRTP_PROFILES,
    &[SrtpProfile::AeadAes128Gcm],
    &[SrtpProfile::Aes128CmHmacSha1_80],
    &[SrtpProfile::AeadAes256Gcm, SrtpProfile::AeadAes128Gcm],
];

/// One handshake in progress and what the operations remember.
struct Handshake {
    sim: Sim,
    peer: PeerId,
    transport: TransportId,
    browser: Browser,
    /// The browser's datagrams not yet handed to the core.
    from_browser: VecDeque<Vec<u8>>,
    /// The browser's datagrams already sent, for repeats.
    history: VecDeque<Vec<u8>>,
    /// `connectWebRtcTransport` was accepted with a fingerprint that is not the
    /// browser's (the first accepted one counts: the core refuses a second).
    wrong_fingerprint: bool,
    /// `connectWebRtcTransport` was accepted.
    connected: bool,
}

impl Handshake {
    fn new(first: u8) -> Self {
        let mut sim = Sim::with_shared_certificates();
        sim.strict = false;
        let room = sim.room();
        let peer = PeerId::random();
        let reply = sim
            .command(|tag| setup::create_transport(tag, room, peer))
            .expect("createWebRtcTransport");
        let transport = setup::answer_id(&reply).expect("a transport id");
        let answer = setup::wire(&reply);
        let cert = &certificates().browsers;
        let profiles = OFFERS[usize::from(first >> 1) % OFFERS.len()];
        let browser = if first & 1 == 0 {
            Browser::offering(&answer, cert, profiles, sim.now).expect("a DTLS client")
        } else {
            let fingerprints: Vec<DtlsFingerprint> =
                serde_json::from_value(answer["dtlsParameters"]["fingerprints"].clone())
                    .expect("fingerprints");
            let ice = &answer["iceParameters"];
            let credentials = (
                ice["usernameFragment"].as_str().expect("ufrag"),
                ice["password"].as_str().expect("password"),
            );
            Browser::with_role(DtlsRole::Server, cert, &fingerprints, credentials, sim.now)
                .expect("a DTLS server")
        };
        Handshake {
            sim,
            peer,
            transport,
            browser,
            from_browser: VecDeque::new(),
            history: VecDeque::new(),
            wrong_fingerprint: false,
            connected: false,
        }
    }

    /// Runs one operation.
    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let op: u8 = u.arbitrary()?;
        let step = STEPS_MS[usize::from(op >> 4)];
        if step > 0 {
            self.sim.advance(Duration::from_millis(step));
            if self
                .browser
                .poll_timeout()
                .is_some_and(|t| t <= self.sim.now)
            {
                self.browser.handle_timeout(self.sim.now);
            }
        }
        self.collect_browser();
        match op & 0x0f {
            0 => {
                let check = self.browser.binding_request();
                self.send_to_core(BROWSER, check);
            }
            1 => self.connect(u)?,
            2 | 3 | 15 => {
                if let Some(d) = self.from_browser.pop_front() {
                    self.send_browser(d);
                }
            }
            4 => {
                if let Some(d) = self.from_browser.pop_front() {
                    let pieces = refragment(u, &d)?;
                    if u.arbitrary()? {
                        self.send_browser(pieces.concat());
                    } else {
                        for p in pieces {
                            self.send_browser(p);
                        }
                    }
                }
            }
            5 => {
                if let Some(mut d) = self.from_browser.pop_front() {
                    if !d.is_empty() {
                        let at = u.choose_index(d.len())?;
                        d[at] ^= u.arbitrary::<u8>()? | 1;
                        if u.ratio(1, 4)? {
                            d.truncate(u.choose_index(d.len())?);
                        }
                    }
                    self.send_browser(d);
                }
            }
            6 => {
                // Lost on the way; sometimes reordered instead.
                if let Some(d) = self.from_browser.pop_front()
                    && u.arbitrary()?
                {
                    self.from_browser.push_back(d);
                }
            }
            7 => self.flights_to_browser(u)?,
            8 => {
                let d = dtls_bytes(u)?;
                self.send_to_core(BROWSER, d);
            }
            9 => {
                let d = built_records(u)?;
                self.send_to_core(BROWSER, d);
            }
            10 => {
                if !self.history.is_empty() {
                    let d = self.history[u.choose_index(self.history.len())?].clone();
                    self.send_to_core(BROWSER, d);
                }
            }
            11 => {
                let d = if u.arbitrary()? {
                    dtls_bytes(u)?
                } else {
                    built_records(u)?
                };
                self.send_to_core(STRANGER, d);
            }
            12 => {
                let secs: u8 = u.arbitrary()?;
                self.sim
                    .advance(Duration::from_millis(u64::from(secs) * 100));
            }
            13 => {
                if let Some(d) = self.from_browser.pop_front() {
                    let d = with_body_bytes(u, d)?;
                    self.send_browser(d);
                }
            }
            _ => {
                // Both sides' timers, and every flight delivered both ways.
                self.sim.advance(Duration::from_millis(1));
                self.browser.handle_timeout(self.sim.now);
                self.collect_browser();
                while let Some(d) = self.from_browser.pop_front() {
                    self.send_browser(d);
                }
                self.deliver_all();
            }
        }
        self.check();
        Ok(())
    }

    /// `connectWebRtcTransport` with the browser's parameters, its fingerprints sometimes
    /// all changed in one hex digit (the core checks those of the strongest hash: then
    /// it must never connect).
    fn connect(&mut self, u: &mut Unstructured) -> Result<()> {
        let mut params = self.browser.dtls_parameters();
        let wrong = u.ratio(1, 4)?;
        if wrong {
            let at: usize = u.arbitrary()?;
            for fp in &mut params.fingerprints {
                let mut value = fp.value.clone().into_bytes();
                let mut i = at % value.len();
                if value[i] == b':' {
                    i -= 1; // values start with a hex digit
                }
                value[i] = if value[i] == b'0' { b'1' } else { b'0' };
                fp.value = String::from_utf8(value).expect("ASCII");
            }
        }
        let (peer, transport) = (self.peer, self.transport);
        let accepted = self
            .sim
            .command(|tag| setup::connect_transport(tag, peer, transport, params))
            .is_ok();
        if accepted && !self.connected {
            self.connected = true;
            self.wrong_fingerprint = wrong;
        }
        Ok(())
    }

    /// Takes what the browser has to send.
    fn collect_browser(&mut self) {
        while let Some(d) = self.browser.poll_transmit() {
            self.from_browser.push_back(d);
        }
    }

    /// A browser datagram to the core, remembered for repeats.
    fn send_browser(&mut self, d: Vec<u8>) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(d.clone());
        self.send_to_core(BROWSER, d);
    }

    /// A datagram from `port` to the core, and what follows it (the core's sends are
    /// kept for [`Handshake::flights_to_browser`]).
    fn send_to_core(&mut self, port: u16, mut d: Vec<u8>) {
        self.sim
            .core
            .handle_datagram(self.sim.now, tuple(port), &mut d);
        self.sim.pump();
    }

    /// The core's datagrams to the browser: all, or all but one.
    fn flights_to_browser(&mut self, u: &mut Unstructured) -> Result<()> {
        let out = std::mem::take(&mut self.sim.to_strangers);
        let lost = if u.arbitrary()? && !out.is_empty() {
            Some(u.choose_index(out.len())?)
        } else {
            None
        };
        for (i, t) in out.into_iter().enumerate() {
            if Some(i) != lost {
                self.deliver(t.tuple.remote.port(), t.data);
            }
        }
        Ok(())
    }

    fn deliver_all(&mut self) {
        for t in std::mem::take(&mut self.sim.to_strangers) {
            self.deliver(t.tuple.remote.port(), t.data);
        }
    }

    fn deliver(&mut self, port: u16, mut data: Vec<u8>) {
        assert_eq!(
            port, BROWSER,
            "the core sent to an address ICE never validated"
        );
        self.browser.handle_datagram(self.sim.now, &mut data);
        self.collect_browser();
    }

    /// After each operation.
    fn check(&mut self) {
        assert!(
            self.sim
                .to_strangers
                .iter()
                .all(|t| t.tuple.remote.port() == BROWSER),
            "the core sent to an address ICE never validated"
        );
        if self.browser.is_connected() {
            assert!(
                !self.wrong_fingerprint,
                "the browser completed a handshake with a core given a wrong fingerprint"
            );
        }
        let s = self.sim.core.sizes();
        assert!(s.rooms == 1 && s.transports <= 1, "{s:?}");
        assert!(s.tuples <= MAX_TUPLES && s.ufrags <= 2, "{s:?}");
        self.sim.events.clear();
    }

    /// At the end: what the core still had to send reaches the browser.
    fn finish(&mut self) {
        self.deliver_all();
        self.collect_browser();
        self.check();
    }
}

/// Bytes whose first is in the DTLS range (20-63, RFC 7983).
fn dtls_bytes(u: &mut Unstructured) -> Result<Vec<u8>> {
    let len = u.int_in_range(1..=600)?;
    let mut d = u.bytes(len.min(u.len()))?.to_vec();
    match d.first_mut() {
        Some(b) => *b = 20 + *b % 44,
        None => d.push(22),
    }
    Ok(d)
}

/// One to three records with headers of the fuzzer's choosing, mostly plausible:
/// handshake records carry a handshake header whose fragment range may or may not fit.
fn built_records(u: &mut Unstructured) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(1..=3)? {
        let kind = *u.choose(&[20u8, 21, 22, 22, 22, 23, 25, 0])?;
        let kind = if kind == 0 { u.arbitrary()? } else { kind };
        let version = *u.choose(&[[0xfe, 0xfd], [0xfe, 0xff], [3, 3], [0, 0]])?;
        let epoch: u16 = if u.ratio(3, 4)? { 0 } else { u.arbitrary()? };
        let seq: u16 = u.arbitrary()?;
        let mut body = Vec::new();
        if kind == 22 {
            let msg = *u.choose(&[1u8, 2, 3, 11, 12, 13, 14, 15, 16, 20, 0])?;
            let msg = if msg == 0 { u.arbitrary()? } else { msg };
            let len = u.int_in_range(0..=400)?;
            let payload = u.bytes(len.min(u.len()))?.to_vec();
            let total = if u.ratio(3, 4)? {
                payload.len() as u32
            } else {
                u.int_in_range(0..=0xff_ffff)?
            };
            let offset: u32 = if u.ratio(3, 4)? {
                0
            } else {
                u.int_in_range(0..=total)?
            };
            let frag_len = if u.ratio(3, 4)? {
                payload.len() as u32
            } else {
                u.int_in_range(0..=0xff_ffff)?
            };
            body.push(msg);
            body.extend_from_slice(&total.to_be_bytes()[1..]);
            body.extend_from_slice(&u.int_in_range(0u16..=8)?.to_be_bytes());
            body.extend_from_slice(&offset.to_be_bytes()[1..]);
            body.extend_from_slice(&frag_len.to_be_bytes()[1..]);
            body.extend_from_slice(&payload);
        } else {
            let len = u.int_in_range(0..=64)?;
            body.extend_from_slice(u.bytes(len.min(u.len()))?);
        }
        let length = if u.ratio(7, 8)? {
            body.len() as u16
        } else {
            u.arbitrary()?
        };
        out.push(kind);
        out.extend_from_slice(&version);
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&body);
    }
    Ok(out)
}

/// The records of a datagram, split where their headers say (what does not parse is
/// kept as one last piece).
fn records(d: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = d;
    while rest.len() >= RECORD_HEADER {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        if rest.len() < RECORD_HEADER + len {
            break;
        }
        let (r, tail) = rest.split_at(RECORD_HEADER + len);
        out.push(r);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// A browser datagram with each unencrypted handshake record (epoch 0) that carries
/// one whole fragment split in two at a point the fuzzer picks, the pieces in order or
/// swapped: both in the one record (a record may carry several fragments; rtc-dtls
/// 0.21.1 cannot read those: its fragment buffer cuts by message length), or each in a
/// record of its own, the second with the next sequence number (which the browser's next
/// record then repeats: that one is dropped as a replay, and retransmitted).
fn refragment(u: &mut Unstructured, d: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for r in records(d) {
        let splittable = r.len() > RECORD_HEADER + HANDSHAKE_HEADER + 1
            && r[0] == 22
            && r[3..5] == [0, 0]
            && fragment_fills_record(r);
        if !splittable || !u.arbitrary()? {
            out.push(r.to_vec());
            continue;
        }
        let header = &r[..RECORD_HEADER];
        let hs = &r[RECORD_HEADER..RECORD_HEADER + HANDSHAKE_HEADER];
        let body = &r[RECORD_HEADER + HANDSHAKE_HEADER..];
        let offset = u32::from_be_bytes([0, hs[6], hs[7], hs[8]]);
        let at = u.int_in_range(1..=body.len() - 1)?;
        let mut fragments = Vec::new();
        for (start, part) in [(0, &body[..at]), (at, &body[at..])] {
            let mut f = hs[..6].to_vec();
            f.extend_from_slice(&(offset + start as u32).to_be_bytes()[1..]);
            f.extend_from_slice(&(part.len() as u32).to_be_bytes()[1..]);
            f.extend_from_slice(part);
            fragments.push(f);
        }
        if u.arbitrary()? {
            fragments.swap(0, 1);
        }
        let record = |body: &[u8]| {
            let mut p = header.to_vec();
            p[11..13].copy_from_slice(&(body.len() as u16).to_be_bytes());
            p.extend_from_slice(body);
            p
        };
        if u.arbitrary()? {
            out.push(record(&fragments.concat()));
        } else {
            let mut second = record(&fragments[1]);
            second[10] = second[10].wrapping_add(1);
            out.push(record(&fragments[0]));
            out.push(second);
        }
    }
    Ok(out)
}

/// The handshake header of record `r` says its fragment is exactly the record's body.
fn fragment_fills_record(r: &[u8]) -> bool {
    let hs = &r[RECORD_HEADER..RECORD_HEADER + HANDSHAKE_HEADER];
    let frag_len = u32::from_be_bytes([0, hs[9], hs[10], hs[11]]) as usize;
    frag_len == r.len() - RECORD_HEADER - HANDSHAKE_HEADER
}

/// A browser datagram with fuzzer bytes written into the body of one unencrypted
/// handshake message, headers untouched: parsing of ClientHello extensions, certificates,
/// key exchanges behind valid framing.
fn with_body_bytes(u: &mut Unstructured, d: Vec<u8>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(d.len());
    for r in records(&d) {
        let mut r = r.to_vec();
        let body_start = RECORD_HEADER + HANDSHAKE_HEADER;
        if r.len() > body_start && r[0] == 22 && r[3..5] == [0, 0] && u.arbitrary()? {
            let at = body_start + u.choose_index(r.len() - body_start)?;
            let n = u.int_in_range(1..=16)?.min(r.len() - at);
            let bytes = u.bytes(n.min(u.len()))?;
            r[at..at + bytes.len()].copy_from_slice(bytes);
        }
        out.extend_from_slice(&r);
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mut h = Handshake::new(first);
    let mut u = Unstructured::new(rest);
    for _ in 0..MAX_OPS {
        if u.is_empty() || h.step(&mut u).is_err() {
            break;
        }
    }
    h.finish();
});
