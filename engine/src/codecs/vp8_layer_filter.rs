//! Temporal layer selection for one VP8 consumer (issue 9; mediasoup's VP8
//! `EncodingContext`): frames of temporal layers above the target are dropped, a move up
//! to a higher temporal layer waits for a layer-sync frame (RFC 7741 §4.2, Y bit) or a key
//! frame, and the picture ids and TL0PICIDX the receiver sees stay continuous across the
//! dropped frames and across simulcast stream switches ([`Vp8LayerFilter::rebase`]).
//! Sequence numbers are the consumer's sequence manager's job.

use std::collections::VecDeque;

use super::vp8_descriptor::Vp8Descriptor;

/// Pictures remembered for reordered packets.
const RECENT: usize = 128;

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vp8Verdict {
    /// Forward it, with its descriptor rewritten so.
    Forward(Vp8Rewrite),
    /// Drop it (a frame of a temporal layer not forwarded).
    Drop,
}

/// The ids a forwarded packet carries in the consumer's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Rewrite {
    picture_id: Option<u16>,
    tl0_pic_idx: Option<u8>,
}

impl Vp8Rewrite {
    /// Writes the ids into `payload`, the consumer's copy of the payload `d` describes.
    pub fn apply(&self, d: &Vp8Descriptor, payload: &mut [u8]) {
        if let Some(p) = self.picture_id {
            d.set_picture_id(payload, p);
        }
        if let Some(t) = self.tl0_pic_idx {
            d.set_tl0_pic_idx(payload, t);
        }
    }
}

/// Maps input ids (picture ids, TL0PICIDX) onto a continuous output space of `bits` bits,
/// skipping the dropped ones.
#[derive(Debug, Clone)]
struct IdMap {
    mask: u16,
    /// `output = input - delta` (masked).
    delta: u16,
    last_in: Option<u16>,
    last_out: Option<u16>,
    /// The next input starts a new stream: continue after `last_out`.
    rebase: bool,
    /// Recent inputs and their outputs (`None`: dropped).
    recent: VecDeque<(u16, Option<u16>)>,
    /// `recent`'s newest entry, kept in place: the packets of one picture find it
    /// without loading the deque's memory (a consumer's coldest on this path).
    newest: Option<(u16, Option<u16>)>,
}

impl IdMap {
    fn new(bits: u32) -> Self {
        Self {
            mask: ((1u32 << bits) - 1) as u16,
            delta: 0,
            last_in: None,
            last_out: None,
            rebase: false,
            recent: VecDeque::with_capacity(RECENT),
            newest: None,
        }
    }

    fn is_newer(&self, a: u16, b: u16) -> bool {
        let half = self.mask / 2 + 1;
        let d = a.wrapping_sub(b) & self.mask;
        d != 0 && d < half
    }

    fn remember(&mut self, input: u16, output: Option<u16>) {
        // The packets of one picture share its ids: one entry for them all.
        if self.newest == Some((input, output)) {
            return;
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((input, output));
        self.newest = Some((input, output));
    }

    fn known(&self, input: u16) -> Option<Option<u16>> {
        // In order (the usual case): newer than every input seen, so not among them.
        if self.last_in.is_some_and(|l| self.is_newer(input, l)) {
            return None;
        }
        if let Some((i, o)) = self.newest
            && i == input
        {
            return Some(o);
        }
        self.recent
            .iter()
            .rev()
            .find(|(i, _)| *i == input)
            .map(|(_, o)| *o)
    }

    /// The output of a forwarded `input`.
    fn forward(&mut self, input: u16) -> u16 {
        let input = input & self.mask;
        if !self.rebase
            && let Some(Some(out)) = self.known(input)
        {
            return out;
        }
        if self.rebase || self.last_in.is_none() {
            let out = self
                .last_out
                .map_or(input, |o| o.wrapping_add(1) & self.mask);
            self.delta = input.wrapping_sub(out) & self.mask;
            self.rebase = false;
            self.recent.clear();
            self.newest = None;
        }
        let out = input.wrapping_sub(self.delta) & self.mask;
        if self.last_in.is_none_or(|l| self.is_newer(input, l)) {
            self.last_in = Some(input);
            self.last_out = Some(out);
        }
        self.remember(input, Some(out));
        out
    }

    /// `input` is dropped: later inputs move down one.
    fn drop(&mut self, input: u16) {
        let input = input & self.mask;
        if self.known(input).is_some() || self.rebase {
            return;
        }
        if self.last_in.is_none_or(|l| self.is_newer(input, l)) {
            self.delta = self.delta.wrapping_add(1) & self.mask;
            self.last_in = Some(input);
        }
        self.remember(input, None);
    }
}

/// The temporal layer filter of one VP8 consumer.
#[derive(Debug, Clone)]
pub struct Vp8LayerFilter {
    target: u8,
    current: Option<u8>,
    picture_ids: IdMap,
    tl0: IdMap,
}

impl Default for Vp8LayerFilter {
    fn default() -> Self {
        Self::new(u8::MAX)
    }
}

impl Vp8LayerFilter {
    /// A filter forwarding temporal layers up to `target`.
    pub fn new(target: u8) -> Self {
        Self {
            target,
            current: None,
            picture_ids: IdMap::new(15),
            tl0: IdMap::new(8),
        }
    }

