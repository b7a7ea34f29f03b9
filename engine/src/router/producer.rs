//! The ingress of a producer (mediasoup `Producer`): identifies which of its encodings a
//! packet belongs to (by SSRC, or by RID/repaired-RID until the SSRC is learnt, RFC 8852),
//! without learning anything before the packet authenticated; then undoes RTX (RFC 4588
//! §4) and rewrites the packet into router terms in place: router payload type, the
//! encoding's router-side SSRC and router header extension ids. The producer also owns
//! its fan-out list (the consumers of its packets) and its key frame requests.

use std::ops::Range;
use std::time::{Duration, Instant};

use kolabmeet_net::rtp::RtpHeader;

use super::recv_stats::RecvStats;
use super::recv_stream::RecvStream;
use crate::arena::{ConsumerKey, TransportKey};
use crate::codecs::{FrameInfo, VideoCodec, frame_info};
use crate::ids::{PeerId, ProducerId};
use crate::media_engine::ProducerSource;
use crate::mirror::{Want, WorkerIndex};
use crate::ortc::{
    MediaKind, ParamValue, RtpCapabilities, RtpMapping, RtpParameters, ScalabilityMode,
};
use crate::rtp_stream::{KeyFrameRequestManager, PacketStore, RetransmissionBufferConfig};
use crate::transport::StreamRef;
use kolabmeet_media_types::replies::ConsumerType;

/// `urn:ietf:params:rtp-hdrext:sdes:mid`.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
pub const RRID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// Key frame requests to one producer stream are at most this frequent
/// (`keyFrameRequestDelay`, 3 s in the Kolab client); one more goes when it ends if
/// any came in meanwhile (see [`KeyFrameRequestManager`]).
pub const KEY_FRAME_REQUEST_DELAY: Duration = Duration::from_secs(3);

/// Where a producer's packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerOrigin {
    /// Its peer's transport on this worker.
    Transport(TransportKey),
    /// Another worker of its room, which hands each packet over in memory (issue 16): a
    /// mirror of the producer there, with the same id.
    Mirror(WorkerIndex),
}

/// A worker a producer is mirrored on, and what it wants of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorTarget {
    /// The worker.
    pub worker: WorkerIndex,
    /// What it wants (nothing until it says).
    pub want: Want,
}

/// A mirror's wants (far side).
#[derive(Debug, Clone, Copy, Default)]
pub struct MirrorWant {
    /// What the origin was last told.
    pub sent: Option<Want>,
    /// When a key frame was last asked for, per stream (the first eight): each is wanted
    /// whole for a while, so that a consumer can switch onto it.
    pub requested: [Option<Instant>; 8],
}

/// What the router knows of a packet after ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingress {
    /// The encoding (simulcast spatial layer) index.
    pub stream: usize,
    /// Key frame / temporal layer (video).
    pub frame: FrameInfo,
    /// It arrived over RTX (a retransmission).
    pub repaired: bool,
    /// It is news to the consumers. Not so for a retransmission of a packet already
    /// received: Chromium probes its uplink with RTX copies of packets it sent (RFC 4588
    /// redundant payloads), and a consumer would send each again under the sequence
    /// number it already used, which the receiver's SRTP refuses as a replay, so its
    /// transport-cc feedback reports the packet lost (as mediasoup, only a retransmission
    /// that filled a gap goes on).
    pub forward: bool,
    /// It revealed a gap too large to repair by NACK: the stream needs a key frame.
    pub key_frame_required: bool,
    /// Where its payload lies in the packet.
    pub payload: Range<usize>,
    /// Its extended sequence number in its stream's store, when kept there for its
    /// consumers' retransmissions.
    pub stored: Option<u64>,
}

/// A packet in router terms, as every consumer of it reads it.
#[derive(Debug, Clone, Copy)]
pub struct RoutedPacket<'a> {
    /// Its header (router payload type, SSRC and extension ids).
    pub header: &'a RtpHeader,
    /// The whole packet.
    pub bytes: &'a [u8],
    /// Its payload.
    pub payload: &'a [u8],
}

