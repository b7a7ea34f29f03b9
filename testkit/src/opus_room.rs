//! An Opus call on a real worker ([`UdpWorker`]) for the tests of what the worker does
//! under faults and churn: one publisher and its receivers, each with the SRTP session of
//! its client end in the test's hands (to protect what it sends, to read what arrives).

use kolabmeet_engine::RoomId;
use kolabmeet_engine::crypto::SrtpSession;

use crate::packets::opus_packet;
use crate::params::Media;
use crate::setup::{Publisher, Subscriber, create_room, setup_consumers, setup_producer};
use crate::udp_worker::{UdpClient, UdpWorker};

/// The call; see the module documentation.
pub struct OpusRoom {
    /// The room.
    pub room: RoomId,
    /// The publishing peer and its producer.
    pub publisher: Publisher<UdpClient>,
    /// The publisher's outbound SRTP.
    pub send_srtp: SrtpSession,
    /// The receivers, each with its inbound SRTP.
    pub receivers: Vec<(Subscriber<UdpClient>, SrtpSession)>,
}

impl OpusRoom {
    /// A new room on `worker`: a publisher sending Opus with `ssrc`, and `receivers`
    /// peers consuming it, all connected (ICE, DTLS, SRTP).
    pub fn start(worker: &mut UdpWorker, ssrc: u32, receivers: usize) -> Result<Self, String> {
        let room = create_room(worker);
        let mut publisher = setup_producer(worker, room, Media::Opus, ssrc)?;
        let subscribers = setup_consumers(worker, room, publisher.producer, receivers)?;
        let send_srtp = publisher
            .peer
            .client
            .browser
            .take_srtp()
            .ok_or("the publisher has no SRTP")?;
        let receivers = subscribers
            .into_iter()
            .map(|mut s| {
                let srtp = s
                    .peer
                    .client
                    .browser
                    .take_srtp()
                    .ok_or("a receiver has no SRTP")?;
                Ok((s, srtp))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            room,
            publisher,
            send_srtp,
            receivers,
        })
    }

    /// The publisher sends Opus packet number `seq`.
    pub fn send(&mut self, seq: u16) {
        let mut p = opus_packet(seq, self.publisher.ssrc);
        if self.send_srtp.protect_rtp(&mut p).is_ok() {
            let _ = self.publisher.peer.client.socket.send(&p);
        }
    }

    /// The packets of the call that arrived at receiver `k` since the last look.
    pub fn received(&mut self, k: usize) -> usize {
        self.receivers
            .get_mut(k)
            .map_or(0, |(s, srtp)| s.peer.client.drain_rtp(srtp, s.ssrc))
    }
}