    /// The highest temporal layer to forward from now on (down at once, up at the next
    /// layer-sync or key frame).
    pub fn set_target(&mut self, target: u8) {
        self.target = target;
        if self.current.is_some_and(|c| c > target) {
            self.current = Some(target);
        }
    }

    /// The temporal layer being forwarded (`None` before the first frame).
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// The next packet comes from another stream (a simulcast switch, at its key frame):
    /// its ids continue after the last ones sent.
    pub fn rebase(&mut self) {
        self.picture_ids.rebase = true;
        self.tl0.rebase = true;
        self.current = None;
    }

    /// Rewrites the descriptor of a packet forwarded before (a retransmission) with the
    /// ids it was sent with, changing nothing else; `false` when its picture is no longer
    /// remembered (it should not be resent then).
    pub fn rewrite_sent(&self, payload: &mut [u8]) -> bool {
        let Some(d) = Vp8Descriptor::parse(payload) else {
            return true;
        };
        if let Some((p, _)) = d.picture_id(payload) {
            match self.picture_ids.known(p & self.picture_ids.mask) {
                Some(Some(out)) => d.set_picture_id(payload, out),
                _ => return false,
            }
        }
        if let Some(t) = d.tl0_pic_idx(payload) {
            match self.tl0.known(u16::from(t)) {
                Some(Some(out)) => d.set_tl0_pic_idx(payload, out as u8),
                _ => return false,
            }
        }
        true
    }

