//! `density-load`: how many small meetings one media worker core carries (issue 15). It
//! starts ONE real media worker in this process on 127.0.0.1 (as `media-load` does) and
//! connects M meetings of three participants over real UDP sockets on loopback, each
//! participant a browser-like client with its own send and receive transport (ICE, DTLS,
//! SRTP through the test kit), at a meeting's real rates:
//! - each participant's send transport publishes Opus (50 packets/s, 100-byte payloads)
//!   and VP8 simulcast by RID with two encodings (`r0`: 15 frames/s of one 600-byte
//!   packet; `r1`: 30 frames/s of two 1000-byte packets, 60 packets/s), L1T3 temporal
//!   layers, key frames at the start, on request (PLI, FIR) and every `--key-frame-secs`;
//! - its receive transport consumes the other two participants' audio and video (four
//!   consumers; the worker picks the video layer);
//! - every stream is paced on its own at its real times, so the meetings' packets are
//!   spread over time: each meeting starts at a random time within `--spread-ms` (1 s:
//!   meetings do not start together, so neither do the worker's once-a-second rounds of
//!   each room), each stream at a random phase after that (the sender sleeps at least
//!   `--tick-us` between rounds and sends what is due);
//! - the clients act like Chromium at the RTCP level as far as it is cheap (below).
//!
//! ```text
//! cargo run --release -p kolabmeet-benches --bin density-load -- --meetings 10 --seconds 20
//! cargo run --release -p kolabmeet-benches --bin density-load -- --sweep
//! cargo run --release -p kolabmeet-benches --bin density-load -- --sweep --fifo   # shared machine
//! cargo run --release -p kolabmeet-benches --bin density-load -- --participants 6 --workers 2 --scale 3 --seconds 5
//! cargo run --release -p kolabmeet-benches --bin density-load -- --sweep-participants --workers 2 --scale split --fifo
//! ```
//!
//! Big rooms (issue 16): `--participants N` makes it ONE meeting of N participants (each
//! receiving the other N - 1; `--meetings` still multiplies it), `--workers W` starts W
//! media worker threads, and `--scale S` is `ROUTER_SCALE_SIZE` (peers per router before
//! the room spreads to another worker; `split`: N / W rounded up, an even split). Peers
//! placed on another worker than a producer get its packets through the engine's
//! in-memory pipes (a mirror of the producer there). The defaults (3 participants, 10
//! meetings, one worker, scale 16) are the issue-15 setup unchanged.
//!
//! What the clients do, as Chromium does: transport-wide sequence numbers on every packet
//! of a send transport (the extension the parameters negotiate); a sender report with
//! SDES CNAME per sent stream every 1 s for video and 5 s for audio (libwebrtc's report
//! intervals, each drawn in 0.5-1.5 times the interval); a key frame for every PLI or
//! FIR; on the receive side, the engine's own receive statistics per consumer
//! (`RecvStats`: loss, jitter, LSR/DLSR from the worker's sender reports) sent as a
//! receiver report with SDES every 1 s (video) or 5 s (audio), generic NACKs for gaps and
//! a PLI when a gap is too large, and transport-cc feedback (the engine's `TwccFeedback`,
//! every 100 ms, arrival times from the kernel's receive timestamps, probation packets
//! included) when the consumers negotiated the extension; ICE consent checks every 5 s on
//! every transport. What they do not do: answer NACKs with RTX (they keep no history;
//! NACKs received are counted), send their own bandwidth probes or padding, adapt their
//! send rate to the worker's feedback or REMB, make key frames larger than other frames,
//! drop MID and RID from packets once acknowledged, or decode anything.
//!
//! How each figure is measured, over a window after a warm-up (long enough for the
//! worker's bandwidth estimation to reach the top layer):
//! - forwarded packets/s: media RTP datagrams (consumer SSRCs, RTX included, probation
//!   packets counted apart) all receive transports got in the window, divided by its
//!   length; the video layer received is read from a tag the sender writes into each
//!   payload (so `r1` share = what the worker chose);
//! - worker CPU: the `media-worker-0` thread's run time from
//!   `/proc/self/task/<tid>/schedstat` over the window, as a fraction of one core (with
//!   several workers, the sum over every `media-worker-N` thread, and each one's share);
//!   CPU per meeting = that divided by M (ms of CPU per second, and % of a core); CPU per
//!   forwarded packet = worker CPU seconds / forwarded packets (everything the workers do
//!   included: receiving, RTCP, timers, probes, estimates, stats, the pipes between them);
//! - UDP GSO (with `KOLABMEET_UDP_GSO=1` in the environment, an experiment of the
//!   workers' send path): the datagrams the workers sent in segmented runs, and the runs;
//! - worker wake-ups: the worker thread's `voluntary_ctxt_switches` per second
//!   (`/proc/self/task/<tid>/status`; it sleeps only in `epoll_wait`), and the involuntary
//!   ones (preemptions);
//! - added latency: the kernel's receive timestamp at the receiving socket
//!   (`SO_TIMESTAMPNS`) minus the send time the publisher stamped into the payload just
//!   before protecting and sending it, over every `--decrypt-every`-th packet;
//! - loss: audio packets sent times two minus audio packets received (after a drain), and
//!   the gaps in every consumer's sequence numbers (the receive statistics' cumulative
//!   loss; the worker numbers what it forwards without gaps), with the kernel's drop
//!   counters saying where;
//! - sender lateness: the send stamp minus the packet's scheduled time (the load
//!   generator's own health: pacing holds while it stays well under a millisecond);
//! - what else ran: the time the worker thread waited for its CPU while runnable
//!   (`schedstat`), each CPU's busy, softirq and steal time (`/proc/stat`; steal is time
//!   the hypervisor gave to other guests, invisible to the guest's scheduler, which makes
//!   the worker slower without showing in its CPU time) and the load average; and, with
//!   `--timeline FILE`, the largest added latency of every 10 ms of the window (periodic
//!   stalls show there).
//!
//! On a machine shared with other work, `--fifo` runs the worker thread and the client
//! threads under `SCHED_FIFO` (worker above the sender above the receiver), so that other
//! processes do not delay them; it needs `CAP_SYS_NICE` and leaves other tasks only the
//! kernel's real-time throttling share (5 %) of CPUs the tool keeps busy (so a saturated
//! worker shows about 95 %, and the machine's other work crawls while a sweep overloads
//! it). Real-time threads of higher priority (Chromium's audio threads run at `SCHED_RR`
//! 8) still preempt them.
//!
//! `--sweep` runs this tool as child processes (one fresh worker each) for M = 10, 20, 40,
//! ... until p99 added latency passes `--p99-ms` (5 ms) or loss appears, then bisects
//! between the last M that met both and the first that did not. It reports the largest M
//! that met them on this machine, load generator included, and a projection to a whole
//! worker core (that M divided by the worker's CPU share there, when the worker was not
//! saturated). A step that misses while the hypervisor stole more than `--max-steal` % of
//! a CPU, or while the worker waited more than `--max-wait` ms/s for its CPU (other tasks
//! ran there), is run again (`--retries`); every step's steal and wait are shown (the
//! columns: M, forwarded packets/s, worker CPU %, worker CPU ms/s per meeting, µs per
//! forwarded packet, worker wake-ups/s, added latency p50/p99/max, packets lost, % of
//! video from `r1`, client threads' CPU %, sender lateness p99, steal %, worker wait ms/s). The worker thread runs
//! alone on the last CPU, the clients on the others (`--pin`, the default with 2+ CPUs);
//! W workers run on the last W CPUs, one each, when the machine has more than W CPUs,
//! else all together on the last one (on 2 CPUs: the workers share one core, as one
//! worker had it, and the clients keep the other).
//!
//! `--sweep-participants` does the same over N, the participants of one meeting on
//! `--workers` at `--scale` (`split` re-splits for every N): from `--from` (4), doubling,
//! then bisecting to the exact N (`--resolution` 0), and reports the largest N with no
//! loss and p99 added latency under `--p99-ms`, with the workers' CPU per forwarded
//! packet and each worker's share there. (The table and the search are in
//! `kolabmeet_benches::density`.)

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kolabmeet_benches::density::{self, Summary, SweepLimits, SweepOver};
use kolabmeet_benches::load::{
    CLIENT_FIFO, CpuWindow, LatencyHistogram, LoadShared, LoadSnapshot, Pinning, SENDER_FIFO,
    UdpDrops, client_socket, key_frame_requests, load_average, measure, measure_with, pause,
    realtime_ns, start_workers,
};
use kolabmeet_benches::overload::{OverloadReport, Phases, Seconds, StreamSeconds};
use kolabmeet_benches::sys::{MmsgReceiver, RECV_BATCH, raise_open_files, set_timer_slack};
use kolabmeet_benches::threads::{thread_cpu, worker_threads};
use kolabmeet_engine::crypto::SrtpSession;
use kolabmeet_engine::ortc::MediaKind;
use kolabmeet_engine::router::RecvStats;
use kolabmeet_engine::rtp_stream::ntp_from_unix;
use kolabmeet_engine::transport::{PROBATOR_SSRC, TwccFeedback};
use kolabmeet_engine::{MediaEngine, PeerId, ProducerId};
use kolabmeet_net::rtcp::{
    RtcpPacket, SenderReportData, is_rtcp, packets, write_nack, write_pli, write_receiver_report,
    write_sdes_cname, write_sender_report,
};
use kolabmeet_net::rtp::RtpHeader;
use kolabmeet_testkit::{
    Media, PacketMaker, TRANSPORT_CC_URI, UdpPeer, UdpWorker, consume_answer,
    consumer_extension_id, consumer_ssrc, create_room, opus_params, produce, read_stamp,
    simulcast_params,
};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One stream a participant sends.
#[derive(Debug, Clone, Copy)]
struct StreamSpec {
    name: &'static str,
    media: Media,
    rid: Option<&'static str>,
    pps: f64,
    payload: usize,
    packets_per_frame: u32,
    frame_ticks: u32,
    clock_rate: u32,
}

