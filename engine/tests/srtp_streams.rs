//! Issue 8: libsrtp's per-SSRC streams are freed when their consumer or producer closes.
//! libsrtp's wildcard templates create a stream for every SSRC a context sees and never
//! drop one; a transport on which participants come and go for hours must not grow.

use kolabmeet_engine::EngineCommand;
use kolabmeet_testkit::*;

#[test]
fn ten_thousand_consumers_on_one_transport_leave_no_srtp_state() {
    let mut sim = Sim::new();
    let room = sim.room();
    let (alice, alice_t) = sim.connect_peer_at(room, 5000);
    let (bob, bob_t) = sim.connect_peer_at(room, 6000);
    let producer = sim
        .produce(
            alice,
            alice_t,
            kolabmeet_engine::ortc::MediaKind::Audio,
            opus_params(4242, "1"),
        )
        .unwrap();
    let mut seq = 0u16;
    let mut cycle = |sim: &mut Sim| {
        let consumed = setup::wire(&sim.consume(bob, bob_t, producer).unwrap());
        let consumer = consumed["id"].as_str().unwrap().parse().unwrap();
        let ssrc = consumer_ssrc(&consumed);
        // One packet out on the consumer's SSRC: libsrtp now holds a stream for it.
        seq = seq.wrapping_add(1);
        sim.send(5000, opus_packet(seq, 4242));
        assert_eq!(sim.take_rtp(6000).len(), 1, "forwarded");
        assert!(sim.core.has_srtp_stream(bob_t, ssrc, true));
        sim.core.handle_command(
            sim.now,
            EngineCommand::CloseConsumer {
                peer: bob,
                consumer,
            },
        );
        // The browser drops its receiving stream too (libwebrtc does when the consumer's
        // transceiver stops), so that what grows, if anything, is the server's.
        let browser_srtp = sim.endpoint(6000).browser.srtp().unwrap();
        browser_srtp.remove_inbound_ssrc(ssrc).unwrap();
        ssrc
    };
    // Warm up the allocator, then measure.
    for _ in 0..200 {
        cycle(&mut sim);
    }
    let rss0 = rss_kib();
    let mut ssrcs = Vec::new();
    for _ in 0..10_000 {
        ssrcs.push(cycle(&mut sim));
    }
    let rss1 = rss_kib();
    let kept = ssrcs
        .iter()
        .filter(|s| sim.core.has_srtp_stream(bob_t, **s, true))
        .count();
    assert_eq!(
        kept, 0,
        "no outbound stream left of 10,000 closed consumers"
    );
    println!(
        "RSS before {rss0} KiB, after 10,000 consumers came and went {rss1} KiB ({:+} KiB)",
        rss1 as i64 - rss0 as i64
    );
    // Each stream costs libsrtp about 400 bytes (measured: a browser context that kept
    // them grew 4 MiB over these 10,000): the server's must stay well under that.
    assert!(rss1 < rss0 + 1024, "RSS grew from {rss0} to {rss1} KiB");
    // The producer's inbound stream goes with it.
    assert!(sim.core.has_srtp_stream(alice_t, 4242, false));
    sim.core.handle_command(
        sim.now,
        EngineCommand::CloseProducer {
            tag: kolabmeet_engine::RequestTag(u64::MAX),
            peer: alice,
            producer,
        },
    );
    assert!(!sim.core.has_srtp_stream(alice_t, 4242, false));
}
