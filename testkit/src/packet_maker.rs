//! A producer's stream for the benches: Chrome-shaped RTP of one [`Media`], frame after
//! frame, with a send stamp at the end of every payload so a receiver can measure the
//! latency the worker added.

use crate::packets::{Ext, write_extensions, write_rtp_header};
use crate::params::Media;

/// RTP a producer sends, shaped like Chrome's: one-byte header extensions (MID,
/// abs-send-time and transport-cc; audio level instead of abs-send-time for Opus; the RID
/// of a simulcast encoding when set), a VP8 descriptor with picture id, TL0PICIDX and
/// temporal layer id for video, and a payload of `payload_len` bytes whose last 8 are a
/// send stamp (see [`PacketMaker::next`]).
pub struct PacketMaker {
    /// What it sends.
    pub media: Media,
    /// The SSRC.
    pub ssrc: u32,
    /// Payload bytes per packet (at least 16).
    pub payload_len: usize,
    /// Packets per frame (VP8).
    pub packets_per_frame: u32,
    /// RTP ticks from one frame to the next (VP8; 3000 at 30 frames/s, the default).
    pub frame_ticks: u32,
    /// Temporal layers of the VP8 frames: 1 (every frame TID 0, the default), 2 or 3
    /// (libvpx's L1T2 and L1T3 patterns, TIDs 0,1 and 0,2,1,2, layer sync on the frames
    /// that depend on a TID 0 frame only).
    pub temporal_layers: u8,
    /// The MID it carries (`0` by default).
    pub mid: String,
    /// The RID it carries (an encoding of simulcast by RID), if any.
    pub rid: Option<String>,
    /// Next sequence number.
    pub seq: u16,
    /// Next transport-wide sequence number.
    pub tcc_seq: u16,
    /// RTP timestamp of the current frame.
    pub timestamp: u32,
    /// Packets of the current frame sent.
    in_frame: u32,
    /// VP8 picture id (15 bits).
    picture_id: u16,
    /// VP8 TL0PICIDX: counts the TID 0 frames.
    tl0_pic_idx: u8,
    /// Frames made (the temporal pattern's position).
    frames: u32,
    /// The next frame is a key frame.
    pub key_frame_next: bool,
    /// Packets made.
    pub made: u64,
}

impl PacketMaker {
    /// A maker whose first packet starts a key frame.
    pub fn new(media: Media, ssrc: u32, payload_len: usize) -> Self {
        PacketMaker {
            media,
            ssrc,
            payload_len: payload_len.max(16),
            packets_per_frame: 5,
            frame_ticks: 3000,
            temporal_layers: 1,
            mid: "0".to_owned(),
            rid: None,
            seq: 1000,
            tcc_seq: 1,
            timestamp: 90_000,
            in_frame: 0,
            picture_id: 1,
            tl0_pic_idx: 1,
            frames: 0,
            key_frame_next: true,
            made: 0,
        }
    }

    /// The next packet starts a frame.
    pub fn at_frame_start(&self) -> bool {
        self.in_frame == 0
    }

    /// The next plain RTP packet into `out` (cleared first), its payload ending with
    /// `stamp` (big endian; e.g. nanoseconds of the send time).
    pub fn next(&mut self, stamp: u64, out: &mut Vec<u8>) {
        out.clear();
        let first_of_frame = self.in_frame == 0;
        let last_of_frame =
            self.media == Media::Opus || self.in_frame + 1 >= self.packets_per_frame;
        let key = first_of_frame && self.key_frame_next;
        if key && self.temporal_layer().0 != 0 {
            // The encoder restarts its temporal pattern at a key frame (TID 0).
            self.frames = 0;
            self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
        }
        let pt_marker = match self.media {
            Media::Vp8 => 96 | if last_of_frame { 0x80 } else { 0 },
            Media::Opus => 111,
        };
        write_rtp_header(out, true, pt_marker, self.seq, self.timestamp, self.ssrc);
        let tcc = self.tcc_seq.to_be_bytes();
        let second = match self.media {
            Media::Vp8 => (Ext::AbsSendTime.id(), &[1u8, 2, 3][..]),
            Media::Opus => (Ext::AudioLevel.id(), &[0x85u8][..]),
        };
        let mut exts = [
            (Ext::Mid.id(), self.mid.as_bytes()),
            second,
            (Ext::TransportCc.id(), &tcc[..]),
            (Ext::Rid.id(), &[][..]),
        ];
        let n = match &self.rid {
            Some(rid) => {
                exts[3].1 = rid.as_bytes();
                4
            }
            None => 3,
        };
        write_extensions(out, &exts[..n]);
        let start = out.len();
        if self.media == Media::Vp8 {
            // X=1 S=(first) PID=0; I=1 L=1 T=1; 15-bit picture id; TL0PICIDX; TID, Y.
            let s = if first_of_frame { 0x10 } else { 0 };
            let (tid, sync) = self.temporal_layer();
            out.extend_from_slice(&[
                0x80 | s,
                0xe0,
                0x80 | (self.picture_id >> 8) as u8,
                self.picture_id as u8,
                self.tl0_pic_idx,
                (tid << 6) | if sync { 0x20 } else { 0 },
                if key { 0x00 } else { 0x01 },
            ]);
        }
        out.resize(start + self.payload_len - 8, 0x5a);
        out.extend_from_slice(&stamp.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        self.tcc_seq = self.tcc_seq.wrapping_add(1);
        self.made += 1;
        if key {
            self.key_frame_next = false;
        }
        match self.media {
            Media::Opus => self.timestamp = self.timestamp.wrapping_add(960),
            Media::Vp8 if last_of_frame => {
                self.in_frame = 0;
                self.timestamp = self.timestamp.wrapping_add(self.frame_ticks);
                self.picture_id = (self.picture_id + 1) & 0x7fff;
                self.frames = self.frames.wrapping_add(1);
                if self.temporal_layer().0 == 0 {
                    self.tl0_pic_idx = self.tl0_pic_idx.wrapping_add(1);
                }
            }
            Media::Vp8 => self.in_frame += 1,
        }
    }

    /// The current frame's temporal layer id and layer sync bit.
    fn temporal_layer(&self) -> (u8, bool) {
        match self.temporal_layers {
            2 => match self.frames % 2 {
                0 => (0, false),
                _ => (1, true),
            },
            3 => match self.frames % 4 {
                0 => (0, false),
                1 => (2, true),
                2 => (1, true),
                _ => (2, false),
            },
            _ => (0, false),
        }
    }
}

/// The send stamp [`PacketMaker::next`] put at the end of a (decrypted) packet's payload.
/// (The worker keeps payloads as they are and adds no padding.)
pub fn read_stamp(packet: &[u8]) -> Option<u64> {
    let at = packet.len().checked_sub(8)?;
    Some(u64::from_be_bytes(packet[at..].try_into().ok()?))
}
