//! Store of recently sent RTP packets of one outgoing stream, for answering Generic NACK
//! (RFC 4585 §6.2.1) with retransmissions (RFC 4588), after mediasoup's
//! `RTC::RtpRetransmissionBuffer` and `RtpStreamSend::FillRetransmissionContainer`.
//!
//! Packets are keyed by their (output) sequence number in a deque of slots indexed from
//! the oldest stored number; missing numbers are empty slots. Bounds:
//! * at most [`RetransmissionBufferConfig::max_items`] slots (mediasoup: 2500), the
//!   oldest are evicted first;
//! * entries older than [`RetransmissionBufferConfig::max_age`] are never resent, and are
//!   evicted from the front at most every [`EXPIRE_EVERY`] (mediasoup: 2 s for video, 1 s
//!   for audio; mediasoup measures age by RTP timestamp, here by the injected time of
//!   storage);
//! * packets larger than [`MAX_PACKET_LEN`] are refused.
//!
//! A slot holds what the owner keeps per packet ([`Retained`]): a consumer keeps a
//! [`StoredRef`](super::StoredRef) to the router's packet in its producer stream's
//! [`PacketStore`](super::PacketStore) (one copy for every consumer of the packet, as
//! mediasoup's buffers share one packet) and the timestamp it was sent with; the consumer
//! rewrites it again when resending. Storing costs no copy and no reference count.
//!
//! Resending follows mediasoup: a packet is not resent again within one RTT of its last
//! resend (default RTT 100 ms when unknown), and here also at most
//! [`RetransmissionBufferConfig::max_resends`] times.
//!
//! A slot is written once per packet per consumer, the hottest memory write of
//! forwarding after the packet itself, so it is small: the data plus 8 bytes (20 bytes
//! for a [`StoredRef`](super::StoredRef), where it was 56). Times are milliseconds since
//! the buffer's first insertion, wrapping at 2^32 (49 days; the ages compared are under
//! the maximum age), and the resend count shares a word with the last resend's time.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::seq_num::seq_newer;

/// Default slot count (mediasoup `RetransmissionBufferMaxItems`).
pub const DEFAULT_MAX_ITEMS: u16 = 2500;
/// Default maximum age for video (mediasoup `MaxRetransmissionDelayForVideoMs`).
pub const VIDEO_MAX_AGE: Duration = Duration::from_millis(2000);
/// Default maximum age for audio (mediasoup `MaxRetransmissionDelayForAudioMs`).
pub const AUDIO_MAX_AGE: Duration = Duration::from_millis(1000);
/// RTT assumed until one is measured (mediasoup `DefaultRtt`).
pub const DEFAULT_RTT: Duration = Duration::from_millis(100);
/// Default cap on resends of one packet.
pub const DEFAULT_MAX_RESENDS: u8 = 10;
/// The highest cap on resends of one packet (the count has 4 bits of a slot).
pub const MAX_RESENDS: u8 = 15;
/// Largest packet stored (mediasoup `MtuSize`).
pub const MAX_PACKET_LEN: usize = 1500;
/// How often insertions look for expired entries at the front. Storing is on the hot
/// path (once per packet per consumer) and the front is the coldest memory of the
/// buffer: reading it on every insertion cost more than the rest of the insertion.
pub const EXPIRE_EVERY: Duration = Duration::from_millis(100);

/// What a buffer keeps per packet: anything that knows the packet's length.
pub trait Retained: Clone {
    /// The length of the packet it stands for.
    fn packet_len(&self) -> usize;
}

/// Limits of a [`RetransmissionBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmissionBufferConfig {
    /// Slots (stored packets plus gaps) kept at most; 0 is treated as 1.
    pub max_items: u16,
    /// Age after which a stored packet is no longer resent.
    pub max_age: Duration,
    /// Resends of one packet at most (capped at [`MAX_RESENDS`]).
    pub max_resends: u8,
}

impl RetransmissionBufferConfig {
    /// mediasoup's limits for a video stream.
    pub fn video() -> Self {
        Self {
            max_items: DEFAULT_MAX_ITEMS,
            max_age: VIDEO_MAX_AGE,
            max_resends: DEFAULT_MAX_RESENDS,
        }
    }

