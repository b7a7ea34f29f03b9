//! The ingress of a producer (mediasoup `Producer`): identifies which of its encodings a
//! packet belongs to (by SSRC, or by RID/repaired-RID until the SSRC is learnt, RFC 8852),
//! undoes RTX (RFC 4588 §4), and rewrites the packet into router terms in place: router
//! payload type, the encoding's router-side SSRC and router header extension ids.

use std::time::{Duration, Instant};

use kolabmeet_net::rtp::RtpPacket;

use super::recv_stats::RecvStats;
use crate::codecs::{FrameInfo, VideoCodec, frame_info};
use crate::ids::{PeerId, ProducerId, RoomId, TransportId};
use crate::ortc::{MediaKind, ParamValue, RtpCapabilities, RtpMapping, RtpParameters};
use crate::rtp_stream::{KeyFrameRequestManager, RateCalculator};

/// `urn:ietf:params:rtp-hdrext:sdes:mid`.
pub const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
pub const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
pub const RRID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// A stream that sent nothing for this long is inactive (a dead simulcast layer).
pub const STREAM_INACTIVE_AFTER: Duration = Duration::from_millis(1500);

/// Key frame requests to one producer stream are at most this frequent
/// (`keyFrameRequestDelay`, 3 s in the Kolab client); one more goes when it ends if
/// any came in meanwhile (see [`KeyFrameRequestManager`]).
pub const KEY_FRAME_REQUEST_DELAY: Duration = Duration::from_secs(3);

/// One encoding of the producer as received.
#[derive(Debug)]
pub struct RecvStream {
    /// The sender's SSRC, signalled or learnt from the first packet with its RID.
    pub ssrc: Option<u32>,
    /// Its RTX SSRC.
    pub rtx_ssrc: Option<u32>,
    /// Its RID.
    pub rid: Option<String>,
    /// The router-side SSRC.
    pub mapped_ssrc: u32,
    /// When its last media packet arrived.
    pub last_packet: Option<Instant>,
    /// Media packets received.
    pub packets: u64,
    /// The stream's received bit rate (what forwarding this layer costs).
    pub rate: RateCalculator,
    /// Reception statistics, NACKs and score (RTCP towards the sender).
    pub stats: RecvStats,
}

impl RecvStream {
    /// Whether the stream sent anything within [`STREAM_INACTIVE_AFTER`].
    pub fn is_active(&self, now: Instant) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < STREAM_INACTIVE_AFTER)
    }
}

/// What the router knows of a packet after ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingress {
    /// The encoding (simulcast spatial layer) index.
    pub stream: usize,
    /// Key frame / temporal layer (video).
    pub frame: FrameInfo,
    /// It arrived over RTX (a retransmission).
    pub repaired: bool,
    /// It revealed a gap too large to repair by NACK: the stream needs a key frame.
    pub key_frame_required: bool,
}

/// A producer.
#[derive(Debug)]
pub struct Producer {
    /// Its id.
    pub id: ProducerId,
    /// Its room.
    pub room: RoomId,
    /// Its peer.
    pub peer: PeerId,
    /// The transport it receives on.
    pub transport: TransportId,
    /// Audio or video.
    pub kind: MediaKind,
    /// The parameters the client sent (after mapping).
    pub rtp_parameters: RtpParameters,
    /// Its streams in router terms (what consumers are cut from).
    pub consumable: RtpParameters,
    /// Paused by its owner.
    pub paused: bool,
    /// One per encoding.
    pub streams: Vec<RecvStream>,
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

fn ext_id(params: &RtpParameters, uri: &str) -> Option<u8> {
    params
        .header_extensions
        .iter()
        .find(|e| e.uri == uri)
        .map(|e| e.id)
}

/// What a producer is made from.
#[derive(Debug)]
pub struct ProducerInit<'a> {
    /// Its id.
    pub id: ProducerId,
    /// Its room.
    pub room: RoomId,
    /// Its peer.
    pub peer: PeerId,
    /// The transport it receives on.
    pub transport: TransportId,
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
}

