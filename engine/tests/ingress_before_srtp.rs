//! Issue 8, "find the stream before decrypting": a worker reads the header of SRTP (in
//! the clear, RFC 3711 §3.1) to find the producer stream of a packet (SSRC, MID, RID)
//! before it decrypts; a packet no stream wants is dropped without decryption, and an
//! SSRC is learnt (bound to a simulcast layer by its RID) only from a packet that
//! authenticated.

use kolabmeet_testkit::*;

use kolabmeet_net::rtp::RtpPacket;

/// A sender at [`SENDER`] producing simulcast (layers `r0`, `r1` named by RID only), a
/// receiver at [`RECEIVER`] consuming it.
fn call() -> (Sim, kolabmeet_engine::TransportId) {
    let call = Call::video(simulcast_params());
    (call.sim, call.sender.1)
}

/// A packet of layer `rid` from SSRC `ssrc`, protected by the sender's browser, its
/// authentication tag broken when `forged`.
fn packet(sim: &mut Sim, seq: u16, ssrc: u32, rid: &str, forged: bool) -> Vec<u8> {
    let p = chrome_packet(
        96,
        seq,
        3000 * u32::from(seq),
        ssrc,
        "0",
        Some(rid),
        &vp8(true, 7),
    );
    let mut p = sim.protect(SENDER, p);
    if forged {
        let last = p.len() - 1;
        p[last] ^= 1;
    }
    p
}

#[test]
fn what_no_stream_wants_is_dropped_before_decryption() {
    let (mut sim, sender_t) = call();
    let drops = |sim: &Sim| sim.core.transport_drops(sender_t).unwrap();
    // A stranger SSRC naming no layer, with a broken tag: not a stream's, so never
    // decrypted (no SRTP failure counted), just counted as unwanted.
    let unknown = sim.core.counters().unknown_ssrc;
    let p = packet(&mut sim, 1, 9999, "r7", true);
    sim.raw(SENDER, &p);
    assert_eq!(sim.core.counters().unknown_ssrc, unknown + 1);
    assert_eq!(drops(&sim).srtp, 0, "no decryption spent on it");
    // A header that does not parse: dropped before decryption too.
    sim.raw(SENDER, &[0x80, 96, 0, 1, 0, 0]);
    assert_eq!(drops(&sim).malformed, 1);
    assert_eq!(drops(&sim).srtp, 0);
    // A stream's packet with a broken tag is decrypted, and refused.
    let p = packet(&mut sim, 2, 1111, "r0", true);
    sim.raw(SENDER, &p);
    assert_eq!(drops(&sim).srtp, 1);
    assert!(sim.take_rtp(RECEIVER).is_empty());
}

#[test]
fn an_ssrc_is_learnt_only_from_an_authenticated_packet() {
    let (mut sim, sender_t) = call();
    // A forged packet names layer r0 from SSRC 6666: refused, and 6666 not learnt.
    let forged = packet(&mut sim, 1, 6666, "r0", true);
    sim.raw(SENDER, &forged);
    assert_eq!(sim.core.transport_drops(sender_t).unwrap().srtp, 1);
    assert!(sim.take_rtp(RECEIVER).is_empty());
    // The real sender's SSRC for r0 is then learnt from its first genuine packet, and
    // its media flows.
    let genuine = packet(&mut sim, 2, 1111, "r0", false);
    sim.raw(SENDER, &genuine);
    let got = sim.take_rtp(RECEIVER);
    assert_eq!(got.len(), 1, "the genuine SSRC is learnt and forwarded");
    let seq = RtpPacket::parse(&got[0][..]).unwrap().sequence_number();
    // Genuine packets from 6666 naming r0 are strangers now: the layer's SSRC is known.
    let unknown = sim.core.counters().unknown_ssrc;
    let p = packet(&mut sim, 3, 6666, "r0", false);
    sim.raw(SENDER, &p);
    assert!(sim.take_rtp(RECEIVER).is_empty());
    assert_eq!(sim.core.counters().unknown_ssrc, unknown + 1);
    // The learnt SSRC routes without its RID from now on.
    let plain = chrome_packet(96, 4, 12_000, 1111, "0", None, &vp8(false, 8));
    sim.send(SENDER, plain);
    let got = sim.take_rtp(RECEIVER);
    assert_eq!(got.len(), 1);
    assert_eq!(
        RtpPacket::parse(&got[0][..]).unwrap().sequence_number(),
        seq.wrapping_add(2),
        "numbers continue, the stranger's left a gap"
    );
}