    /// mediasoup's limits for an audio stream.
    pub fn audio() -> Self {
        Self {
            max_age: AUDIO_MAX_AGE,
            ..Self::video()
        }
    }

    /// The limits for a stream of `kind` (the producer's packet store and its consumers'
    /// buffers use the same, so that a consumer never asks for what the store dropped).
    pub fn for_kind(kind: crate::ortc::MediaKind) -> Self {
        match kind {
            crate::ortc::MediaKind::Video => Self::video(),
            crate::ortc::MediaKind::Audio => Self::audio(),
        }
    }
}

/// Why a packet was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RetransmissionBufferError {
    /// The packet exceeds [`MAX_PACKET_LEN`].
    #[error("packet of {0} bytes exceeds the {MAX_PACKET_LEN}-byte limit")]
    TooLarge(usize),
    /// A packet with this sequence number is already stored.
    #[error("sequence number {0} is already stored")]
    Duplicate(u16),
    /// The sequence number is older than what the buffer can hold.
    #[error("sequence number {0} is too old to be stored")]
    TooOld(u16),
}

/// Bookkeeping of one stored packet, at a given time (millisecond resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPacketInfo {
    /// How long ago the packet was stored.
    pub age: Duration,
    /// How long ago it was last resent.
    pub since_resent: Option<Duration>,
    /// How many times it was resent.
    pub resend_count: u8,
}

/// Bits of [`Slot::resent`] that hold the last resend's time.
const RESENT_TIME_BITS: u32 = 28;
const RESENT_TIME_MASK: u32 = (1 << RESENT_TIME_BITS) - 1;

#[derive(Debug, Clone, Copy)]
struct Slot<T> {
    data: T,
    /// When it was stored: the buffer's clock plus one, never zero (which also makes
    /// `Option<Slot>` no larger than `Slot`).
    stored: NonZeroU32,
    /// How many times it was resent (top 4 bits) and when last, as the low 28 bits of
    /// the buffer's clock (0 when never). Resends are allowed only within
    /// `max_age` (well under 2^28 ms) of storage, so the truncated time is unambiguous.
    resent: u32,
}

impl<T> Slot<T> {
    fn resend_count(&self) -> u8 {
        (self.resent >> RESENT_TIME_BITS) as u8
    }

    /// How long before `now` (the buffer's clock) it was last resent; `None` if never.
    fn since_resent(&self, now: NonZeroU32) -> Option<Duration> {
        let last = self.resent & RESENT_TIME_MASK;
        (last != 0).then(|| {
            Duration::from_millis(u64::from(now.get().wrapping_sub(last) & RESENT_TIME_MASK))
        })
    }
}

/// Recently sent packets of one stream; see the module docs.
#[derive(Debug)]
pub struct RetransmissionBuffer<T> {
    config: RetransmissionBufferConfig,
    rtt: Duration,
    /// Slot `i` holds sequence number `oldest_seq + i`; when non-empty, the first and
    /// last slots are occupied.
    slots: VecDeque<Option<Slot<T>>>,
    oldest_seq: u16,
    stored: usize,
    /// Empty slots (gaps) in `slots`: while there is none, evicting the oldest needs no
    /// look at the slots after it.
    holes: usize,
    /// When insertions next look for expired entries.
    next_expiry: Option<Instant>,
    /// The zero of the buffer's millisecond clock (its first insertion).
    epoch: Option<Instant>,
}

impl<T: Retained> RetransmissionBuffer<T> {
    /// An empty buffer with the given limits.
    pub fn new(config: RetransmissionBufferConfig) -> Self {
        Self {
            config,
            rtt: DEFAULT_RTT,
            slots: VecDeque::new(),
            oldest_seq: 0,
            stored: 0,
            holes: 0,
            next_expiry: None,
            epoch: None,
        }
    }