/// Opus, then the two simulcast encodings; a stream's index here is the tag its payloads
/// carry (the byte before the send stamp).
const STREAMS: [StreamSpec; 3] = [
    StreamSpec {
        name: "opus",
        media: Media::Opus,
        rid: None,
        pps: 50.0,
        payload: 100,
        packets_per_frame: 1,
        frame_ticks: 960,
        clock_rate: 48_000,
    },
    StreamSpec {
        name: "r0",
        media: Media::Vp8,
        rid: Some("r0"),
        pps: 15.0,
        payload: 600,
        packets_per_frame: 1,
        frame_ticks: 6000,
        clock_rate: 90_000,
    },
    StreamSpec {
        name: "r1",
        media: Media::Vp8,
        rid: Some("r1"),
        pps: 60.0,
        payload: 1000,
        packets_per_frame: 2,
        frame_ticks: 3000,
        clock_rate: 90_000,
    },
];
const OPUS: usize = 0;
const TOP: usize = 2;
/// Participants per meeting unless `--participants` says otherwise.
const PARTICIPANTS: usize = 3;
/// How often clients send ICE consent checks (Chromium: about every 5 s).
const CONSENT_NS: u64 = 5_000_000_000;
/// How often the sender reads what the worker sent its publishers.
const PUBLISHER_READ_NS: u64 = 5_000_000;
/// The byte before the send stamp: which stream a payload belongs to.
const TAG_FROM_END: usize = 9;
/// Socket buffers of each client socket.
const CLIENT_BUFFER: usize = 1 << 20;
/// The timeline's slots: 10 ms, at most an hour.
const TIMELINE_NS: u64 = 10_000_000;
const MAX_TIMELINE: usize = 360_000;
/// MID of the Opus producer (simulcast video has MID 0).
const OPUS_MID: &str = "1";

/// Command-line options.
#[derive(Debug, Clone)]
struct Opts {
    meetings: usize,
    /// Participants per meeting.
    participants: usize,
    /// Media worker threads.
    workers: usize,
    /// Peers per router (`ROUTER_SCALE_SIZE`).
    scale: Scale,
    seconds: f64,
    warmup: f64,
    decrypt_every: u64,
    batch_us: u64,
    tick_us: u64,
    spread_ms: u64,
    pin: bool,
    fifo: bool,
    aes_cm: bool,
    audio_rtcp_ms: u64,
    video_rtcp_ms: u64,
    key_frame_secs: f64,
    seed: u64,
    timeline: Option<String>,
    sweep: bool,
    sweep_participants: bool,
    from: Option<usize>,
    max: usize,
    p99_ms: f64,
    resolution: Option<f64>,
    max_steal: f64,
    max_wait: f64,
    retries: usize,
    /// The overload run: the meetings from `keep_meetings` on stop sending media this
    /// many whole seconds into the measured window.
    drop_at: Option<u64>,
    keep_meetings: usize,
    /// The top-layer share of the kept meetings' video that counts as back on top.
    top_target: f64,
}

/// `--scale`: peers per router, fixed or the room split evenly over the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// This many.
    Fixed(usize),
    /// The participants over the workers, rounded up (`--scale split`).
    Split,
}

impl Scale {
    /// The scale for a meeting of `participants` on `workers`.
    fn for_room(self, participants: usize, workers: usize) -> usize {
        match self {
            Scale::Fixed(n) => n,
            Scale::Split => participants.div_ceil(workers.max(1)),
        }
    }

    /// As `--scale` takes it.
    fn arg(self) -> String {
        match self {
            Scale::Fixed(n) => n.to_string(),
            Scale::Split => "split".into(),
        }
    }
}