impl Producer {
    /// A producer from mapped parameters (see `ortc::producer_rtp_mapping`).
    pub fn new(init: ProducerInit<'_>) -> Self {
        let ProducerInit {
            id,
            room,
            peer,
            transport,
            kind,
            rtp_parameters,
            consumable,
            mapping,
            router,
            paused,
        } = init;
        let media_codec = rtp_parameters.codecs.first();
        let clock_rate = media_codec.map_or(90_000, |c| c.clock_rate);
        let nack = media_codec.is_some_and(|c| {
            c.rtcp_feedback
                .iter()
                .any(|f| f.kind == "nack" && f.parameter.is_empty())
        });
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
            .map(|(e, m)| RecvStream {
                ssrc: e.ssrc,
                rtx_ssrc: e.rtx.map(|r| r.ssrc),
                rid: e.rid.clone(),
                mapped_ssrc: m.mapped_ssrc,
                last_packet: None,
                packets: 0,
                rate: RateCalculator::default(),
                stats: RecvStats::new(clock_rate, nack),
            })
            .collect();
        Producer {
            id,
            room,
            peer,
            transport,
            kind,
            mid_ext: ext_id(&rtp_parameters, MID_URI),
            rid_ext: ext_id(&rtp_parameters, RID_URI),
            rrid_ext: ext_id(&rtp_parameters, RRID_URI),
            rtp_parameters,
            consumable,
            paused,
            streams,
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
        ext_id(&self.rtp_parameters, crate::ortc::TRANSPORT_CC_URI)
    }

    /// The MID carried by a packet, read with this producer's extension id.
    pub fn packet_mid<'a>(&self, packet: &'a RtpPacket<&[u8]>) -> Option<&'a [u8]> {
        packet.extension(self.mid_ext?)
    }

    /// Every SSRC the producer's encodings use (media and RTX) that is known so far.
    pub fn known_ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.streams
            .iter()
            .flat_map(|s| [s.ssrc, s.rtx_ssrc])
            .flatten()
    }

    /// Which stream a packet belongs to, and whether it is RTX; learns SSRCs from RID and
    /// repaired-RID (RFC 8852), each at most once per encoding, so what is learnt stays
    /// bounded by the encodings. `None` for a packet that names none of the encodings, or
    /// a layer whose SSRC is already known from another SSRC.
    fn identify(&mut self, packet: &RtpPacket<&mut [u8]>) -> Option<(usize, bool)> {
        let ssrc = packet.ssrc();
        if let Some(i) = self.streams.iter().position(|s| s.ssrc == Some(ssrc)) {
            return Some((i, false));
        }
        if let Some(i) = self.streams.iter().position(|s| s.rtx_ssrc == Some(ssrc)) {
            return Some((i, true));
        }
        let is_rtx = self
            .rtx_pts
            .iter()
            .any(|(rtx, _)| *rtx == packet.payload_type());
        let by_rid = |ext: Option<u8>| -> Option<usize> {
            let rid = packet.extension(ext?)?;
            self.streams
                .iter()
                .position(|s| s.rid.as_deref().map(str::as_bytes) == Some(rid))
        };
        if is_rtx {
            // Learnt once per layer (as mediasoup does): a sender that names the layer
            // from ever new SSRCs must not make the worker learn SSRC after SSRC.
            let i = by_rid(self.rrid_ext)?;
            if self.streams[i].rtx_ssrc.is_some() {
                return None;
            }
            self.streams[i].rtx_ssrc = Some(ssrc);
            return Some((i, true));
        }
        let i = match by_rid(self.rid_ext) {
            Some(i) => i,
            // A single encoding without RID or SSRC: the first SSRC seen is it.
            None if self.streams.len() == 1 && self.streams[0].rid.is_none() => 0,
            None => return None,
        };
        if self.streams[i].ssrc.is_some() {
            return None;
        }
        self.streams[i].ssrc = Some(ssrc);
        Some((i, false))
    }

    /// Ingress of a decrypted packet: identifies its stream, undoes RTX, and rewrites it
    /// in place into router terms. `None` drops it (unknown stream or payload type,
    /// malformed RTX).
    pub fn receive(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Ingress> {
        let (stream, repaired) = {
            let packet = RtpPacket::parse(&mut buf[..]).ok()?;
            self.identify(&packet)?
        };
        if repaired {
            unwrap_rtx(buf, &self.rtx_pts)?;
        }
        let mut packet = RtpPacket::parse(&mut buf[..]).ok()?;
        let mapped_pt = self.mapping.mapped_payload_type(packet.payload_type())?;
        packet.set_payload_type(mapped_pt);
        packet.set_ssrc(self.streams[stream].mapped_ssrc);
        let map = &self.ext_map;
        packet.remap_extension_ids(|id| Some(map[usize::from(id)]).filter(|r| *r != 0));
        let frame = match self.codec {
            Some(c) => frame_info(c, packet.payload()),
            None => FrameInfo::default(),
        };
        let (seq, ts) = (packet.sequence_number(), packet.timestamp());
        let size = packet.as_bytes().len();
        let s = &mut self.streams[stream];
        let mut key_frame_required = false;
        if repaired {
            s.stats.on_retransmission(now, seq, frame.key_frame);
        } else {
            s.last_packet = Some(now);
            s.packets += 1;
            s.rate.update(now, size);
            key_frame_required = s.stats.on_packet(now, seq, ts, frame.key_frame);
        }
        if frame.key_frame
            && let Some(ssrc) = s.ssrc
        {
            self.key_frames.key_frame_received(ssrc);
        }
        Some(Ingress {
            stream,
            frame,
            repaired,
            key_frame_required,
        })
    }
}

/// Turns an RTX packet back into the packet it repairs (RFC 4588 §4): the payload starts
/// with the original sequence number, and the payload type becomes the associated one.
/// The SSRC is set by the caller.
fn unwrap_rtx(buf: &mut Vec<u8>, rtx_pts: &[(u8, u8)]) -> Option<()> {
    let (header_len, payload_len, pt) = {
        let p = RtpPacket::parse(&buf[..]).ok()?;
        (p.header_len(), p.payload().len(), p.payload_type())
    };
    let apt = rtx_pts
        .iter()
        .find(|(rtx, _)| *rtx == pt)
        .map(|(_, a)| *a)?;
    if payload_len < 2 {
        return None;
    }
    let osn = u16::from_be_bytes([buf[header_len], buf[header_len + 1]]);
    buf.drain(header_len..header_len + 2);
    let mut p = RtpPacket::parse(&mut buf[..]).ok()?;
    p.set_sequence_number(osn);
    p.set_payload_type(apt);
    Some(())
}
