"""Writes the seed corpus of the dtls_handshake fuzz target (fuzz/corpus/dtls_handshake/):
inputs in the target's format (see its module documentation) that run a whole handshake, with
the browser as DTLS client or server, the ICE check before or after connectWebRtcTransport,
flights refragmented or lost and retransmitted, so that the fuzzer starts from a handshake
that completes. Run from fuzz/: python3 seeds/dtls_handshake.py"""

import os

OUT = "corpus/dtls_handshake"

# Operations (the low nibble of an operation byte).
STUN, CONNECT, BROWSER_FLIGHT, REFRAGMENT, DROP, TO_BROWSER, BOTH_WAYS = 0, 1, 2, 4, 6, 7, 14
# Time steps (the high nibble) in the target's STEPS_MS order: 0, 10 ms, 1 s, 3 s.
T0, T10MS, T1S, T3S = 0x0, 0x8, 0xC, 0xD
# The first byte: the browser's role (bit 0: server) and its SRTP offer (bits 1-2).
CLIENT, SERVER = 0x00, 0x01
# The byte `connect` reads: 1 keeps the browser's fingerprint.
RIGHT_FINGERPRINT = b"\x01"


def op(kind, step=T0):
    return bytes([(step << 4) | kind])


def handshake(role, stun_first=True, offer=0):
    b = bytes([role | offer << 1])
    connect = op(CONNECT) + RIGHT_FINGERPRINT
    b += op(STUN) + connect if stun_first else connect + op(STUN)
    return b


SEEDS = {
    "client": handshake(CLIENT) + op(BOTH_WAYS) * 8,
    "server": handshake(SERVER) + op(BOTH_WAYS) * 8,
    "connect_first": handshake(CLIENT, stun_first=False) + op(BOTH_WAYS) * 8,
    "aes_cm": handshake(CLIENT, offer=2) + op(BOTH_WAYS) * 8,
    # The ClientHello refragmented into two records, one datagram each, then the rest
    # (a record the second piece's sequence number made look replayed is retransmitted).
    "refragmented": handshake(CLIENT)
    + op(REFRAGMENT)
    + b"\x01\x20\x00\x00\x00"
    + op(BOTH_WAYS) * 4
    + op(BOTH_WAYS, T3S) * 6,
    # Every flight one way, one by one, the first ClientHello lost and retransmitted.
    "lossy": handshake(CLIENT)
    + op(DROP)
    + b"\x00"
    + op(BROWSER_FLIGHT, T1S)
    + (op(TO_BROWSER, T10MS) + b"\x00" + op(BROWSER_FLIGHT, T10MS)) * 4
    + op(BOTH_WAYS, T3S) * 4,
}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(data)