/// A producer.
#[derive(Debug)]
pub struct Producer {
    /// Its id (the engine's edge).
    pub id: ProducerId,
    /// Its peer.
    pub peer: PeerId,
    /// Where its packets come from: its peer's transport on this worker, or the worker
    /// it is mirrored from (issue 16).
    pub origin: ProducerOrigin,
    /// The workers it is mirrored on (issue 16), with what each wants: each of its
    /// packets crosses to each of them once, whole or as a notice.
    pub mirrors: Vec<MirrorTarget>,
    /// On a far worker, a mirror's wants as last told to its origin, and the highest
    /// stream a key frame was asked for lately.
    pub mirror_want: MirrorWant,
    /// Audio or video.
    pub kind: MediaKind,
    /// The parameters the client sent (after mapping).
    pub rtp_parameters: RtpParameters,
    /// Its streams in router terms (what consumers are cut from).
    pub consumable: RtpParameters,
    /// Paused by its owner.
    pub paused: bool,
    /// What it sends (the allocation serves screens before webcams).
    pub source: ProducerSource,
    /// One per encoding.
    pub streams: Vec<RecvStream>,
    /// Its consumers: every packet is written once for each (the fan-out list).
    pub consumers: Vec<ConsumerKey>,
    /// PLIs towards the sender, coalesced per stream (contract section 6: one per
    /// `keyFrameRequestDelay`).
    pub key_frames: KeyFrameRequestManager,
    mapping: RtpMapping,
    codec: Option<VideoCodec>,
    /// (RTX payload type, its media payload type), producer side.
    rtx_pts: Vec<(u8, u8)>,
    /// Producer extension id -> router extension id (0: drop).
    ext_map: [u8; 256],
    mid_ext: Option<u8>,
    rid_ext: Option<u8>,
    rrid_ext: Option<u8>,
}

/// What a producer is made from.
#[derive(Debug)]
pub struct ProducerInit<'a> {
    /// Its id.
    pub id: ProducerId,
    /// Its peer.
    pub peer: PeerId,
    /// Where its packets come from.
    pub origin: ProducerOrigin,
    /// Audio or video.
    pub kind: MediaKind,
    /// The client's parameters (after mapping).
    pub rtp_parameters: RtpParameters,
    /// Its streams in router terms.
    pub consumable: RtpParameters,
    /// Payload types and SSRCs, client side to router side.
    pub mapping: RtpMapping,
    /// The router's capabilities (header extension ids).
    pub router: &'a RtpCapabilities,
    /// Created paused.
    pub paused: bool,
    /// What it sends.
    pub source: ProducerSource,
}

impl Producer {
    /// How consumers forward it (mediasoup `RtpParameters::GetType`): simulcast with
    /// several encodings; SVC with one VP9 encoding whose scalability mode has several
    /// spatial layers (`L3T3_KEY`); else simple.
    pub fn consumer_type(&self) -> ConsumerType {
        if self.streams.len() > 1 {
            return ConsumerType::Simulcast;
        }
        let mode = ScalabilityMode::parse(
            self.consumable
                .encodings
                .first()
                .and_then(|e| e.scalability_mode.as_deref()),
        );
        if self.codec == Some(VideoCodec::Vp9) && mode.spatial_layers > 1 {
            ConsumerType::Svc
        } else {
            ConsumerType::Simple
        }
    }

    /// The transport its packets arrive on, unless it is a mirror.
    pub fn transport(&self) -> Option<TransportKey> {
        match self.origin {
            ProducerOrigin::Transport(t) => Some(t),
            ProducerOrigin::Mirror(_) => None,
        }
    }

    /// Whether it mirrors a producer of another worker.
    pub fn is_mirror(&self) -> bool {
        matches!(self.origin, ProducerOrigin::Mirror(_))
    }

    /// A producer from mapped parameters (see `ortc::producer_rtp_mapping`).
    pub fn new(init: ProducerInit<'_>) -> Self {
        let ProducerInit {
            id,
            peer,
            origin,
            kind,
            rtp_parameters,
            consumable,
            mapping,
            router,
            paused,
            source,
        } = init;
        let media_codec = rtp_parameters.codecs.first();
        let clock_rate = media_codec.map_or(90_000, |c| c.clock_rate);
        // A mirror's packets were repaired on their origin's worker: it asks nobody.
        let nack = matches!(origin, ProducerOrigin::Transport(_))
            && media_codec.is_some_and(|c| c.has_nack());
        let codec = rtp_parameters
            .codecs
            .first()
            .and_then(|c| VideoCodec::from_mime(&c.mime_type));
        let rtx_pts = rtp_parameters
            .codecs
            .iter()
            .filter(|c| c.is_rtx())
            .filter_map(|c| {
                let apt = c.parameters.get("apt").and_then(ParamValue::as_int)?;
                Some((c.payload_type, u8::try_from(apt).ok()?))
            })
            .collect();
        let mut ext_map = [0u8; 256];
        for e in &rtp_parameters.header_extensions {
            if let Some(r) = router
                .header_extensions
                .iter()
                .find(|r| r.uri == e.uri && r.kind == kind)
            {
                ext_map[usize::from(e.id)] = r.preferred_id;
            }
        }
        let streams = rtp_parameters
            .encodings
            .iter()
            .zip(&mapping.encodings)
            .map(|(e, m)| {
                RecvStream::new(
                    e.ssrc,
                    e.rtx.map(|r| r.ssrc),
                    e.rid.clone(),
                    m.mapped_ssrc,
                    RecvStats::new(clock_rate, nack),
                    // Audio too: its consumers answer NACKs from it (see `control.rs`).
                    Some(PacketStore::new(RetransmissionBufferConfig::for_kind(kind))),
                )
            })
            .collect();
        Producer {
            id,
            peer,
            origin,
            mirrors: Vec::new(),
            mirror_want: MirrorWant::default(),
            kind,
            mid_ext: rtp_parameters.header_extension_id(MID_URI),
            rid_ext: rtp_parameters.header_extension_id(RID_URI),
            rrid_ext: rtp_parameters.header_extension_id(RRID_URI),
            rtp_parameters,
            consumable,
            paused,
            source,
            streams,
            consumers: Vec::new(),
            key_frames: KeyFrameRequestManager::new(KEY_FRAME_REQUEST_DELAY),
            mapping,
            codec,
            rtx_pts,
            ext_map,
        }
    }

