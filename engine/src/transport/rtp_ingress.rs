//! RTP as a hosted transport takes it in: the header read once (RFC 3711 §3.1 leaves it
//! in the clear), the producer and encoding found from it in one lookup of the
//! transport's [`RtpListener`](super::RtpListener), and only then decrypted, so a packet
//! no producer wants costs no SRTP work. The worker gets the packet back decrypted, with
//! its producer, encoding and header, and hands it to the router.
//!
//! The one exception is the first packet of an encoding whose SSRC was never signalled
//! (a simulcast layer named only by its RID, RFC 8852): its MID names the producer
//! (RFC 8843 §15), the producer says which encoding its RID is, and
//! [`MediaTransport::accept_new_ssrc`] decrypts it and binds the SSRC, so that the
//! encoding's next packet is a single lookup again. An SSRC is bound only once a packet
//! carrying it authenticated: a forged header teaches the transport nothing.

use std::time::Instant;

use kolabmeet_net::rtp::RtpHeader;

use super::media_transport::MediaTransport;
use super::rtp_listener::{Found, StreamRef};
use crate::arena::ProducerKey;

/// What [`MediaTransport::receive_rtp`] made of an RTP packet.
#[derive(Debug, Clone)]
pub enum RtpIn {
    /// Decrypted in place: encoding `stream` of `producer`; `header` describes the
    /// packet as it now is in the buffer.
    Media {
        /// The producer it is for.
        producer: ProducerKey,
        /// Which of the producer's encodings, and whether RTX.
        stream: StreamRef,
        /// The header, read once.
        header: RtpHeader,
    },
    /// A new SSRC whose MID names `producer`; still protected. The producer says which
    /// encoding it is, then [`MediaTransport::accept_new_ssrc`] takes it in.
    NewSsrc {
        /// The producer its MID names.
        producer: ProducerKey,
        /// The header, read once.
        header: RtpHeader,
    },
    /// Its SSRC and MID name no producer of the transport; not decrypted.
    Unknown,
    /// Dropped by the connection (a header that does not parse, failed authentication,
    /// a replay, not connected), counted in its drop counters.
    Dropped,
}

impl MediaTransport {
    /// Takes in an RTP packet its connection left protected
    /// ([`Received::RtpToRoute`](super::Received::RtpToRoute)); see the module
    /// documentation. A decrypted packet is also recorded for transport-wide congestion
    /// control.
    pub fn receive_rtp(&mut self, now: Instant, buf: &mut Vec<u8>) -> RtpIn {
        let Ok(header) = RtpHeader::parse(buf) else {
            self.connection.drop_malformed();
            return RtpIn::Dropped;
        };
        match self.listener.find(&header, buf) {
            Some(Found::Known(producer, stream)) => {
                if !self.unprotect_rtp(buf) {
                    return RtpIn::Dropped;
                }
                self.record_twcc(now, &header, buf);
                RtpIn::Media {
                    producer,
                    stream,
                    header,
                }
            }
            Some(Found::ByMid(producer)) => RtpIn::NewSsrc { producer, header },
            None => RtpIn::Unknown,
        }
    }

    /// Takes in the packet [`MediaTransport::receive_rtp`] returned as
    /// [`RtpIn::NewSsrc`], once its producer said it is encoding `stream`: decrypts it and,
    /// if it authenticated, binds its SSRC to that encoding. `false` (counted) when it
    /// does not authenticate.
    pub fn accept_new_ssrc(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        header: &RtpHeader,
        producer: ProducerKey,
        stream: StreamRef,
    ) -> bool {
        if !self.unprotect_rtp(buf) {
            return false;
        }
        self.listener.bind(header.ssrc, producer, stream);
        self.record_twcc(now, header, buf);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::arena::{Arena, RouterKey};
    use crate::ids::{PeerId, TransportId};
    use crate::transport::PlainTransport;
    use crate::transport::rtp_listener::tests::packet;

    /// A plain transport (RTP in the clear, so no keys are needed) listening for one
    /// producer with media SSRC 1111 on encoding 0 and MID "0".
    fn transport() -> (MediaTransport, ProducerKey) {
        let addr = |p| SocketAddr::from(([127, 0, 0, 1], p));
        let router = Arena::<RouterKey, ()>::new().insert(());
        let producer = Arena::<ProducerKey, ()>::new().insert(());
        let connection = PlainTransport::new(addr(40000), addr(40001));
        let mut t =
            MediaTransport::new_plain(TransportId::random(), PeerId::random(), router, connection);
        let low = StreamRef {
            stream: 0,
            rtx: false,
        };
        t.listener
            .add(producer, &[(1111, low)], Some(("0", 1)))
            .expect("a free SSRC and MID");
        (t, producer)
    }

    #[test]
    fn a_known_ssrc_comes_back_with_its_encoding_a_new_one_once_accepted() {
        let now = Instant::now();
        let (mut t, pk) = transport();
        let mut known = packet(1111, None);
        match t.receive_rtp(now, &mut known) {
            RtpIn::Media {
                producer,
                stream,
                header,
            } => {
                assert_eq!((producer, stream.stream, stream.rtx), (pk, 0, false));
                assert_eq!(header.ssrc, 1111);
            }
            other => panic!("a signalled SSRC: {other:?}"),
        }
        // A layer named by RID alone: its MID names the producer; nothing is bound
        // until it is accepted.
        let mut new = packet(3333, Some(b"0"));
        let RtpIn::NewSsrc { producer, header } = t.receive_rtp(now, &mut new) else {
            panic!("a new SSRC with the producer's MID");
        };
        assert_eq!(producer, pk);
        assert!(matches!(
            t.receive_rtp(now, &mut packet(3333, None)),
            RtpIn::Unknown
        ));
        let high = StreamRef {
            stream: 2,
            rtx: false,
        };
        assert!(t.accept_new_ssrc(now, &mut new, &header, producer, high));
        match t.receive_rtp(now, &mut packet(3333, None)) {
            RtpIn::Media { stream, .. } => assert_eq!(stream, high),
            other => panic!("a learnt SSRC: {other:?}"),
        }
        // Another MID, no known SSRC: nobody's; a header that does not parse: dropped
        // and counted by the connection.
        assert!(matches!(
            t.receive_rtp(now, &mut packet(4444, Some(b"7"))),
            RtpIn::Unknown
        ));
        let before = t.connection.drops().malformed;
        assert!(matches!(
            t.receive_rtp(now, &mut vec![0x80, 96, 0]),
            RtpIn::Dropped
        ));
        assert_eq!(t.connection.drops().malformed, before + 1);
    }
}
