#!/usr/bin/env python3
"""Splits a media worker's CPU samples into what each share pays for (issue 15).

    perf record -F 4000 -g -t <media-worker-0 tid> -o worker.data -- sleep 30
    perf report -i worker.data --children --sort sym --stdio -g none > children.txt
    perf report -i worker.data --no-children --sort dso,sym --stdio -g none > self.txt
    scripts/cpu_breakdown.py children.txt self.txt

Kernel shares come from the inclusive ("children") figures of the system calls' entry
points and of the loopback delivery inside the send path; user shares from the exclusive
("self") figures grouped by library. Loopback delivery (`net_rx_action` under
`sendmmsg`) is the receiving side's work that the kernel runs in the sender's context on
127.0.0.1: on a real network interface it happens elsewhere.
"""
import re
import sys


def pct(path, pattern):
    """Sum of the first percentage of the lines whose symbol matches `pattern`."""
    total = 0.0
    for line in open(path):
        m = re.match(r"\s*([0-9.]+)%\s+(?:[0-9.]+%\s+)?(.*)$", line)
        if m and re.search(pattern, m.group(2)):
            total += float(m.group(1))
    return total


def first(path, pattern):
    for line in open(path):
        m = re.match(r"\s*([0-9.]+)%\s+(?:[0-9.]+%\s+)?(.*)$", line)
        if m and re.search(pattern, m.group(2)):
            return float(m.group(1))
    return 0.0


children, selfs = sys.argv[1], sys.argv[2]
send = first(children, r"\[k\] __x64_sys_sendmmsg$")
loop = first(children, r"\[k\] net_rx_action$")
recv = first(children, r"\[k\] __x64_sys_recvmmsg$")
epoll = first(children, r"\[k\] __x64_sys_epoll_wait$")
kernel = pct(selfs, r"^\[kernel")
crypto = pct(selfs, r"^libcrypto") + pct(selfs, r"^kolabmeet-server\s+\[\.\] (srtp_|bitvector_|srtp::)")
libc = pct(selfs, r"^libc\.so")
ours = pct(selfs, r"^kolabmeet-server") - pct(selfs, r"^kolabmeet-server\s+\[\.\] (srtp_|bitvector_|srtp::)")
rows = [
    ("sendmmsg (kernel), of which", send),
    ("  loopback delivery to the receivers' sockets", loop),
    ("recvmmsg (kernel)", recv),
    ("epoll_wait: sleeping and waking (kernel)", epoll),
    ("other kernel (interrupts, page faults, ...)", max(0.0, kernel - send - recv - epoll)),
    ("SRTP: libsrtp and OpenSSL", crypto),
    ("libc (malloc, memcpy, ...)", libc),
    ("kolabmeet's own code", ours),
]
for name, v in rows:
    print(f"{v:6.1f} %  {name}")