    /// The producer's MID, which routes packets whose SSRC is not known yet.
    pub fn mid(&self) -> Option<&str> {
        self.rtp_parameters.mid.as_deref()
    }

    /// The header extension id the client sends the MID with.
    pub fn mid_ext(&self) -> Option<u8> {
        self.mid_ext
    }

    /// The transport-cc header extension id the client negotiated for this producer.
    pub fn transport_cc_ext(&self) -> Option<u8> {
        self.rtp_parameters
            .header_extension_id(crate::ortc::TRANSPORT_CC_URI)
    }

    /// Every SSRC the producer's encodings use that is known so far, with the encoding it
    /// is: the media SSRCs first, then the RTX ones (the order [`Producer::identify`]
    /// looks them up in).
    pub fn known_ssrcs(&self) -> impl Iterator<Item = (u32, StreamRef)> + '_ {
        let media = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(stream, s)| Some((s.ssrc?, StreamRef { stream, rtx: false })));
        let rtx = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(stream, s)| Some((s.rtx_ssrc?, StreamRef { stream, rtx: true })));
        media.chain(rtx)
    }

    /// Which encoding a packet is and whether it is RTX, from its header alone (read
    /// before decryption): by SSRC, else by RID or repaired-RID (RFC 8852), a new SSRC
    /// being learnt at most once per encoding so that what is learnt stays bounded by the
    /// encodings. `None` for a packet that names none of the encodings, or a layer whose
    /// SSRC is already known from another SSRC. (The worker asks only for an SSRC its
    /// transport's listener does not know, and the listener knows every SSRC known here.)
    pub fn identify(&self, header: &RtpHeader, packet: &[u8]) -> Option<StreamRef> {
        let ssrc = header.ssrc;
        if let Some(stream) = self.streams.iter().position(|s| s.ssrc == Some(ssrc)) {
            return Some(StreamRef { stream, rtx: false });
        }
        if let Some(stream) = self.streams.iter().position(|s| s.rtx_ssrc == Some(ssrc)) {
            return Some(StreamRef { stream, rtx: true });
        }
        let is_rtx = self
            .rtx_pts
            .iter()
            .any(|(rtx, _)| *rtx == header.payload_type);
        let by_rid = |ext: Option<u8>| -> Option<usize> {
            let rid = header.extension(packet, ext?)?;
            self.streams
                .iter()
                .position(|s| s.rid.as_deref().map(str::as_bytes) == Some(rid))
        };
        let (stream, known) = if is_rtx {
            // Learnt once per layer (as mediasoup does): a sender that names the layer
            // from ever new SSRCs must not make the worker learn SSRC after SSRC.
            let i = by_rid(self.rrid_ext)?;
            (i, self.streams[i].rtx_ssrc.is_some())
        } else {
            let i = match by_rid(self.rid_ext) {
                Some(i) => i,
                // A single encoding without RID or SSRC: the first SSRC seen is it.
                None if self.streams.len() == 1 && self.streams[0].rid.is_none() => 0,
                None => return None,
            };
            (i, self.streams[i].ssrc.is_some())
        };
        (!known).then_some(StreamRef {
            stream,
            rtx: is_rtx,
        })
    }

    /// Binds the SSRC of an authenticated packet [`Producer::identify`] matched to its
    /// encoding (nothing changes if the encoding has one).
    pub fn learn(&mut self, m: StreamRef, ssrc: u32) {
        let Some(s) = self.streams.get_mut(m.stream) else {
            return;
        };
        let slot = if m.rtx { &mut s.rtx_ssrc } else { &mut s.ssrc };
        slot.get_or_insert(ssrc);
    }

    /// Ingress of a decrypted packet matched as `m`: undoes RTX, rewrites it in place
    /// into router terms (`header` follows), and counts it. `None` drops it (unknown
    /// payload type, malformed RTX or padding).
    pub fn receive(
        &mut self,
        now: Instant,
        m: StreamRef,
        header: &mut RtpHeader,
        buf: &mut Vec<u8>,
    ) -> Option<Ingress> {
        let stream = m.stream;
        if m.rtx {
            unwrap_rtx(header, buf, &self.rtx_pts)?;
        }
        let mapped_pt = self.mapping.mapped_payload_type(header.payload_type)?;
        header.set_payload_type(buf, mapped_pt);
        header.set_ssrc(buf, self.streams.get(stream)?.mapped_ssrc);
        let map = &self.ext_map;
        header.remap_extension_ids(buf, |id| Some(map[usize::from(id)]).filter(|r| *r != 0));
        let payload = header.payload_range(buf).ok()?;
        let frame = match self.codec {
            Some(c) => frame_info(c, &buf[payload.clone()]),
            None => FrameInfo::default(),
        };
        let (seq, ts) = (header.sequence_number, header.timestamp);
        let s = &mut self.streams[stream];
        let mut key_frame_required = false;
        let mut forward = true;
        if m.rtx {
            forward = s.stats.on_retransmission(now, seq, frame.key_frame);
        } else {
            s.on_media(now, buf.len(), frame.spatial_layer, frame.temporal_layer);
            key_frame_required = s.stats.on_packet(now, seq, ts, frame.key_frame);
        }
        if frame.key_frame
            && let Some(ssrc) = s.ssrc
        {
            self.key_frames.key_frame_received(ssrc);
        }
        // Kept once for every consumer's NACK answers, while anyone consumes it.
        let stored = match s.store.as_mut() {
            Some(store) if !self.paused && !self.consumers.is_empty() => {
                store.insert(now, seq, buf)
            }
            _ => None,
        };
        Some(Ingress {
            stream,
            frame,
            repaired: m.rtx,
            forward,
            key_frame_required,
            payload,
            stored,
        })
    }

    /// Ingress of a packet of a mirror (issue 16), handed over by its origin worker in
    /// router terms: counted, stored for its consumers' NACK answers, and described.
    /// `None` for a stream it does not have or a packet that does not parse.
    pub fn receive_piped(
        &mut self,
        now: Instant,
        stream: usize,
        header: &RtpHeader,
        buf: &[u8],
    ) -> Option<Ingress> {
        let payload = header.payload_range(buf).ok()?;
        let frame = match self.codec {
            Some(c) => frame_info(c, &buf[payload.clone()]),
            None => FrameInfo::default(),
        };
        let s = self.streams.get_mut(stream)?;
        s.on_media(now, buf.len(), frame.spatial_layer, frame.temporal_layer);
        let key_frame_required = s.stats.on_packet(
            now,
            header.sequence_number,
            header.timestamp,
            frame.key_frame,
        );
        if frame.key_frame {
            // Its far-side requests are keyed by the router-side SSRC (see
            // `Router::request_key_frame`).
            self.key_frames.key_frame_received(s.mapped_ssrc);
        }
        let stored = match s.store.as_mut() {
            Some(store) if !self.paused && !self.consumers.is_empty() => {
                store.insert(now, header.sequence_number, buf)
            }
            _ => None,
        };
        Some(Ingress {
            stream,
            frame,
            repaired: false,
            forward: true,
            key_frame_required,
            payload,
            stored,
        })
    }

    /// Its mapping onto the router (what a mirror of it is made from).
    pub fn mapping(&self) -> &RtpMapping {
        &self.mapping
    }
}

/// Turns an RTX packet back into the packet it repairs (RFC 4588 §4): the payload starts
/// with the original sequence number, and the payload type becomes the associated one.
/// The SSRC is set by the caller.
fn unwrap_rtx(header: &mut RtpHeader, buf: &mut Vec<u8>, rtx_pts: &[(u8, u8)]) -> Option<()> {
    let payload = header.payload_range(buf).ok()?;
    let apt = rtx_pts
        .iter()
        .find(|(rtx, _)| *rtx == header.payload_type)
        .map(|(_, a)| *a)?;
    if payload.len() < 2 {
        return None;
    }
    let at = payload.start;
    let osn = u16::from_be_bytes([buf[at], buf[at + 1]]);
    buf.drain(at..at + 2);
    header.set_sequence_number(buf, osn);
    header.set_payload_type(buf, apt);
    Some(())
}
