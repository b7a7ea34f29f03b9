"""Writes the seed corpus of the control_requests fuzz target (fuzz/corpus/control_requests/):
operation lists in the target's input format (see its module documentation) that play a whole
call, so the fuzzer starts from joined peers with connected transports, a producer and an acked
consumer carrying media. Run from fuzz/: python3 seeds/control_requests.py

Each list the target picks from costs a byte only when it holds more than one entry; the
comments give the lengths at each step."""

import os

OUT = "corpus/control_requests"
METHOD = {"join": 0, "createWebRtcTransport": 2, "connectWebRtcTransport": 4, "produce": 6,
          "pauseProducer": 10, "resumeProducer": 11, "chatMessage": 16, "moderator:kickPeer": 22}
YES_PICK = 1  # ratio(1, 16) false: take an id


def op(kind, step=0):
    return bytes([(step << 4) | kind])


def request(sock, method, picks, flag, extra=b""):
    """picks: the bytes of the four id picks (transport, producer, consumer, peer)."""
    return op(4) + sock + bytes([METHOD[method]]) + picks + bytes([flag]) + extra + b"\x01\x00"


call = b"".join([
    op(0) + b"\x00",                      # room
    op(1) + b"\x1f", op(1) + b"\x1f",     # peers A and B, every role
    op(2) + b"\x00\x00",                  # socket of A (peers: 2), "40"
    op(2) + b"\x00\x01",                  # socket of B
    # join A, join B (peers: 2; nothing else yet); flag 1: no nickname, capabilities.
    request(b"\x00", "join", bytes([YES_PICK, 0]), 1),
    request(b"\x01", "join", bytes([YES_PICK, 1]), 1),
    # transports of A, then B (transports: 0, then 1).
    request(b"\x00", "createWebRtcTransport", bytes([YES_PICK, 0]), 0),
    request(b"\x01", "createWebRtcTransport", bytes([YES_PICK, YES_PICK, 1]), 0),
    # A connects transport 0 (transports: 2), role client; its browser does ICE and DTLS.
    request(b"\x00", "connectWebRtcTransport", bytes([YES_PICK, 0, YES_PICK, 0]), 0, b"\x00"),
    op(14) + b"\x00",
    # A produces audio (SSRC 0x11223344, MID 0, source mic) on transport 0.
    request(b"\x00", "produce", bytes([YES_PICK, 0, YES_PICK, 0]), 0, b"\x44\x33\x22\x11\x00"),
    op(10) + b"\x00",                     # B acks its newConsumer
    # B connects transport 1 (transports: 2, producers: 1, consumers: 1), browser too.
    request(b"\x01", "connectWebRtcTransport",
            bytes([YES_PICK, 1, YES_PICK, YES_PICK, YES_PICK, 1]), 0, b"\x00"),
    op(14) + b"\x01",
])
media = b"".join(op(15, 8) + b"\x00\x00\x00" for _ in range(20))  # A's browser: Opus
pli = op(15) + b"\x01\x02"                                           # B's browser: PLI
pause = request(b"\x00", "pauseProducer", bytes([YES_PICK, 0, YES_PICK, YES_PICK, YES_PICK, 0]), 0)
kick = request(b"\x00", "moderator:kickPeer", bytes([YES_PICK, 0, YES_PICK, YES_PICK, YES_PICK, 1]), 0)

SEEDS = {
    "call_media": call + media + pli,
    "call_pause_kick": call + media[:40] + pause + media[:20] + kick + op(13) + b"\x00\x70",
    "call_then_silence": call + media[:40] + b"".join(op(13) + b"\xff\x7f" for _ in range(4)),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, "seed-" + name), "wb") as f:
        f.write(data)
print(f"{len(SEEDS)} seeds in {OUT}")
