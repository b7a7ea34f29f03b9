//! One WebRTC transport's send-side bandwidth estimate (issue 9): transport-cc feedback
//! through the delay-based and loss-based controllers, REMB where the receiver negotiated
//! only `goog-remb` (draft-alvestrand-rmcat-remb-03), always within configured bounds
//! whatever the receiver reports.

use std::time::{Duration, Instant};

use kolabmeet_net::rtcp::TransportCc;

use super::acked_bitrate::AckedBitrate;
use super::aimd_rate_control::AimdRateControl;
use super::bitrate::Bitrate;
use super::feedback_reader::{FeedbackReader, PacketResult};
use super::inter_arrival::InterArrival;
use super::loss_based::LossBasedControl;
use super::sent_history::SentHistory;
use super::trendline::{BandwidthUsage, TrendlineDetector};

/// After this long without transport-cc feedback, REMB (if any) is the estimate.
const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds and start of an estimate.
#[derive(Debug, Clone, Copy)]
pub struct BweConfig {
    /// Where the estimate starts.
    pub start: Bitrate,
    /// Never below.
    pub min: Bitrate,
    /// Never above.
    pub max: Bitrate,
}

impl Default for BweConfig {
    fn default() -> Self {
        Self {
            start: Bitrate::kbps(600),
            min: Bitrate::kbps(30),
            max: Bitrate::mbps(30),
        }
    }
}

/// The estimate of one transport, and everything it is made from.
#[derive(Debug)]
pub struct SendSideBwe {
    config: BweConfig,
    history: SentHistory,
    reader: FeedbackReader,
    inter_arrival: InterArrival,
    trendline: TrendlineDetector,
    acked: AckedBitrate,
    delay_based: AimdRateControl,
    loss_based: LossBasedControl,
    rtt: Duration,
    remb: Option<Bitrate>,
    last_feedback: Option<Instant>,
    estimate: Bitrate,
    results: Vec<PacketResult>,
}

impl SendSideBwe {
    /// An estimate starting at `config.start`.
    pub fn new(config: BweConfig) -> Self {
        Self {
            config,
            history: SentHistory::default(),
            reader: FeedbackReader::default(),
            inter_arrival: InterArrival::default(),
            trendline: TrendlineDetector::default(),
            acked: AckedBitrate::default(),
            delay_based: AimdRateControl::new(config.start, config.min, config.max),
            loss_based: LossBasedControl::default(),
            rtt: Duration::from_millis(100),
            remb: None,
            last_feedback: None,
            estimate: config.start.clamp_to(config.min, config.max),
            results: Vec::new(),
        }
    }

    /// A packet with transport-wide number `seq` and `size` bytes went out at `now`.
    pub fn on_packet_sent(&mut self, now: Instant, seq: u16, size: usize) {
        self.history.on_sent(now, seq, size);
    }

    /// A receiver's transport-cc feedback arrived.
    pub fn on_transport_cc(&mut self, now: Instant, fb: &TransportCc<'_>) {
        self.results.clear();
        self.reader.read(fb, &mut self.history, &mut self.results);
        if self.results.is_empty() {
            return;
        }
        self.last_feedback = Some(now);
        self.results.sort_by_key(|r| r.seq);
        let mut lost = 0;
        for r in &self.results {
            match r.arrival_us {
                Some(arrival) => {
                    self.acked.on_arrival(arrival, r.size);
                    if let Some(delta) = self.inter_arrival.on_packet(r) {
                        self.trendline.on_delta(&delta);
                    }
                }
                None => lost += 1,
            }
        }
        self.loss_based
            .on_feedback(lost, u32::try_from(self.results.len()).unwrap_or(u32::MAX));
        let delay = self
            .delay_based
            .update(self.trendline.usage(), self.acked.rate(), now);
        self.estimate = self
            .loss_based
            .cap(delay, self.rtt, now)
            .clamp_to(self.config.min, self.config.max);
    }

    /// A receiver's REMB (draft-alvestrand-rmcat-remb-03 §2.2) arrived: the estimate where
    /// no transport-cc feedback comes, and a cap where it does.
    pub fn on_remb(&mut self, now: Instant, bitrate: u64) {
        let remb = Bitrate(bitrate).clamp_to(self.config.min, self.config.max);
        self.remb = Some(remb);
        let twcc_alive = self
            .last_feedback
            .is_some_and(|t| now.saturating_duration_since(t) < FEEDBACK_TIMEOUT);
        self.estimate = if twcc_alive {
            self.estimate.min(remb)
        } else {
            remb
        };
    }

    /// A round-trip time measured (RTCP report blocks).
    pub fn on_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt.min(Duration::from_secs(5));
        self.delay_based.set_rtt(self.rtt);
    }

    /// The estimate.
    pub fn estimate(&self) -> Bitrate {
        self.estimate
    }

    /// What the delay detector says (stats).
    pub fn usage(&self) -> BandwidthUsage {
        self.trendline.usage()
    }

    /// The acknowledged rate (stats).
    pub fn acked(&self) -> Option<Bitrate> {
        self.acked.rate()
    }

    /// The last loss fraction (stats).
    pub fn loss(&self) -> f64 {
        self.loss_based.loss()
    }

    /// Feedback entries naming packets never sent or reported twice (hostile receivers).
    pub fn unknown_reports(&self) -> u64 {
        self.reader.unknown
    }
}
