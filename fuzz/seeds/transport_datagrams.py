"""Writes the seed corpus of the transport_datagrams fuzz target (fuzz/corpus/transport_datagrams/):
operation lists in the target's input format (see its module documentation) that carry real
media, so the fuzzer starts from packets that pass SRTP and reach routing, RTX, NACK, simulcast
and reports. Run from fuzz/: python3 seeds/transport_datagrams.py"""

import os

OUT = "corpus/transport_datagrams"

# Time steps (the high nibble of an operation byte) in the target's STEPS_MS order.
T0, T1MS, T5MS, T20MS, T100MS, T1S = 0x0, 0x6, 0x8, 0xA, 0xC, 0xE


def op(kind, step=T0):
    return bytes([(step << 4) | kind])


def rtp(stream, flags, payload=b"\x00" * 8, step=T5MS, back=0, desc=(0x10, 0, 1, 0), skip=None):
    """Operation 0: a built RTP packet on STREAMS[stream]. flags: bits 0-1 sequence step
    (1 = next, 0 = `skip` ahead), 0x04 next frame, 0x08 marker, 0x10 no MID, 0x20 no RID,
    0x40 abs-send-time, 0x80 key frame."""
    if skip is not None:
        flags &= ~0x03
    b = op(0, step) + bytes([stream, flags])
    if skip is not None:
        b += bytes([skip & 0xff])
    b += b"\x01\x00"  # transport-cc sequence
    if stream in (1, 5, 6):
        b += bytes([back])  # RTX: how far back the original sequence number is
    if stream != 2:
        b += bytes(desc)  # VP8 descriptor bytes
    return b + bytes([len(payload)]) + payload


def nack(consumer, back, more=0, step=T20MS):
    """Operation 5: one NACK from the receiver for consumer SSRC index `consumer`."""
    return (op(5, step) + b"\x00\x00\x00\x55" + bytes([0, consumer, 0, 0, back, more])
            + b"\x00" * more)


def pli(consumer, step=T20MS):
    return op(5, step) + b"\x00\x00\x00\x55" + bytes([0, consumer, 0, 2])


def rr(consumer, lost, step=T20MS):
    return (op(5, step) + b"\x00\x00\x00\x55" + bytes([0, consumer, 0, 4]) + bytes([lost])
            + b"\x00\x10\x00" + b"\x00\x00\x00\x64" + b"\x00" * 12)


def advance(quarters):
    return op(13) + bytes([quarters])


def frames(stream, n, key_first=True, flags=0x01):
    out = b""
    for i in range(n):
        key = 0x80 if (i == 0 and key_first) else 0
        out += rtp(stream, flags | 0x04 | 0x08 | 0x40 | key)
    return out


SEEDS = {
    # VP8 frames, a receiver NACK of one of them answered over RTX, a PLI, reports.
    "vp8_nack_pli": frames(0, 20) + nack(0, 3, 1) + pli(0) + advance(5) + rr(0, 40),
    # The sender's RTX repairs a gap it was NACKed for.
    "vp8_gap_rtx": frames(0, 5) + rtp(0, 0x04, skip=2) + advance(1)
    + rtp(1, 0x01, back=2) + frames(0, 5, key_first=False),
    # Opus for a while, then a long silence (consent expiry and abandonment).
    "opus_then_silence": b"".join(rtp(2, 0x05, step=T20MS) for _ in range(30)) + advance(200)
    + advance(255),
    # Simulcast by RID: both layers from a key frame, then layer 1 stops.
    "simulcast_switch": b"".join(rtp(3, 0x85 if i == 0 else 0x05) + rtp(4, 0x85 if i == 0 else 0x05)
                                 for i in range(10)) + frames(3, 20, key_first=False) + pli(3),
    # RTX by repaired-rid for layer 1, then receiver reports.
    "simulcast_rtx": b"".join(rtp(3, 0x85 if i == 0 else 0x05) + rtp(4, 0x85 if i == 0 else 0x05)
                              for i in range(5)) + rtp(6, 0x01, back=1) + rr(3, 128) + advance(8),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, "seed-" + name), "wb") as f:
        f.write(data)
print(f"{len(SEEDS)} seeds in {OUT}")