    /// `now` on the buffer's clock: milliseconds since its epoch plus one, wrapping,
    /// never zero.
    fn clock(&mut self, now: Instant) -> NonZeroU32 {
        let epoch = *self.epoch.get_or_insert(now);
        let ms = now.saturating_duration_since(epoch).as_millis() as u32;
        NonZeroU32::new(ms.wrapping_add(1)).unwrap_or(NonZeroU32::MIN)
    }

    /// The milliseconds from clock reading `then` to `now` (both from [`Self::clock`]).
    fn elapsed(now: NonZeroU32, then: NonZeroU32) -> Duration {
        Duration::from_millis(u64::from(now.get().wrapping_sub(then.get())))
    }

    /// Sets the RTT that gates resends of the same packet; zero means unknown
    /// ([`DEFAULT_RTT`]).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = if rtt.is_zero() { DEFAULT_RTT } else { rtt };
    }

    /// Stores `packet`, sent now with sequence number `seq`. Expired entries are evicted
    /// first (at most every [`EXPIRE_EVERY`]). A packet newer than the newest stored one
    /// may evict the oldest ones; a packet older than the oldest is stored only if it
    /// fits.
    pub fn insert(
        &mut self,
        now: Instant,
        seq: u16,
        packet: T,
    ) -> Result<(), RetransmissionBufferError> {
        if packet.packet_len() > MAX_PACKET_LEN {
            return Err(RetransmissionBufferError::TooLarge(packet.packet_len()));
        }
        if self.next_expiry.is_none_or(|t| now >= t) {
            self.expire(now);
            self.next_expiry = now.checked_add(EXPIRE_EVERY);
        }
        let stored = self.clock(now);
        let max = usize::from(self.config.max_items.max(1));
        let len = self.slots.len();
        if len == 0 {
            self.oldest_seq = seq;
            let slot = self.make_slot(stored, packet);
            self.slots.push_back(Some(slot));
            return Ok(());
        }

        let idx = usize::from(seq.wrapping_sub(self.oldest_seq));
        if idx < len {
            if self.slots.get(idx).is_some_and(Option::is_some) {
                return Err(RetransmissionBufferError::Duplicate(seq));
            }
            let slot = self.make_slot(stored, packet);
            if let Some(entry) = self.slots.get_mut(idx) {
                *entry = Some(slot);
                self.holes -= 1;
            }
            return Ok(());
        }

        let newest = self.oldest_seq.wrapping_add((len - 1) as u16);
        if seq_newer(seq, newest) {
            let gap = usize::from(seq.wrapping_sub(newest)) - 1;
            while !self.slots.is_empty() && self.slots.len() + gap + 1 > max {
                self.remove_oldest();
            }
            let slot = self.make_slot(stored, packet);
            if self.slots.is_empty() {
                self.oldest_seq = seq;
            } else {
                self.slots.extend(std::iter::repeat_with(|| None).take(gap));
                self.holes += gap;
            }
            self.slots.push_back(Some(slot));
            return Ok(());
        }

        // Older than the oldest stored packet.
        let dist = usize::from(self.oldest_seq.wrapping_sub(seq));
        if !seq_newer(self.oldest_seq, seq) || len + dist > max {
            return Err(RetransmissionBufferError::TooOld(seq));
        }
        let slot = self.make_slot(stored, packet);
        for _ in 1..dist {
            self.slots.push_front(None);
        }
        self.holes += dist - 1;
        self.slots.push_front(Some(slot));
        self.oldest_seq = seq;
        Ok(())
    }

    /// The stored packet with sequence number `seq`.
    pub fn get(&self, seq: u16) -> Option<&T> {
        self.slot(seq).map(|s| &s.data)
    }

    /// Bookkeeping of the stored packet with sequence number `seq`, as of `now`.
    pub fn info(&mut self, now: Instant, seq: u16) -> Option<StoredPacketInfo> {
        let now = self.clock(now);
        let slot = self.slot(seq)?;
        Some(StoredPacketInfo {
            age: Self::elapsed(now, slot.stored),
            since_resent: slot.since_resent(now),
            resend_count: slot.resend_count(),
        })
    }

    /// Records a resend of `seq` now, if allowed: the packet is stored, not older than
    /// the maximum age, not resent within the last RTT, and not resent too often.
    /// Returns whether the caller should resend it.
    pub fn mark_resent(&mut self, now: Instant, seq: u16) -> bool {
        let (rtt, max_age) = (self.rtt, self.config.max_age);
        let max_resends = self.config.max_resends.min(MAX_RESENDS);
        let now = self.clock(now);
        let idx = usize::from(seq.wrapping_sub(self.oldest_seq));
        let Some(Some(slot)) = self.slots.get_mut(idx) else {
            return false;
        };
        let count = slot.resend_count();
        if Self::elapsed(now, slot.stored) >= max_age
            || count >= max_resends
            || slot.since_resent(now).is_some_and(|d| d <= rtt)
        {
            return false;
        }
        // A time whose low 28 bits are 0 is recorded as 1 ms later (0 means never).
        let time = (now.get() & RESENT_TIME_MASK).max(1);
        slot.resent = (u32::from(count + 1) << RESENT_TIME_BITS) | time;
        true
    }

    /// [`Self::mark_resent`] and, if allowed, the packet to resend.
    pub fn resend(&mut self, now: Instant, seq: u16) -> Option<T> {
        if self.mark_resent(now, seq) {
            self.get(seq).cloned()
        } else {
            None
        }
    }

    /// Evicts packets older than the maximum age from the front (the oldest numbers).
    pub fn expire(&mut self, now: Instant) {
        let max_age = self.config.max_age;
        let now = self.clock(now);
        while let Some(Some(front)) = self.slots.front() {
            if Self::elapsed(now, front.stored) < max_age {
                break;
            }
            self.remove_oldest();
        }
    }

    /// Evicts everything.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.stored = 0;
        self.holes = 0;
    }

    /// Number of stored packets.
    pub fn len(&self) -> usize {
        self.stored
    }

    /// Whether no packet is stored.
    pub fn is_empty(&self) -> bool {
        self.stored == 0
    }

    fn slot(&self, seq: u16) -> Option<&Slot<T>> {
        let idx = usize::from(seq.wrapping_sub(self.oldest_seq));
        self.slots.get(idx).and_then(Option::as_ref)
    }

    fn make_slot(&mut self, stored: NonZeroU32, packet: T) -> Slot<T> {
        self.stored += 1;
        Slot {
            data: packet,
            stored,
            resent: 0,
        }
    }

    /// Removes the oldest packet and the empty slots after it.
    fn remove_oldest(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        // The first slot is occupied (the invariant), so the count needs no look at it;
        // without gaps, neither do the slots after it (cold memory: not read at all).
        self.slots.pop_front();
        self.stored = self.stored.saturating_sub(1);
        self.oldest_seq = self.oldest_seq.wrapping_add(1);
        if self.holes == 0 {
            return;
        }
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.holes = self.holes.saturating_sub(1);
            self.oldest_seq = self.oldest_seq.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet kept by value (the tests' stand-in for a reference to a store).
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Packet(Vec<u8>);

    impl Retained for Packet {
        fn packet_len(&self) -> usize {
            self.0.len()
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn pk(bytes: &[u8]) -> Packet {
        Packet(bytes.to_vec())
    }

    fn bytes(b: &RetransmissionBuffer<Packet>, seq: u16) -> Option<&[u8]> {
        b.get(seq).map(|p| &p.0[..])
    }

    fn buf(max_items: u16) -> RetransmissionBuffer<Packet> {
        RetransmissionBuffer::new(RetransmissionBufferConfig {
            max_items,
            ..RetransmissionBufferConfig::video()
        })
    }

    #[test]
    fn stores_and_returns_packets_across_wrap() {
        let t0 = Instant::now();
        let mut b = buf(100);
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            b.insert(t0 + ms(i as u64), seq, pk(&[seq as u8; 3]))
                .unwrap();
        }
        assert_eq!(b.len(), 4);
        assert_eq!(bytes(&b, 65535), Some(&[255u8; 3][..]));
        assert_eq!(bytes(&b, 1), Some(&[1u8; 3][..]));
        assert_eq!(bytes(&b, 2), None);
        assert_eq!(bytes(&b, 65533), None);
        assert_eq!(b.info(t0 + ms(5), 0).map(|i| i.age), Some(ms(3)));
    }

    #[test]
    fn duplicates_gaps_and_out_of_order() {
        let t0 = Instant::now();
        let mut b = buf(100);
        b.insert(t0, 10, pk(b"a")).unwrap();
        b.insert(t0, 13, pk(b"d")).unwrap();
        assert_eq!(bytes(&b, 11), None);
        // Fill a gap.
        b.insert(t0, 12, pk(b"c")).unwrap();
        assert_eq!(bytes(&b, 12), Some(&b"c"[..]));
        assert_eq!(
            b.insert(t0, 13, pk(b"x")),
            Err(RetransmissionBufferError::Duplicate(13))
        );
        // Older than the oldest, still fits.
        b.insert(t0, 8, pk(b"z")).unwrap();
        assert_eq!(bytes(&b, 8), Some(&b"z"[..]));
        assert_eq!(bytes(&b, 9), None);
        assert_eq!(b.len(), 4);
        // 44 behind the oldest still fits; 5544 behind does not.
        b.insert(t0, 65500, pk(b"w")).unwrap();
        assert_eq!(b.len(), 5);
        assert_eq!(
            b.insert(t0, 60000, pk(b"o")),
            Err(RetransmissionBufferError::TooOld(60000))
        );
        assert_eq!(
            b.insert(t0, 1, pk(&[0; MAX_PACKET_LEN + 1])),
            Err(RetransmissionBufferError::TooLarge(MAX_PACKET_LEN + 1))
        );
    }

    #[test]
    fn bounded_by_count() {
        let t0 = Instant::now();
        let mut b = buf(50);
        for i in 0..500u16 {
            b.insert(t0, i.wrapping_add(65400), pk(b"p")).unwrap();
            assert!(b.slots.len() <= 50);
            assert_eq!(b.holes, b.slots.iter().filter(|s| s.is_none()).count());
        }
        assert_eq!(b.len(), 50);
        assert!(bytes(&b, 65400u16.wrapping_add(449)).is_none());
        assert!(bytes(&b, 65400u16.wrapping_add(450)).is_some());
        // A jump larger than the buffer clears it.
        b.insert(t0, 30000, pk(b"j")).unwrap();
        assert_eq!(b.len(), 1);
        // A gap evicts just enough.
        b.insert(t0, 30040, pk(b"k")).unwrap();
        b.insert(t0, 30060, pk(b"l")).unwrap();
        assert_eq!(bytes(&b, 30000), None);
        assert!(bytes(&b, 30040).is_some());
        assert!(b.slots.len() <= 50);
    }

    #[test]
    fn bounded_by_age() {
        let t0 = Instant::now();
        let mut b = RetransmissionBuffer::<Packet>::new(RetransmissionBufferConfig::audio());
        b.insert(t0, 1, pk(b"1")).unwrap();
        b.insert(t0 + ms(500), 2, pk(b"2")).unwrap();
        b.insert(t0 + ms(1000), 3, pk(b"3")).unwrap();
        // 1 expired at insertion time.
        assert_eq!(bytes(&b, 1), None);
        assert_eq!(b.len(), 2);
        b.expire(t0 + ms(1600));
        assert_eq!(bytes(&b, 2), None);
        assert!(bytes(&b, 3).is_some());
        // Too old to resend even before expire().
        assert!(!b.mark_resent(t0 + ms(2000), 3));
        b.expire(t0 + ms(2000));
        assert!(b.is_empty());
    }

    #[test]
    fn resend_gated_by_rtt_and_count() {
        let t0 = Instant::now();
        let mut b = RetransmissionBuffer::new(RetransmissionBufferConfig {
            max_resends: 3,
            ..RetransmissionBufferConfig::video()
        });
        b.insert(t0, 7, pk(b"seven")).unwrap();
        assert_eq!(b.resend(t0 + ms(10), 7), Some(pk(b"seven")));
        // Within the default 100 ms RTT.
        assert_eq!(b.resend(t0 + ms(110), 7), None);
        assert!(b.mark_resent(t0 + ms(111), 7));
        b.set_rtt(ms(20));
        assert!(b.mark_resent(t0 + ms(132), 7));
        // Max resends reached.
        assert!(!b.mark_resent(t0 + ms(500), 7));
        let info = b.info(t0 + ms(140), 7).unwrap();
        assert_eq!(info.resend_count, 3);
        assert_eq!(info.since_resent, Some(ms(8)));
        assert!(!b.mark_resent(t0, 8));
    }

    #[test]
    fn keeps_references_to_a_shared_store() {
        let t0 = Instant::now();
        use crate::rtp_stream::StoredRef;
        let mut a: RetransmissionBuffer<StoredRef> =
            RetransmissionBuffer::new(RetransmissionBufferConfig {
                max_items: 4,
                ..RetransmissionBufferConfig::video()
            });
        let r = |timestamp| StoredRef {
            store: 1,
            seq: 70_007,
            timestamp,
            len: 1200,
        };
        a.insert(t0, 7, r(90)).unwrap();
        assert_eq!(a.get(7), Some(&r(90)));
        for i in 8..20u16 {
            a.insert(t0, i, r(0)).unwrap();
        }
        assert_eq!(a.get(7), None, "evicted");
        let too_large = StoredRef {
            len: MAX_PACKET_LEN as u16 + 1,
            ..r(0)
        };
        assert_eq!(
            a.insert(t0, 30, too_large),
            Err(RetransmissionBufferError::TooLarge(MAX_PACKET_LEN + 1))
        );
    }

    #[test]
    fn a_slot_of_a_store_reference_is_20_bytes() {
        use crate::rtp_stream::StoredRef;
        assert_eq!(std::mem::size_of::<Option<Slot<StoredRef>>>(), 20);
    }

    #[test]
    fn the_millisecond_clock_wraps_after_49_days() {
        let t0 = Instant::now();
        let mut b = buf(100);
        b.insert(t0, 1, pk(b"1")).unwrap();
        // Just before and after the clock's 2^32 ms wrap.
        let late = t0 + ms((1 << 32) - 3);
        b.insert(late, 2, pk(b"2")).unwrap();
        assert_eq!(bytes(&b, 1), None, "expired");
        assert!(b.mark_resent(late + ms(5), 2));
        assert!(!b.mark_resent(late + ms(50), 2), "within the RTT");
        assert!(b.mark_resent(late + ms(150), 2));
        let info = b.info(late + ms(160), 2).unwrap();
        assert_eq!(
            (info.age, info.since_resent, info.resend_count),
            (ms(160), Some(ms(10)), 2)
        );
        assert!(!b.mark_resent(late + ms(2000), 2), "too old");
    }

    #[test]
    fn resend_count_is_capped_at_its_four_bits() {
        let t0 = Instant::now();
        let mut b = RetransmissionBuffer::new(RetransmissionBufferConfig {
            max_resends: u8::MAX,
            ..RetransmissionBufferConfig::video()
        });
        b.set_rtt(ms(1));
        b.insert(t0, 7, pk(b"seven")).unwrap();
        let resends = (1..100u64)
            .filter(|i| b.mark_resent(t0 + ms(2 * i), 7))
            .count();
        assert_eq!(resends, usize::from(MAX_RESENDS));
    }

    #[test]
    fn hostile_sequence_numbers_do_not_panic() {
        let t0 = Instant::now();
        let mut b = buf(DEFAULT_MAX_ITEMS);
        let mut x: u32 = 99;
        for i in 0..20_000u64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let seq = (x >> 12) as u16;
            let _ = b.insert(t0 + ms(i / 10), seq, pk(&[0; 16]));
            let _ = b.resend(t0 + ms(i / 10), seq.wrapping_add(3));
            assert!(b.slots.len() <= usize::from(DEFAULT_MAX_ITEMS));
            assert!(b.len() <= b.slots.len());
            assert_eq!(b.len() + b.holes, b.slots.len());
        }
    }
}