    /// Decides on one packet: `d` is its descriptor as the producer parsed it, `payload`
    /// the producer's payload. A forwarded packet's new ids are to be written into the
    /// consumer's copy ([`Vp8Rewrite::apply`]).
    pub fn process(&mut self, d: &Vp8Descriptor, payload: &[u8]) -> Vp8Verdict {
        let pid = d.picture_id(payload).map(|(p, _)| p);
        if let Some(tid) = d.tid(payload) {
            let key = d.key_frame(payload);
            if key || self.current.is_none() {
                self.current = Some(tid.min(self.target));
            }
            let current = self.current.unwrap_or(0);
            let upgrade = tid > current && tid <= self.target && d.layer_sync(payload);
            if upgrade {
                self.current = Some(tid);
            } else if tid > current {
                if let Some(p) = pid {
                    self.picture_ids.drop(p);
                }
                return Vp8Verdict::Drop;
            }
        }
        Vp8Verdict::Forward(Vp8Rewrite {
            picture_id: pid.map(|p| self.picture_ids.forward(p)),
            tl0_pic_idx: d
                .tl0_pic_idx(payload)
                .map(|t| self.tl0.forward(u16::from(t)) as u8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-packet VP8 frame: 15-bit picture id, TL0PICIDX, TID with the sync bit.
    fn frame(pid: u16, tl0: u8, tid: u8, sync: bool, key: bool) -> Vec<u8> {
        let pid = 0x8000 | pid;
        let tbyte = (tid << 6) | if sync { 0x20 } else { 0 };
        vec![
            0x90,
            0xe0,
            (pid >> 8) as u8,
            pid as u8,
            tl0,
            tbyte,
            if key { 0x10 } else { 0x11 },
            0,
        ]
    }

    /// L1T3 pattern: TID 0 2 1 2 0 2 1 2 ..., TL0PICIDX counting the TID-0 frames, the first
    /// frame of each upper layer after a TID-0 frame marked layer-sync.
    fn l1t3(n: u16, first_pid: u16) -> Vec<(u16, u8, u8, bool)> {
        let pattern = [0u8, 2, 1, 2];
        let mut tl0 = 10u8;
        (0..n)
            .map(|i| {
                let tid = pattern[usize::from(i % 4)];
                if tid == 0 && i > 0 {
                    tl0 = tl0.wrapping_add(1);
                }
                let sync = tid != 0 && i % 4 <= 2;
                ((first_pid + i) & 0x7fff, tl0, tid, sync)
            })
            .collect()
    }

    /// What a consumer does: the descriptor parsed once, the filter's verdict, the new
    /// ids written into the packet; whether it was forwarded.
    fn process(f: &mut Vp8LayerFilter, p: &mut [u8]) -> bool {
        let Some(d) = Vp8Descriptor::parse(p) else {
            return true;
        };
        match f.process(&d, p) {
            Vp8Verdict::Forward(ids) => {
                ids.apply(&d, p);
                true
            }
            Vp8Verdict::Drop => false,
        }
    }

    fn run(
        f: &mut Vp8LayerFilter,
        frames: &[(u16, u8, u8, bool)],
        key_first: bool,
    ) -> Vec<(u16, u8, u8)> {
        let mut out = Vec::new();
        for (i, (pid, tl0, tid, sync)) in frames.iter().enumerate() {
            let mut p = frame(*pid, *tl0, *tid, *sync, key_first && i == 0);
            if process(f, &mut p) {
                let d = Vp8Descriptor::parse(&p).unwrap();
                out.push((
                    d.picture_id(&p).unwrap().0,
                    d.tl0_pic_idx(&p).unwrap(),
                    d.tid(&p).unwrap(),
                ));
            }
        }
        out
    }

    #[test]
    fn base_layer_only_keeps_picture_ids_continuous() {
        let mut f = Vp8LayerFilter::new(0);
        let out = run(&mut f, &l1t3(40, 32_760), true);
        assert_eq!(out.len(), 10);
        assert!(out.iter().all(|(_, _, tid)| *tid == 0));
        for w in out.windows(2) {
            assert_eq!(
                w[1].0,
                (w[0].0 + 1) & 0x7fff,
                "continuous across the wrap: {out:?}"
            );
            assert_eq!(w[1].1, w[0].1.wrapping_add(1), "one TL0 picture each");
        }
    }

    #[test]
    fn moves_up_only_at_a_layer_sync_frame_and_down_at_once() {
        let mut f = Vp8LayerFilter::new(0);
        let frames = l1t3(40, 100);
        let first = run(&mut f, &frames[..10], true);
        f.set_target(2);
        // Frame 10 is TID 1 with sync: layer 1 starts there; layer 2 at frame 11 (sync).
        let next = run(&mut f, &frames[10..20], false);
        // Frame 11 (TID 2, no sync) is dropped; TID 2 starts at frame 13 (sync): 13, 15, 17, 19.
        assert_eq!(next.iter().filter(|x| x.2 == 2).count(), 4);
        assert_eq!(f.current(), Some(2));
        let all: Vec<u16> = first.iter().chain(&next).map(|x| x.0).collect();
        for w in all.windows(2) {
            assert_eq!(w[1], w[0] + 1, "no gap at the switch: {all:?}");
        }
        f.set_target(1);
        assert_eq!(f.current(), Some(1));
        let down = run(&mut f, &frames[20..28], false);
        assert!(down.iter().all(|x| x.2 <= 1));
        assert_eq!(down[0].0, all[all.len() - 1] + 1);
    }

    #[test]
    fn a_stream_switch_continues_the_ids() {
        let mut f = Vp8LayerFilter::new(2);
        let a = run(&mut f, &l1t3(8, 500), true);
        f.rebase();
        let b = run(&mut f, &l1t3(8, 9000), true);
        assert_eq!(b[0].0, a[a.len() - 1].0 + 1);
        assert_eq!(b[0].1, a[a.len() - 1].1.wrapping_add(1));
        // A reordered packet of an already forwarded picture gets the same id again.
        let mut again = frame(9003, 11, 2, false, false);
        assert!(process(&mut f, &mut again));
        assert_eq!(
            Vp8Descriptor::parse(&again)
                .unwrap()
                .picture_id(&again)
                .unwrap()
                .0,
            b[3].0
        );
        // Garbage never panics.
        for n in 0..12 {
            let mut junk = vec![0xffu8; n];
            process(&mut f, &mut junk);
        }
    }
}