fn parse_opts() -> Result<Opts, String> {
    let mut meetings = None;
    let mut o = Opts {
        meetings: 10,
        participants: PARTICIPANTS,
        workers: 1,
        scale: Scale::Fixed(kolabmeet_engine::worker::DEFAULT_ROUTER_SCALE_SIZE),
        seconds: 20.0,
        warmup: 8.0,
        decrypt_every: 1,
        batch_us: 2000,
        tick_us: 100,
        spread_ms: 1000,
        pin: std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
        fifo: false,
        aes_cm: false,
        audio_rtcp_ms: 5000,
        video_rtcp_ms: 1000,
        key_frame_secs: 100.0,
        seed: 15,
        timeline: None,
        sweep: false,
        sweep_participants: false,
        from: None,
        max: 5000,
        p99_ms: 5.0,
        resolution: None,
        max_steal: 3.0,
        max_wait: 50.0,
        retries: 2,
        drop_at: None,
        keep_meetings: 0,
        top_target: 0.9,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--meetings" => meetings = Some(num(&a, val()?)?),
            "--participants" => {
                o.participants = num(&a, val()?)?;
                // One big meeting, unless --meetings says how many.
                o.meetings = 1;
            }
            "--workers" => o.workers = num(&a, val()?)?,
            "--scale" => {
                o.scale = match val()?.as_str() {
                    "split" => Scale::Split,
                    v => Scale::Fixed(num(&a, v.to_owned())?),
                }
            }
            "--seconds" => o.seconds = num(&a, val()?)?,
            "--warmup" => o.warmup = num(&a, val()?)?,
            "--decrypt-every" => o.decrypt_every = num(&a, val()?)?,
            "--batch-us" => o.batch_us = num(&a, val()?)?,
            "--tick-us" => o.tick_us = num(&a, val()?)?,
            "--spread-ms" => o.spread_ms = num(&a, val()?)?,
            "--audio-rtcp-ms" => o.audio_rtcp_ms = num(&a, val()?)?,
            "--video-rtcp-ms" => o.video_rtcp_ms = num(&a, val()?)?,
            "--key-frame-secs" => o.key_frame_secs = num(&a, val()?)?,
            "--seed" => o.seed = num(&a, val()?)?,
            "--timeline" => o.timeline = Some(val()?),
            "--pin" => o.pin = true,
            "--no-pin" => o.pin = false,
            "--fifo" => o.fifo = true,
            "--srtp" => {
                o.aes_cm = match val()?.as_str() {
                    "chromium" => false,
                    "aes-cm" => true,
                    _ => return Err("--srtp takes chromium or aes-cm".into()),
                }
            }
            "--sweep" => o.sweep = true,
            "--sweep-participants" => o.sweep_participants = true,
            "--from" => o.from = Some(num(&a, val()?)?),
            "--max" => o.max = num(&a, val()?)?,
            "--p99-ms" => o.p99_ms = num(&a, val()?)?,
            "--resolution" => o.resolution = Some(num(&a, val()?)?),
            "--max-steal" => o.max_steal = num(&a, val()?)?,
            "--max-wait" => o.max_wait = num(&a, val()?)?,
            "--retries" => o.retries = num(&a, val()?)?,
            "--drop-at" => o.drop_at = Some(num(&a, val()?)?),
            "--keep-meetings" => o.keep_meetings = num(&a, val()?)?,
            "--top-target" => o.top_target = num(&a, val()?)?,
            "--help" | "-h" => {
                println!(
                    "density-load [--meetings 10] [--seconds 20 (measured)] [--warmup 8] [--decrypt-every 1 (latency from every Nth packet)] [--batch-us 2000 (receivers read every so often)] [--tick-us 100 (shortest sender sleep)] [--spread-ms 1000 (meetings start at random times within this)] [--audio-rtcp-ms 5000] [--video-rtcp-ms 1000] [--key-frame-secs 100] [--seed 15] [--timeline FILE (per 10 ms of the window: ms since start, largest added latency in us, samples)] [--srtp chromium|aes-cm] [--pin | --no-pin (worker thread alone on the last CPU, clients on the others; default with 2+ CPUs)] [--fifo (worker and client threads under SCHED_FIFO, so that other processes of a shared machine do not delay them)]\n\
                     density-load --participants N [--workers 1] [--scale 16 | split (ROUTER_SCALE_SIZE; split: N / workers rounded up)] [and the options above]: one meeting of N participants (--meetings 1 unless given) on W workers\n\
                     density-load --sweep [--from 10] [--max 5000] [--p99-ms 5] [--resolution 0.1 (bisect until within this fraction)] [--max-steal 3 (a step that misses while the hypervisor stole more than this % of a CPU...)] [--max-wait 50 (...or while the worker waited more than this many ms/s for its CPU is run again...)] [--retries 2 (...up to this many times)] [and the options above for every step]\n\
                     density-load --sweep-participants [--workers 1] [--scale 16 | split] [--from 4] [--max 5000] [--resolution 0 (exact)] [--p99-ms 5] [--max-steal 3] [--max-wait 50] [--retries 2] [and the options above for every step]: the largest N of one meeting with no loss and p99 under --p99-ms\n\
                     density-load --meetings M --drop-at S --keep-meetings K [--top-target 0.9] [and the options above]: the overload run: meetings K.. stop sending media S whole seconds into the window (--warmup whole seconds too); per second: the worker's shed level, the kept meetings' top-layer share, audio loss, silent video consumers, latency"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.sweep_participants {
        // One big meeting per step, unless --meetings says how many.
        o.meetings = 1;
    }
    if let Some(m) = meetings {
        o.meetings = m;
    }
    if o.meetings == 0 || o.seconds <= 0.0 || o.warmup < 0.0 || o.decrypt_every == 0 {
        return Err("need meetings >= 1, seconds > 0, warmup >= 0, decrypt-every >= 1".into());
    }
    if o.participants < 2 || o.workers == 0 || o.scale == Scale::Fixed(0) {
        return Err("need participants >= 2, workers >= 1, scale >= 1".into());
    }
    if o.drop_at.is_some_and(|d| d as f64 >= o.seconds) || o.keep_meetings > o.meetings {
        return Err("need --drop-at < --seconds and --keep-meetings <= --meetings".into());
    }
    if o.drop_at.is_some() && (o.warmup.fract() != 0.0 || o.sweep || o.sweep_participants) {
        return Err("--drop-at needs a whole --warmup and no sweep".into());
    }
    if o.sweep && o.sweep_participants {
        return Err("--sweep and --sweep-participants: one at a time".into());
    }
    let from = o.sweep_from();
    if from == 0 || o.max < from || o.key_frame_secs <= 0.0 {
        return Err("need 1 <= from <= max and key-frame-secs > 0".into());
    }
    Ok(o)
}

impl Opts {
    /// Where a sweep starts: `--from`, else 10 meetings or 4 participants.
    fn sweep_from(&self) -> usize {
        let default = if self.sweep_participants { 4 } else { 10 };
        self.from.unwrap_or(default)
    }

    /// How close a sweep bisects: `--resolution`, else within 10 % for meetings and to
    /// the exact N for participants.
    fn sweep_resolution(&self) -> f64 {
        let default = if self.sweep_participants { 0.0 } else { 0.1 };
        self.resolution.unwrap_or(default)
    }
}

/// The value of option `flag` as a number.
fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
    v.parse().map_err(|_| format!("bad value for {flag}: {v}"))
}

/// Nanoseconds from `start` to now.
fn elapsed_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// An RTCP interval drawn in 0.5-1.5 times `ms` (RFC 3550 §6.3.1, as libwebrtc does).
fn rtcp_interval(rng: &mut StdRng, ms: u64) -> u64 {
    (ms as f64 * 1e6 * rng.random_range(0.5..1.5)) as u64
}

// ---------------------------------------------------------------------------------------
// Publishers.

/// One stream of a send transport.
struct OutStream {
    maker: PacketMaker,
    interval_ns: u64,
    /// Scheduled time of its first packet and that packet's RTP timestamp (for SRs).
    first_due_ns: u64,
    first_ts: u32,
    next_key_frame_ns: u64,
    sent: u64,
    octets: u64,
    key_frames: u64,
    key_requests: u64,
}

/// A participant's send transport, as the sender thread drives it.
struct SendTransport {
    socket: UdpSocket,
    srtp: SrtpSession,
    binding: Vec<u8>,
    cname: String,
    streams: [OutStream; 3],
    tcc_seq: u16,
}

/// What the worker sent the publishers, by RTCP packet type.
#[derive(Debug, Default, Clone, Copy)]
struct RtcpCounts {
    sr: u64,
    rr: u64,
    sdes: u64,
    bye: u64,
    nack: u64,
    pli: u64,
    fir: u64,
    remb: u64,
    transport_cc: u64,
    other: u64,
}

impl RtcpCounts {
    fn count(&mut self, compound: &[u8]) {
        for p in packets(compound).map_while(Result::ok) {
            match p {
                RtcpPacket::SenderReport(_) => self.sr += 1,
                RtcpPacket::ReceiverReport(_) => self.rr += 1,
                RtcpPacket::Sdes(_) => self.sdes += 1,
                RtcpPacket::Bye(_) => self.bye += 1,
                RtcpPacket::Nack(_) => self.nack += 1,
                RtcpPacket::Pli(_) => self.pli += 1,
                RtcpPacket::Fir(_) => self.fir += 1,
                RtcpPacket::Remb(_) => self.remb += 1,
                RtcpPacket::TransportCc(_) => self.transport_cc += 1,
                RtcpPacket::Other(_) => self.other += 1,
            }
        }
    }

    fn text(&self, secs: f64) -> String {
        let r = |n: u64| n as f64 / secs;
        format!(
            "SR {:.0}/s, RR {:.0}/s, transport-cc {:.0}/s, SDES {:.0}/s, NACK {}, PLI {}, FIR {}, REMB {}, BYE {}, other {}",
            r(self.sr),
            r(self.rr),
            r(self.transport_cc),
            r(self.sdes),
            self.nack,
            self.pli,
            self.fir,
            self.remb,
            self.bye,
            self.other
        )
    }
}

/// What the sender thread did.
#[derive(Default)]
struct SendResult {
    transports: Vec<SendTransport>,
    lateness: LatencyHistogram,
    rtcp_in: RtcpCounts,
    sender_reports: u64,
    consent_checks: u64,
    send_errors: u64,
    undecryptable: u64,
}

/// The sender's timetable: what is due when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Rtp(usize),
    Report(usize),
    Consent,
}

struct SendPlan {
    /// Participants per meeting (they start together).
    participants: usize,
    tick_ns: u64,
    /// Meetings start at random times within this (their participants together).
    spread_ns: u64,
    key_frame_ns: u64,
    audio_rtcp_ms: u64,
    video_rtcp_ms: u64,
    seed: u64,
    /// The overload run: from this time on, the send transports from this index on send
    /// no more media.
    stop: Option<(Instant, usize)>,
}

fn sender(
    mut tx: Vec<SendTransport>,
    plan: SendPlan,
    shared: Arc<LoadShared>,
) -> io::Result<SendResult> {
    // Sleeps end within a few µs of their time, not the default 50 µs.
    let _ = set_timer_slack(1000);
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut poll = Poll::new()?;
    for (i, t) in tx.iter().enumerate() {
        poll.registry().register(
            &mut SourceFd(&t.socket.as_raw_fd()),
            Token(i),
            Interest::READABLE,
        )?;
    }
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let start_real = realtime_ns();
    let report_ms = |s: usize| {
        if s == OPUS {
            plan.audio_rtcp_ms
        } else {
            plan.video_rtcp_ms
        }
    };
    let stop = plan
        .stop
        .map(|(at, first)| (at.saturating_duration_since(start).as_nanos() as u64, first));
    let mut heap: BinaryHeap<Reverse<(u64, usize, Due)>> = BinaryHeap::new();
    let mut meeting_start = 0;
    for (i, t) in tx.iter_mut().enumerate() {
        if i % plan.participants == 0 {
            meeting_start = rng.random_range(0..plan.spread_ns.max(1));
        }
        for (s, st) in t.streams.iter_mut().enumerate() {
            let first = meeting_start + rng.random_range(0..st.interval_ns);
            st.first_due_ns = first;
            st.first_ts = st.maker.timestamp;
            st.next_key_frame_ns = first + plan.key_frame_ns;
            heap.push(Reverse((first, i, Due::Rtp(s))));
            let report = first + rtcp_interval(&mut rng, report_ms(s));
            heap.push(Reverse((report, i, Due::Report(s))));
        }
        heap.push(Reverse((rng.random_range(0..CONSENT_NS), i, Due::Consent)));
    }
    let mut r = SendResult::default();
    let mut buf: Vec<u8> = Vec::with_capacity(1500);
    let mut rbuf = vec![0u8; 2048];
    let mut next_read = 0u64;
    let mut sent_total = 0u64;
    while !shared.stop_send.load(Ordering::Relaxed) {
        let now_ns = elapsed_ns(start);
        let measuring = shared.measuring.load(Ordering::Relaxed);
        while let Some(&Reverse((due, i, what))) = heap.peek() {
            if due > now_ns {
                break;
            }
            heap.pop();
            let t = &mut tx[i];
            match what {
                Due::Rtp(s) => {
                    if stop.is_some_and(|(at, first)| i >= first && due >= at) {
                        // This meeting's load is gone: its streams are not scheduled again.
                        continue;
                    }
                    let st = &mut t.streams[s];
                    if STREAMS[s].media == Media::Vp8
                        && due >= st.next_key_frame_ns
                        && st.maker.at_frame_start()
                    {
                        st.next_key_frame_ns = due + plan.key_frame_ns;
                        st.maker.key_frame_next = true;
                    }
                    let key = st.maker.key_frame_next && st.maker.at_frame_start();
                    st.maker.tcc_seq = t.tcc_seq;
                    let stamp = realtime_ns();
                    st.maker.next(stamp, &mut buf);
                    t.tcc_seq = st.maker.tcc_seq;
                    let n = buf.len();
                    buf[n - TAG_FROM_END] = s as u8;
                    if measuring {
                        r.lateness.record_ns(stamp.saturating_sub(start_real + due));
                    }
                    let ok = t.srtp.protect_rtp(&mut buf).is_ok() && t.socket.send(&buf).is_ok();
                    if ok {
                        st.sent += 1;
                        st.octets += STREAMS[s].payload as u64;
                        st.key_frames += u64::from(key && STREAMS[s].media == Media::Vp8);
                        sent_total += 1;
                    } else {
                        r.send_errors += 1;
                    }
                    heap.push(Reverse((due + st.interval_ns, i, what)));
                }
                Due::Report(s) => {
                    let st = &t.streams[s];
                    if st.sent > 0 {
                        let now = start_real + due;
                        let ticks = (due - st.first_due_ns) as u128
                            * u128::from(STREAMS[s].clock_rate)
                            / 1_000_000_000;
                        buf.clear();
                        write_sender_report(
                            &mut buf,
                            &SenderReportData {
                                ssrc: st.maker.ssrc,
                                ntp: ntp_from_unix(Duration::from_nanos(now)),
                                rtp_time: st.first_ts.wrapping_add(ticks as u32),
                                packets: st.sent as u32,
                                octets: st.octets as u32,
                            },
                            &[],
                        );
                        write_sdes_cname(&mut buf, st.maker.ssrc, &t.cname);
                        if t.srtp.protect_rtcp(&mut buf).is_ok() && t.socket.send(&buf).is_ok() {
                            r.sender_reports += 1;
                        } else {
                            r.send_errors += 1;
                        }
                    }
                    let next = due + rtcp_interval(&mut rng, report_ms(s));
                    heap.push(Reverse((next, i, what)));
                }
                Due::Consent => {
                    if t.socket.send(&t.binding).is_ok() {
                        r.consent_checks += 1;
                    }
                    heap.push(Reverse((due + CONSENT_NS, i, what)));
                }
            }
        }
        shared.sent.store(sent_total, Ordering::Relaxed);
        if now_ns >= next_read {
            next_read = now_ns + PUBLISHER_READ_NS;
            read_publishers(&mut poll, &mut events, &mut tx, &mut rbuf, &mut r)?;
        }
        let next = heap
            .peek()
            .map_or(next_read, |Reverse((d, _, _))| *d)
            .min(next_read);
        let now2 = elapsed_ns(start);
        if next > now2 {
            // Not due yet: sleep, at least a tick (a round sends what came due meanwhile).
            std::thread::sleep(Duration::from_nanos((next - now2).max(plan.tick_ns)));
        }
    }
    r.transports = tx;
    Ok(r)
}

/// Reads what the worker sent the publishers (receiver reports, transport-cc feedback,
/// key frame requests, STUN responses); a key frame request makes the stream's next frame
/// a key frame.
fn read_publishers(
    poll: &mut Poll,
    events: &mut Events,
    tx: &mut [SendTransport],
    rbuf: &mut [u8],
    r: &mut SendResult,
) -> io::Result<()> {
    if let Err(e) = poll.poll(events, Some(Duration::ZERO))
        && e.kind() != io::ErrorKind::Interrupted
    {
        return Err(e);
    }
    let mut d = Vec::with_capacity(2048);
    for ev in events.iter() {
        let t = &mut tx[ev.token().0];
        loop {
            let n = match t.socket.recv(rbuf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if !is_rtcp(&rbuf[..n]) {
                continue; // STUN responses to consent checks
            }
            d.clear();
            d.extend_from_slice(&rbuf[..n]);
            if t.srtp.unprotect_rtcp(&mut d).is_err() {
                r.undecryptable += 1;
                continue;
            }
            r.rtcp_in.count(&d);
            for ssrc in key_frame_requests(&d) {
                if let Some(st) = t.streams.iter_mut().find(|s| s.maker.ssrc == ssrc) {
                    st.maker.key_frame_next = true;
                    st.key_requests += 1;
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Receivers.

/// One consumer on a receive transport.
struct InStream {
    ssrc: u32,
    video: bool,
    /// The SSRC Chromium's receive stream reports from.
    local_ssrc: u32,
    stats: RecvStats,
    next_report_ns: u64,
    rtp: u64,
    rtx: u64,
    /// Packets received in the window by the stream they came from (the payload's tag).
    window_by_stream: [u64; 3],
    /// The overload run's per-second bookkeeping of this consumer.
    secs: StreamSeconds,
}

/// A participant's receive transport, as the receiver thread drives it.
struct RecvTransport {
    socket: UdpSocket,
    srtp: SrtpSession,
    binding: Vec<u8>,
    cname: String,
    streams: Vec<InStream>,
    /// Transport-cc feedback and the extension's id, when the consumers negotiated it.
    twcc: Option<(TwccFeedback, u8)>,
    feedback_ssrc: u32,
    next_consent_ns: u64,
}

/// What the receiver thread did.
#[derive(Default)]
struct RecvResult {
    transports: Vec<RecvTransport>,
    hist: LatencyHistogram,
    rtcp_in: RtcpCounts,
    probes: u64,
    window_probes: u64,
    /// Per 10 ms of arrival time since the receiver started: the largest added latency
    /// (µs) and the samples.
    timeline: Vec<(u32, u32)>,
    unknown: u64,
    stun: u64,
    undecryptable: u64,
    no_kernel_stamp: u64,
    receiver_reports: u64,
    transport_cc: u64,
    nacks: u64,
    plis: u64,
    send_errors: u64,
    /// The overload run: what arrived, per second since its origin.
    seconds: Seconds,
}

struct RecvPlan {
    batch: Duration,
    decrypt_every: u64,
    audio_rtcp_ms: u64,
    video_rtcp_ms: u64,
    seed: u64,
    overload: Option<RecvOverload>,
}

/// The overload run, as the receiver files it.
#[derive(Clone, Copy)]
struct RecvOverload {
    /// Second 0 of the run.
    origin: Instant,
    /// Receive transports below this index belong to the kept meetings.
    kept: usize,
    phases: Phases,
}

fn receiver(
    mut rx_t: Vec<RecvTransport>,
    plan: RecvPlan,
    shared: Arc<LoadShared>,
) -> io::Result<RecvResult> {
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x5eed);
    let mut poll = Poll::new()?;
    for (i, t) in rx_t.iter().enumerate() {
        poll.registry().register(
            &mut SourceFd(&t.socket.as_raw_fd()),
            Token(i),
            Interest::READABLE,
        )?;
    }
    let start = Instant::now();
    let start_real = realtime_ns();
    for t in rx_t.iter_mut() {
        t.next_consent_ns = rng.random_range(0..CONSENT_NS);
        for st in t.streams.iter_mut() {
            let ms = if st.video {
                plan.video_rtcp_ms
            } else {
                plan.audio_rtcp_ms
            };
            st.next_report_ns = rtcp_interval(&mut rng, ms);
        }
    }
    let mut events = Events::with_capacity(1024);
    let mut mm = MmsgReceiver::new();
    let mut r = RecvResult::default();
    let mut scratch = Vec::with_capacity(2048);
    let mut out = Vec::with_capacity(1500);
    let mut feedback: Vec<Vec<u8>> = Vec::new();
    let mut nacks: Vec<u16> = Vec::new();
    let mut pli_wanted: Vec<usize> = Vec::new();
    while !shared.stop_recv.load(Ordering::Relaxed) {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(20)))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        let round = Instant::now();
        let round_real = realtime_ns();
        let measuring = shared.measuring.load(Ordering::Relaxed);
        let mut got = 0u64;
        for ev in events.iter() {
            let t = &mut rx_t[ev.token().0];
            pli_wanted.clear();
            loop {
                let n = mm.recv(&t.socket)?;
                for j in 0..n {
                    let (data, kernel) = mm.datagram(j);
                    let kernel = kernel.unwrap_or_else(|| {
                        r.no_kernel_stamp += 1;
                        round_real
                    });
                    let arrival = round
                        .checked_sub(Duration::from_nanos(round_real.saturating_sub(kernel)))
                        .unwrap_or(round);
                    let first = data.first().copied().unwrap_or(0);
                    if !(128..=191).contains(&first) {
                        r.stun += 1;
                        continue;
                    }
                    scratch.clear();
                    scratch.extend_from_slice(data);
                    if is_rtcp(data) {
                        if t.srtp.unprotect_rtcp(&mut scratch).is_err() {
                            r.undecryptable += 1;
                            continue;
                        }
                        r.rtcp_in.count(&scratch);
                        for p in packets(&scratch).map_while(Result::ok) {
                            if let RtcpPacket::SenderReport(sr) = p
                                && let Some(st) = t.streams.iter_mut().find(|s| s.ssrc == sr.ssrc())
                            {
                                st.stats.on_sender_report(arrival, sr.ntp(), sr.rtp_time());
                            }
                        }
                        continue;
                    }
                    let Ok(h) = RtpHeader::parse(data) else {
                        r.unknown += 1;
                        continue;
                    };
                    if let Some((twcc, id)) = t.twcc.as_mut()
                        && let Some(&[a, b]) = h.extension(data, *id)
                    {
                        twcc.on_packet(arrival, u16::from_be_bytes([a, b]), h.ssrc);
                    }
                    if h.ssrc == PROBATOR_SSRC {
                        r.probes += 1;
                        r.window_probes += u64::from(measuring);
                        continue;
                    }
                    let Some(k) = t
                        .streams
                        .iter()
                        .position(|s| s.ssrc == h.ssrc || s.ssrc.wrapping_add(1) == h.ssrc)
                    else {
                        r.unknown += 1;
                        continue;
                    };
                    got += 1;
                    let st = &mut t.streams[k];
                    if st.ssrc != h.ssrc {
                        // RTX: the original sequence number leads the decrypted payload.
                        st.rtx += 1;
                        if t.srtp.unprotect_rtp(&mut scratch).is_ok()
                            && let Ok(p) = h.payload(&scratch)
                            && p.len() >= 2
                        {
                            let osn = u16::from_be_bytes([p[0], p[1]]);
                            st.stats.on_retransmission(arrival, osn, false);
                        }
                        continue;
                    }
                    st.rtp += 1;
                    if st
                        .stats
                        .on_packet(arrival, h.sequence_number, h.timestamp, false)
                        && st.video
                    {
                        pli_wanted.push(k);
                    }
                    let second = plan.overload.map(|o| {
                        let sec = arrival.saturating_duration_since(o.origin).as_secs() as usize;
                        let kept = ev.token().0 < o.kept;
                        if !st.video {
                            st.secs.on_audio(h.sequence_number, sec, &mut r.seconds);
                        } else if kept || sec < o.phases.drop_at {
                            st.secs.on_video(sec, o.phases.measure_from, &mut r.seconds);
                        }
                        (sec, kept)
                    });
                    if !st.rtp.is_multiple_of(plan.decrypt_every) {
                        continue;
                    }
                    if t.srtp.unprotect_rtp(&mut scratch).is_err() {
                        r.undecryptable += 1;
                        continue;
                    }
                    if let (Some((sec, kept)), Some(stamp)) = (second, read_stamp(&scratch))
                        && let Some(bin) = r.seconds.at(sec)
                    {
                        bin.record_latency_ns(kernel.saturating_sub(stamp));
                        let tag = scratch.len().checked_sub(TAG_FROM_END).map(|i| scratch[i]);
                        if let Some(layer @ 1..=2) = tag.map(usize::from) {
                            let v = if kept {
                                &mut bin.kept_video
                            } else {
                                &mut bin.dropped_video
                            };
                            v[layer - 1] += 1;
                        }
                    }
                    if measuring && let Some(stamp) = read_stamp(&scratch) {
                        let added = kernel.saturating_sub(stamp);
                        r.hist.record_ns(added);
                        let slot = (kernel.saturating_sub(start_real) / TIMELINE_NS) as usize;
                        if slot < MAX_TIMELINE {
                            if r.timeline.len() <= slot {
                                r.timeline.resize(slot + 1, (0, 0));
                            }
                            let e = &mut r.timeline[slot];
                            e.0 = e.0.max((added / 1000).min(u64::from(u32::MAX)) as u32);
                            e.1 += 1;
                        }
                        if let Some(&tag) =
                            scratch.len().checked_sub(TAG_FROM_END).map(|i| &scratch[i])
                            && usize::from(tag) < STREAMS.len()
                        {
                            st.window_by_stream[usize::from(tag)] += 1;
                        }
                    }
                }
                if n < RECV_BATCH {
                    break;
                }
            }
            for &k in &pli_wanted {
                out.clear();
                write_pli(&mut out, t.streams[k].local_ssrc, t.streams[k].ssrc);
                if t.srtp.protect_rtcp(&mut out).is_ok() && t.socket.send(&out).is_ok() {
                    r.plis += 1;
                }
            }
        }
        shared.received.fetch_add(got, Ordering::Relaxed);
        // What is due: transport-cc feedback, receiver reports, NACKs, consent checks.
        let now = Instant::now();
        let now_ns = elapsed_ns(start);
        for t in rx_t.iter_mut() {
            if let Some((twcc, _)) = t.twcc.as_mut()
                && twcc.poll_timeout().is_some_and(|d| d <= now)
            {
                feedback.clear();
                twcc.poll_feedback(now, t.feedback_ssrc, &mut feedback);
                for fb in feedback.iter_mut() {
                    if t.srtp.protect_rtcp(fb).is_ok() && t.socket.send(fb).is_ok() {
                        r.transport_cc += 1;
                    } else {
                        r.send_errors += 1;
                    }
                }
            }
            for st in t.streams.iter_mut() {
                if st.stats.poll_timeout().is_some_and(|d| d <= now) {
                    nacks.clear();
                    st.stats.poll_nacks(now, &mut nacks);
                    if !nacks.is_empty() {
                        out.clear();
                        write_nack(&mut out, st.local_ssrc, st.ssrc, &nacks);
                        if t.srtp.protect_rtcp(&mut out).is_ok() && t.socket.send(&out).is_ok() {
                            r.nacks += 1;
                        }
                    }
                }
                if now_ns >= st.next_report_ns {
                    let ms = if st.video {
                        plan.video_rtcp_ms
                    } else {
                        plan.audio_rtcp_ms
                    };
                    st.next_report_ns = now_ns + rtcp_interval(&mut rng, ms);
                    out.clear();
                    let blocks: Vec<_> = st
                        .stats
                        .report(now, st.ssrc)
                        .map(|(b, _)| b)
                        .into_iter()
                        .collect();
                    write_receiver_report(&mut out, st.local_ssrc, &blocks);
                    write_sdes_cname(&mut out, st.local_ssrc, &t.cname);
                    if t.srtp.protect_rtcp(&mut out).is_ok() && t.socket.send(&out).is_ok() {
                        r.receiver_reports += 1;
                    } else {
                        r.send_errors += 1;
                    }
                }
            }
            if now_ns >= t.next_consent_ns {
                t.next_consent_ns = now_ns + CONSENT_NS;
                let _ = t.socket.send(&t.binding);
            }
        }
        // Read in batches: fewer wake-ups for the client (latency and transport-cc
        // arrival times come from the kernel's receive timestamps, not from this wait).
        if !plan.batch.is_zero() {
            std::thread::sleep(plan.batch);
        }
    }
    r.transports = rx_t;
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// One run.

/// A participant as set up: its two transports and its producers.
struct Participant {
    send: UdpPeer,
    recv: Option<UdpPeer>,
    audio: ProducerId,
    video: ProducerId,
    ssrcs: [u32; 3],
}

fn run(o: &Opts) -> Result<Summary, String> {
    let m = o.meetings;
    let n = o.participants;
    let participants = m * n;
    let sockets = (2 * participants) as u64;
    let nofile = raise_open_files(sockets + 256);
    if nofile < sockets + 64 {
        return Err(format!(
            "open file limit {nofile} is below the {sockets} sockets needed; raise it with ulimit -n"
        ));
    }
    let scale = o.scale.for_room(n, o.workers);
    let mut worker = start_workers(o.workers, scale, o.aes_cm)?;
    let worker_ports = worker.engine().ports();
    let per_participant_in: f64 = STREAMS.iter().map(|s| s.pps).sum();
    let per_receiver_top = (n - 1) as f64 * (STREAMS[OPUS].pps + STREAMS[TOP].pps);
    println!(
        "load: {m} meetings x {n} participants; each sends {} ({} packets/s) and receives the others' audio and video; offered {:.0} packets/s in, {:.0} packets/s out with every consumer on the top layer",
        STREAMS
            .iter()
            .map(|s| format!("{} {} pps x {} B", s.name, s.pps, s.payload))
            .collect::<Vec<_>>()
            .join(", "),
        per_participant_in,
        per_participant_in * participants as f64,
        per_receiver_top * participants as f64
    );

    // Set up: per meeting, each participant's send transport and producers, then each
    // one's receive transport consuming the others.
    let t0 = Instant::now();
    let mut people: Vec<Participant> = Vec::with_capacity(participants);
    let mut recv_consumers: Vec<Vec<(serde_json::Value, bool)>> = Vec::new();
    for meeting in 0..m {
        let room = create_room(&mut worker);
        let first = people.len();
        let mut peers = Vec::new();
        for p in 0..n {
            let peer = PeerId::random();
            let send = worker.connect_transport(room, peer)?;
            let base = 0x2000_0000 + ((first + p) as u32) * 16;
            let ssrcs = [base, base + 2, base + 4];
            let audio = produce(
                &mut worker,
                &send,
                MediaKind::Audio,
                opus_params(ssrcs[OPUS], OPUS_MID),
            )?;
            let video = produce(&mut worker, &send, MediaKind::Video, simulcast_params())?;
            peers.push(peer);
            people.push(Participant {
                send,
                recv: None,
                audio,
                video,
                ssrcs,
            });
        }
        for p in 0..n {
            let recv = worker.connect_transport(room, peers[p])?;
            let mut consumers = Vec::new();
            for q in (0..n).filter(|&q| q != p) {
                let (audio, video) = (people[first + q].audio, people[first + q].video);
                consumers.push((consume_answer(&mut worker, &recv, audio)?.1, false));
                consumers.push((consume_answer(&mut worker, &recv, video)?.1, true));
            }
            people[first + p].recv = Some(recv);
            recv_consumers.push(consumers);
        }
        worker.drain_events();
        if (meeting + 1) % 50 == 0 {
            eprintln!("setup: {} of {m} meetings", meeting + 1);
        }
        if o.workers > 1 {
            println!(
                "placement: meeting {meeting} on workers {:?} (at most {scale} peers per router)",
                worker.engine().workers_of(&room)
            );
        }
    }
    println!(
        "setup: {} transports connected (ICE, DTLS, SRTP), {} producers and {} consumers created in {:.1} s",
        2 * participants,
        2 * participants,
        2 * (n - 1) * participants,
        t0.elapsed().as_secs_f64()
    );
    let first_answer = &recv_consumers[0];
    println!(
        "negotiated: video consumer type {}, transport-cc on video consumers: {}, on audio consumers: {}",
        first_answer[1].0["type"],
        consumer_extension_id(&first_answer[1].0, TRANSPORT_CC_URI).is_some(),
        consumer_extension_id(&first_answer[0].0, TRANSPORT_CC_URI).is_some()
    );

    // The clients' state, handed to their threads. A receiver's own SSRCs: one per
    // consumer and one for feedback, in a block per participant (16 up to 7 consumers).
    let stride = (2 * n as u32).next_power_of_two().max(16);
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut send_transports = Vec::with_capacity(participants);
    let mut recv_transports = Vec::with_capacity(participants);
    let (mut send_ports, mut recv_ports) = (Vec::new(), Vec::new());
    for (g, (mut p, consumers)) in people.into_iter().zip(recv_consumers).enumerate() {
        send_ports.push(client_socket(&p.send.client.socket, CLIENT_BUFFER, false)?);
        let cname = format!("participant-{g}");
        let streams = std::array::from_fn(|s| {
            let spec = STREAMS[s];
            let mut maker = PacketMaker::new(spec.media, p.ssrcs[s], spec.payload);
            maker.packets_per_frame = spec.packets_per_frame;
            maker.frame_ticks = spec.frame_ticks;
            maker.timestamp = rng.random();
            maker.seq = rng.random();
            if spec.media == Media::Vp8 {
                maker.temporal_layers = 3;
                maker.rid = spec.rid.map(str::to_owned);
            } else {
                maker.mid = OPUS_MID.to_owned();
            }
            OutStream {
                maker,
                interval_ns: (1e9 / spec.pps) as u64,
                first_due_ns: 0,
                first_ts: 0,
                next_key_frame_ns: 0,
                sent: 0,
                octets: 0,
                key_frames: 0,
                key_requests: 0,
            }
        });
        send_transports.push(SendTransport {
            srtp: p
                .send
                .client
                .browser
                .take_srtp()
                .ok_or("publisher without SRTP")?,
            binding: p.send.client.browser.binding_request(),
            socket: p.send.client.socket,
            cname: cname.clone(),
            streams,
            tcc_seq: rng.random(),
        });
        let mut recv = p
            .recv
            .take()
            .ok_or("participant without receive transport")?;
        recv_ports.push(client_socket(&recv.client.socket, CLIENT_BUFFER, true)?);
        let mut twcc_ext = None;
        let streams = consumers
            .iter()
            .enumerate()
            .map(|(k, (answer, video))| {
                if let Some(id) = consumer_extension_id(answer, TRANSPORT_CC_URI) {
                    twcc_ext = Some(id);
                }
                let clock = if *video { 90_000 } else { 48_000 };
                InStream {
                    ssrc: consumer_ssrc(answer),
                    video: *video,
                    local_ssrc: 0x4000_0000 + (g as u32) * stride + k as u32,
                    stats: RecvStats::new(clock, true),
                    next_report_ns: 0,
                    rtp: 0,
                    rtx: 0,
                    window_by_stream: [0; 3],
                    secs: StreamSeconds::default(),
                }
            })
            .collect();
        recv_transports.push(RecvTransport {
            srtp: recv
                .client
                .browser
                .take_srtp()
                .ok_or("receiver without SRTP")?,
            binding: recv.client.browser.binding_request(),
            socket: recv.client.socket,
            cname,
            streams,
            twcc: twcc_ext.map(|id| (TwccFeedback::new(), id)),
            feedback_ssrc: 0x4000_0000 + (g as u32) * stride + stride - 1,
            next_consent_ns: 0,
        });
    }
    println!(
        "srtp: {} (negotiated by every transport)",
        send_transports[0].srtp.profile().name()
    );

    // Client threads: one sender, one receiver.
    let pinning = Arc::new(Pinning::worker_alone(o.pin, o.fifo)?);
    let (cpus, worker_cpus) = (pinning.cpus, pinning.worker_cpus);
    println!("threads: {}", pinning.description);
    let shared = Arc::new(LoadShared::default());
    let drops0 = UdpDrops::take();
    let (sh, pin) = (shared.clone(), pinning.clone());
    // The overload run's seconds count from here (the threads start now, the warm-up
    // right after).
    let origin = Instant::now();
    let overload = o.drop_at.map(|d| {
        let measure_from = o.warmup as usize;
        RecvOverload {
            origin,
            kept: o.keep_meetings * n,
            phases: Phases {
                measure_from,
                drop_at: measure_from + d as usize,
                end: measure_from + o.seconds as usize,
            },
        }
    });
    let recv_plan = RecvPlan {
        batch: Duration::from_micros(o.batch_us),
        decrypt_every: o.decrypt_every,
        audio_rtcp_ms: o.audio_rtcp_ms,
        video_rtcp_ms: o.video_rtcp_ms,
        seed: o.seed,
        overload,
    };
    let receive_thread = std::thread::Builder::new()
        .name("load-recv".into())
        .spawn(move || {
            pin.pin_client(CLIENT_FIFO);
            receiver(recv_transports, recv_plan, sh)
        })
        .map_err(|e| e.to_string())?;
    let sh = shared.clone();
    let send_plan = SendPlan {
        participants: n,
        tick_ns: o.tick_us * 1000,
        spread_ns: o.spread_ms * 1_000_000,
        key_frame_ns: (o.key_frame_secs * 1e9) as u64,
        audio_rtcp_ms: o.audio_rtcp_ms,
        video_rtcp_ms: o.video_rtcp_ms,
        seed: o.seed,
        stop: overload.map(|ov| {
            (
                origin + Duration::from_secs(ov.phases.drop_at as u64),
                ov.kept,
            )
        }),
    };
    let send_thread = std::thread::Builder::new()
        .name("load-send".into())
        .spawn(move || {
            pinning.pin_client(SENDER_FIFO);
            sender(send_transports, send_plan, sh)
        })
        .map_err(|e| e.to_string())?;

    // Warm up, then measure.
    let load_before = load_average();
    let mut shed_log: Vec<(usize, u8)> = Vec::new();
    let mut cpu_log: Vec<(usize, f64)> = Vec::new();
    let (a, b) = if overload.is_some() {
        measure_sampling_shed(&mut worker, &shared, o, origin, &mut shed_log, &mut cpu_log)
    } else {
        measure(&mut worker, &shared, o.warmup, o.seconds)
    };
    let sent = send_thread
        .join()
        .map_err(|_| "sender panicked")?
        .map_err(|e| format!("sender: {e}"))?;
    // Let what is in flight arrive.
    pause(&mut worker, 0.5);
    shared.stop_recv.store(true, Ordering::Relaxed);
    let mut got = receive_thread
        .join()
        .map_err(|_| "receiver panicked")?
        .map_err(|e| format!("receiver: {e}"))?;
    let drops1 = UdpDrops::take();
    let load_after = load_average();

    // Figures.
    let cpu = CpuWindow::between(&a.cpu, &b.cpu);
    let window = cpu.window;
    let forwarded = (b.received - a.received) as f64;
    let forwarded_pps = forwarded / window;
    let in_pps = (b.sent - a.sent) as f64 / window;
    let cpu_per_meeting = cpu.worker / m as f64;
    let us_per_packet = if forwarded > 0.0 {
        cpu.worker * window * 1e6 / forwarded
    } else {
        f64::NAN
    };
    let mut by_stream_sent = [0u64; 3];
    let (mut key_frames, mut key_requests) = (0, 0);
    for t in &sent.transports {
        for (s, st) in t.streams.iter().enumerate() {
            by_stream_sent[s] += st.sent;
            key_frames += st.key_frames;
            key_requests += st.key_requests;
        }
    }
    let mut audio_received = 0;
    let mut video_lost = 0i64;
    let mut video_received = 0;
    let (mut rtx, mut window_layers) = (0, [0u64; 3]);
    let (mut on_top, mut on_low, mut on_none) = (0, 0, 0);
    let now = Instant::now();
    for t in got.transports.iter_mut() {
        for st in t.streams.iter_mut() {
            rtx += st.rtx;
            if !st.video {
                audio_received += st.stats.received;
                continue;
            }
            video_received += st.rtp;
            if let Some((block, _)) = st.stats.report(now, st.ssrc) {
                video_lost += i64::from(block.cumulative_lost);
            }
            for (w, x) in window_layers.iter_mut().zip(st.window_by_stream) {
                *w += x;
            }
            let [_, low, top] = st.window_by_stream;
            match (low, top) {
                (0, 0) => on_none += 1,
                (l, t) if t >= l => on_top += 1,
                _ => on_low += 1,
            }
        }
    }
    let audio_expected = by_stream_sent[OPUS] * (n as u64 - 1);
    let audio_lost = audio_expected.saturating_sub(audio_received);
    let lost = audio_lost + video_lost.max(0) as u64;
    let video_window: u64 = window_layers[1..].iter().sum();
    let top_pct = if video_window > 0 {
        window_layers[TOP] as f64 * 100.0 / video_window as f64
    } else {
        0.0
    };
    let hist = &got.hist;
    let wakeups = cpu.worker_switches.map_or(f64::NAN, |(v, _)| v);
    let summary = Summary {
        meetings: m,
        participants: n,
        workers: o.workers,
        scale,
        worker_cpus,
        forwarded_pps,
        worker_cpu_pct: cpu.worker * 100.0,
        worker_pcts: cpu.workers.iter().map(|(_, c)| c * 100.0).collect(),
        cpu_ms_per_meeting: cpu_per_meeting * 1000.0,
        us_per_packet,
        wakeups_per_s: wakeups,
        p50_ms: hist.percentile_ms(0.5),
        p99_ms: hist.percentile_ms(0.99),
        max_ms: hist.percentile_ms(1.0),
        lost,
        top_layer_pct: top_pct,
        clients_cpu_pct: cpu.clients * 100.0,
        late_p99_ms: sent.lateness.percentile_ms(0.99),
        worker_wait_ms: cpu.worker_wait * 1000.0,
        load1: load_after
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
        steal_pct: cpu.steal.iter().copied().fold(0.0, f64::max) * 100.0,
    };
    let total_sent: u64 = by_stream_sent.iter().sum();
    println!("window: {window:.2} s after {:.1} s of warm-up", o.warmup);
    println!(
        "publishers sent: {in_pps:.0} packets/s in the window ({total_sent} in all: opus {}, r0 {}, r1 {}; {} send errors); {key_frames} key frames ({key_requests} key frame requests answered); {} sender reports, {} consent checks",
        by_stream_sent[0],
        by_stream_sent[1],
        by_stream_sent[2],
        sent.send_errors + got.send_errors,
        sent.sender_reports,
        sent.consent_checks
    );
    println!(
        "sender lateness (send stamp minus scheduled time): p50 {} p99 {} max {}",
        sent.lateness.fmt(0.5),
        sent.lateness.fmt(0.99),
        sent.lateness.fmt(1.0)
    );
    println!(
        "forwarded: {forwarded_pps:.0} media packets/s received by all receive transports ({:.0} per meeting); probation packets {:.0}/s; RTX {rtx} in all",
        forwarded_pps / m as f64,
        got.window_probes as f64 / window
    );
    println!(
        "video layer received in the window: r1 (60 pps) {:.1} % of video packets, r0 (15 pps) {:.1} %; video consumers mostly on r1: {on_top}, on r0: {on_low}, with nothing: {on_none} (of {})",
        top_pct,
        100.0 - top_pct,
        on_top + on_low + on_none
    );
    println!(
        "worker cpu: {:.2} % of one core ({}); it waited {:.2} ms/s for its CPU while runnable (other tasks there)",
        cpu.worker * 100.0,
        cpu.method,
        cpu.worker_wait * 1000.0
    );
    if cpu.workers.len() > 1 {
        println!(
            "worker cpu by worker: {} (shares {} of the workers' CPU)",
            cpu.workers
                .iter()
                .map(|(i, c)| format!("media-worker-{i} {:.2} %", c * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
            summary.worker_shares()
        );
    }
    println!(
        "cpu per meeting: {:.3} ms of worker CPU per second ({:.3} % of a core); per forwarded packet: {us_per_packet:.2} us",
        cpu_per_meeting * 1000.0,
        cpu_per_meeting * 100.0
    );
    match cpu.worker_switches {
        Some((v, n)) => println!(
            "worker wake-ups: {v:.0}/s voluntary context switches ({:.1} per meeting per second, {:.2} forwarded packets per wake-up), {n:.0}/s involuntary",
            v / m as f64,
            forwarded_pps / v.max(1.0)
        ),
        None => println!("worker wake-ups: n/a (worker thread not found)"),
    }
    if b.gso.0 > 0 {
        let (segments, runs) = (b.gso.0 - a.gso.0, b.gso.1 - a.gso.1);
        println!(
            "udp gso (KOLABMEET_UDP_GSO): {:.0} datagrams/s sent in {:.0} runs/s ({:.1} per run)",
            segments as f64 / window,
            runs as f64 / window,
            segments as f64 / runs.max(1) as f64
        );
    }
    println!(
        "client threads cpu: {:.1} % ({}), waited {:.2} ms/s for a CPU; whole process {:.1} %",
        cpu.clients * 100.0,
        cpu.breakdown.join(", "),
        cpu.clients_wait * 1000.0,
        cpu.process * 100.0,
    );
    println!(
        "machine: {cpus} CPUs, in the window {}; load average {load_before} before the run, {load_after} after",
        cpu.machine.join(", ")
    );
    println!(
        "rtcp the worker sent publishers (whole run, {:.1} s): {}",
        o.warmup + o.seconds,
        sent.rtcp_in.text(o.warmup + o.seconds)
    );
    println!(
        "rtcp the worker sent receivers: {}",
        got.rtcp_in.text(o.warmup + o.seconds)
    );
    println!(
        "rtcp the receivers sent: {} receiver reports, {} transport-cc feedback, {} NACK, {} PLI",
        got.receiver_reports, got.transport_cc, got.nacks, got.plis
    );
    println!(
        "added latency: p50 {} p90 {} p99 {} p99.9 {} max {} ({} samples, every {} packet(s) per consumer; kernel rx timestamp minus send stamp)",
        hist.fmt(0.5),
        hist.fmt(0.9),
        hist.fmt(0.99),
        hist.fmt(0.999),
        hist.fmt(1.0),
        hist.count(),
        o.decrypt_every
    );
    println!(
        "loss: {lost} packets: audio {audio_lost} of {audio_expected} expected ({audio_received} received), video {video_lost} by sequence gaps ({video_received} received); {} undecryptable, {} unknown SSRC, {} without kernel timestamp",
        sent.undecryptable + got.undecryptable,
        got.unknown,
        got.no_kernel_stamp
    );
    println!(
        "kernel drops: worker socket {}, receive sockets {}, send sockets {}; UDP RcvbufErrors {} SndbufErrors {} InErrors {} (whole machine)",
        drops1.at_ports(&drops0, &worker_ports),
        drops1.at_ports(&drops0, &recv_ports),
        drops1.at_ports(&drops0, &send_ports),
        drops1.snmp(&drops0, "RcvbufErrors"),
        drops1.snmp(&drops0, "SndbufErrors"),
        drops1.snmp(&drops0, "InErrors")
    );
    let slots: Vec<&(u32, u32)> = got.timeline.iter().filter(|e| e.1 > 0).collect();
    let over = |ms: f64| {
        slots
            .iter()
            .filter(|e| f64::from(e.0) > ms * 1000.0)
            .count()
    };
    println!(
        "latency over time: of {} 10-ms slots in the window, {} had a packet over 1 ms, {} over {} ms",
        slots.len(),
        over(1.0),
        over(o.p99_ms),
        o.p99_ms
    );
    if let Some(path) = &o.timeline {
        let text: String = got
            .timeline
            .iter()
            .enumerate()
            .filter(|(_, e)| e.1 > 0)
            .map(|(i, e)| format!("{} {} {}\n", i as u64 * TIMELINE_NS / 1_000_000, e.0, e.1))
            .collect();
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    println!("worker events seen: {}", worker.events_seen);
    if let Some(ov) = overload {
        overload_report(&mut got, ov, &shed_log, &cpu_log, o.top_target);
    }
    println!("{}", summary.line());
    Ok(summary)
}

/// `measure`, sampling the workers' highest shed level every 250 ms on the way (the
/// second of the run and the level, when it changed) and their CPU time (per second of
/// the run, the fraction of a core their threads ran).
fn measure_sampling_shed(
    worker: &mut UdpWorker,
    shared: &LoadShared,
    o: &Opts,
    origin: Instant,
    log: &mut Vec<(usize, u8)>,
    cpu: &mut Vec<(usize, f64)>,
) -> (LoadSnapshot, LoadSnapshot) {
    let run_ns = || -> u64 {
        worker_threads(&thread_cpu())
            .iter()
            .map(|(_, t)| t.run_ns)
            .sum()
    };
    let mut second = (
        origin.elapsed().as_secs() as usize,
        Instant::now(),
        run_ns(),
    );
    measure_with(worker, shared, o.warmup, o.seconds, |worker| {
        let now_second = origin.elapsed().as_secs() as usize;
        if now_second != second.0 {
            let (ns, at) = (run_ns(), Instant::now());
            let wall = at.saturating_duration_since(second.1).as_nanos().max(1) as f64;
            cpu.push((second.0, ns.saturating_sub(second.2) as f64 / wall));
            second = (now_second, at, ns);
        }
        let level = worker
            .engine()
            .worker_stats()
            .iter()
            .map(|w| w.shed_level)
            .max()
            .unwrap_or(0);
        if log.last().is_none_or(|&(_, l)| l != level) {
            log.push((now_second, level));
        }
    })
}

/// Prints the overload run's figures and its timeline.
fn overload_report(
    got: &mut RecvResult,
    ov: RecvOverload,
    shed: &[(usize, u8)],
    cpu: &[(usize, f64)],
    target: f64,
) {
    let p = ov.phases;
    for (g, t) in got.transports.iter().enumerate() {
        let until = if g < ov.kept { p.end } else { p.drop_at };
        for st in t.streams.iter().filter(|s| s.video) {
            st.secs
                .finish_video(p.measure_from, until, &mut got.seconds);
        }
    }
    let r = OverloadReport::new(&got.seconds, p, shed, cpu, target);
    print!("overload timeline (seconds from the drop):\n{}", r.timeline);
    let fmt = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.1}"));
    println!(
        "overloaded ({} s): workers' CPU {} % of a core; audio lost {} of {} received; video consumer-seconds with nothing {}; added latency p99 {} ms (worst second {} ms); kept meetings' video from r1 {} %",
        p.drop_at - p.measure_from,
        fmt(r.cpu_overloaded.map(|x| x * 100.0)),
        r.audio_lost_overloaded,
        r.audio_received_overloaded,
        r.silent_overloaded,
        fmt(r.p99_overloaded_ms),
        fmt(r.worst_second_p99_ms),
        fmt(r.kept_top_overloaded.map(|x| x * 100.0)),
    );
    println!(
        "after the drop ({} s): kept meetings' video back on r1 (>= {:.0} % of its packets, every later second) after {}; audio lost {}",
        p.end - p.drop_at,
        target * 100.0,
        r.back_on_top_after_s
            .map_or("never".to_owned(), |s| format!("{s} s")),
        r.audio_lost_after
    );
}

// ---------------------------------------------------------------------------------------
// The sweep.

/// One step of a sweep: a child run of this tool with `meetings` of `participants`.
fn step(o: &Opts, meetings: usize, participants: usize) -> Result<Summary, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--participants", &participants.to_string()])
        .args(["--meetings", &meetings.to_string()])
        .args(["--workers", &o.workers.to_string()])
        .args(["--scale", &o.scale.arg()])
        .args(["--seconds", &o.seconds.to_string()])
        .args(["--warmup", &o.warmup.to_string()])
        .args(["--decrypt-every", &o.decrypt_every.to_string()])
        .args(["--batch-us", &o.batch_us.to_string()])
        .args(["--tick-us", &o.tick_us.to_string()])
        .args(["--spread-ms", &o.spread_ms.to_string()])
        .args(["--audio-rtcp-ms", &o.audio_rtcp_ms.to_string()])
        .args(["--video-rtcp-ms", &o.video_rtcp_ms.to_string()])
        .args(["--key-frame-secs", &o.key_frame_secs.to_string()])
        .args(["--seed", &o.seed.to_string()])
        .arg(if o.pin { "--pin" } else { "--no-pin" })
        .args(o.fifo.then_some("--fifo"))
        .args(["--srtp", if o.aes_cm { "aes-cm" } else { "chromium" }]);
    let out = cmd.output().map_err(|e| format!("run a step: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.lines().find_map(Summary::parse);
    match summary {
        Some(s) if out.status.success() => Ok(s),
        _ => Err(format!(
            "step with {meetings} meetings of {participants} failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// The limits a sweep's steps must meet, from the options.
fn limits(o: &Opts) -> SweepLimits {
    SweepLimits {
        from: o.sweep_from(),
        max: o.max,
        resolution: o.sweep_resolution(),
        p99_ms: o.p99_ms,
        max_steal: o.max_steal,
        max_wait: o.max_wait,
        retries: o.retries,
    }
}

/// `--sweep`: the largest M of meetings of `--participants` (three) on the workers.
fn sweep(o: &Opts) -> Result<(), String> {
    let limits = limits(o);
    println!(
        "sweep: M meetings of {} from {} up (doubling, then bisecting to {:.0} %), until p99 added latency > {} ms or loss; {} s measured after {} s warm-up per step, each a fresh worker in a child process",
        o.participants,
        limits.from,
        limits.resolution * 100.0,
        o.p99_ms,
        o.seconds,
        o.warmup
    );
    let r = density::sweep(&limits, SweepOver::Meetings, |m| step(o, m, o.participants))?;
    println!();
    let Some(best) = r.pass else {
        println!(
            "result: even {} meetings missed the limits ({})",
            limits.from,
            r.steps
                .first()
                .and_then(|s| s.1.clone())
                .unwrap_or_default()
        );
        return Ok(());
    };
    let s = r.best(SweepOver::Meetings).cloned().unwrap_or_default();
    let share = s.worker_cpu_pct / 100.0;
    println!(
        "result: largest M on this machine with the load generator included: {best} meetings (p99 {:.3} ms, no loss, worker at {:.1} % of its core, clients at {:.1} % of theirs){}",
        s.p99_ms,
        s.worker_cpu_pct,
        s.clients_cpu_pct,
        match r.fail {
            Some(f) => format!("; {f} missed"),
            None => format!("; stopped at --max {}", o.max),
        }
    );
    if !s.saturated() && share > 0.0 {
        println!(
            "projection: {:.0} meetings per worker core = {best} / {share:.3} (the worker was not saturated; linear in its CPU, an estimate, not measured)",
            best as f64 / share
        );
    } else {
        println!("meetings per core: {best} (the worker was saturated: measured, not projected)");
    }
    println!(
        "cpu per meeting at that M: {:.3} ms/s ({:.3} % of a core), {:.2} us per forwarded packet",
        s.cpu_ms_per_meeting,
        s.cpu_ms_per_meeting / 10.0,
        s.us_per_packet
    );
    Ok(())
}

/// `--sweep-participants`: the largest N of one meeting (of `--meetings`, one unless
/// given) on `--workers` at `--scale`.
fn sweep_participants(o: &Opts) -> Result<(), String> {
    let limits = limits(o);
    let scale = match o.scale {
        Scale::Fixed(s) => format!("ROUTER_SCALE_SIZE {s}"),
        Scale::Split => format!("ROUTER_SCALE_SIZE N/{} rounded up", o.workers),
    };
    println!(
        "sweep: {} meeting(s) of N participants on {} worker(s), {scale}, N from {} up (doubling, then bisecting to {}), until p99 added latency > {} ms or loss; {} s measured after {} s warm-up per step, each fresh workers in a child process",
        o.meetings,
        o.workers,
        limits.from,
        if limits.resolution > 0.0 {
            format!("{:.0} %", limits.resolution * 100.0)
        } else {
            "the exact N".to_owned()
        },
        o.p99_ms,
        o.seconds,
        o.warmup
    );
    let r = density::sweep(&limits, SweepOver::Participants, |n| step(o, o.meetings, n))?;
    println!();
    let Some(best) = r.pass else {
        println!(
            "result: even {} participants missed the limits ({})",
            limits.from,
            r.steps
                .first()
                .and_then(|s| s.1.clone())
                .unwrap_or_default()
        );
        return Ok(());
    };
    let s = r.best(SweepOver::Participants).cloned().unwrap_or_default();
    println!(
        "result: largest N on this machine with the load generator included: {best} participants on {} worker(s), ROUTER_SCALE_SIZE {} (p99 {:.3} ms, no loss, {:.0} packets/s forwarded, r1 {:.1} % of video, workers at {:.1} % of a core{}, clients at {:.1} %){}",
        s.workers,
        s.scale,
        s.p99_ms,
        s.forwarded_pps,
        s.top_layer_pct,
        s.worker_cpu_pct,
        if s.worker_pcts.len() > 1 {
            format!(" together, shares {}", s.worker_shares())
        } else {
            String::new()
        },
        s.clients_cpu_pct,
        match r.fail {
            Some(f) => format!("; {f} missed"),
            None => format!("; stopped at --max {}", o.max),
        }
    );
    println!(
        "cpu per forwarded packet at that N: {:.2} us (all workers' CPU / packets the receivers got); {:.0} worker wake-ups/s",
        s.us_per_packet, s.wakeups_per_s
    );
    Ok(())
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("density-load: {e}");
            std::process::exit(2);
        }
    };
    let result = if opts.sweep {
        sweep(&opts)
    } else if opts.sweep_participants {
        sweep_participants(&opts)
    } else {
        run(&opts).map(|_| ())
    };
    if let Err(e) = result {
        eprintln!("density-load: {e}");
        std::process::exit(1);
    }
}
