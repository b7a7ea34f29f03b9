//! Batched UDP I/O for the media port: `recvmmsg(2)` and `sendmmsg(2)` on Linux (through
//! `nix`'s safe wrappers), one datagram per system call elsewhere. A worker reads up to
//! [`BATCH`] datagrams per call and writes everything a round of routing produced in as
//! few calls as the batch size allows. With `KOLABMEET_UDP_GSO=1` (an experiment, see
//! `udp_gso`) a round's datagrams are grouped by destination and runs of one size go out
//! as one segmented message each.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::udp_gso::Gso;

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Socket buffer size asked for the media port, each way. The kernel default (about
/// 208 KiB) holds some 170 full-size datagrams: a burst of key frames towards many
/// consumers, or a scheduling hiccup of a few milliseconds at 100,000 packets per
/// second, overflows it and drops packets. Linux caps the request at
/// `net.core.rmem_max` / `wmem_max` (and doubles it for bookkeeping).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Asks for [`SOCKET_BUFFER`]-sized send and receive buffers on the media port; returns
/// the sizes the kernel granted (receive, send), or `None` where it cannot tell.
pub fn enlarge_buffers(udp: &UdpSocket) -> Option<(usize, usize)> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{getsockopt, setsockopt, sockopt};
        if let Err(e) = setsockopt(udp, sockopt::RcvBuf, &SOCKET_BUFFER) {
            tracing::warn!(target: "kolabmeet::worker", error = %e, "media port: receive buffer not enlarged");
        }
        if let Err(e) = setsockopt(udp, sockopt::SndBuf, &SOCKET_BUFFER) {
            tracing::warn!(target: "kolabmeet::worker", error = %e, "media port: send buffer not enlarged");
        }
        let rcv = getsockopt(udp, sockopt::RcvBuf).ok()?;
        let snd = getsockopt(udp, sockopt::SndBuf).ok()?;
        Some((rcv, snd))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = udp;
        None
    }
}

/// Reusable buffers for reading and writing batches.
pub struct UdpBatch {
    bufs: Vec<Vec<u8>>,
    max_datagram: usize,
    #[cfg(target_os = "linux")]
    recv_headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    #[cfg(target_os = "linux")]
    send_headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    /// Whether sends use UDP GSO.
    gso: Gso,
    /// The datagrams' order when grouped by destination (GSO only; reused).
    order: Vec<u32>,
    /// One message's header with room for the `UDP_SEGMENT` control message.
    #[cfg(target_os = "linux")]
    gso_headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl UdpBatch {
    /// Buffers for [`BATCH`] datagrams of up to `max_datagram` bytes.
    pub fn new(max_datagram: usize) -> Self {
        UdpBatch {
            bufs: (0..BATCH).map(|_| vec![0; max_datagram]).collect(),
            max_datagram,
            #[cfg(target_os = "linux")]
            recv_headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
            #[cfg(target_os = "linux")]
            send_headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
            gso: Gso::from_env(),
            order: Vec::new(),
            #[cfg(target_os = "linux")]
            gso_headers: nix::sys::socket::MultiHeaders::preallocate(
                1,
                Some(nix::cmsg_space!(u16)),
            ),
        }
    }

    /// Reads up to [`BATCH`] datagrams and hands each (source, bytes) to `f`, which may
    /// rewrite the buffer in place. Returns how many were read (0: nothing waiting).
    /// Nothing is allocated per call: the system call's vectors live on the stack.
    pub fn recv(
        &mut self,
        socket: &UdpSocket,
        mut f: impl FnMut(SocketAddr, &mut Vec<u8>),
    ) -> io::Result<usize> {
        let mut got = [(0usize, None::<SocketAddr>); BATCH];
        let n = self.recv_raw(socket, &mut got)?;
        for (i, (len, from)) in got.into_iter().take(n).enumerate() {
            let buf = &mut self.bufs[i];
            // A datagram whose source the kernel did not give cannot be answered.
            if let Some(from) = from {
                buf.truncate(len);
                f(from, buf);
            }
            // Back to full size for the next read; only what `f` shortened is cleared.
            buf.resize(self.max_datagram, 0);
        }
        Ok(n)
    }

    /// Fills `got` with (length, source) of the datagrams read; returns how many.
    #[cfg(target_os = "linux")]
    fn recv_raw(
        &mut self,
        socket: &UdpSocket,
        got: &mut [(usize, Option<SocketAddr>); BATCH],
    ) -> io::Result<usize> {
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{MsgFlags, recvmmsg};

        let mut bufs = self.bufs.iter_mut();
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [IoSliceMut::new(
                bufs.next().map_or(&mut [][..], |b| &mut b[..]),
            )]
        });
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.recv_headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut n = 0;
        for (slot, m) in got.iter_mut().zip(results) {
            *slot = (m.bytes, m.address.as_ref().and_then(storage_to_addr));
            n += 1;
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_raw(
        &mut self,
        socket: &UdpSocket,
        got: &mut [(usize, Option<SocketAddr>); BATCH],
    ) -> io::Result<usize> {
        let (n, from) = socket.recv_from(&mut self.bufs[0])?;
        got[0] = (n, Some(from));
        Ok(1)
    }

    /// Sends `datagrams` (destination, bytes), [`BATCH`] per call; returns how many the
    /// kernel took. A datagram the kernel refuses (e.g. an unreachable destination) is
    /// skipped and counted in the error count returned second. Nothing is allocated per
    /// call.
    pub fn send<D: AsRef<[u8]>>(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[(SocketAddr, D)],
    ) -> (usize, usize) {
        #[cfg(target_os = "linux")]
        if self.gso.wanted() && datagrams.len() > 1 {
            return self.send_gso(socket, datagrams);
        }
        let (mut sent, mut failed) = (0, 0);
        let mut at = 0;
        while at < datagrams.len() {
            let end = (at + BATCH).min(datagrams.len());
            match self.send_raw(socket, &datagrams[at..end]) {
                Ok(0) => break, // the socket buffer is full: drop the rest (UDP)
                Ok(n) => {
                    sent += n;
                    at += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(target: "kolabmeet::worker", error = %e, to = %datagrams[at].0, "UDP send failed");
                    failed += 1;
                    at += 1;
                }
            }
        }
        (sent, failed)
    }

    /// One `sendmmsg(2)` of at most [`BATCH`] datagrams.
    #[cfg(target_os = "linux")]
    fn send_raw<D: AsRef<[u8]>>(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[(SocketAddr, D)],
    ) -> io::Result<usize> {
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmmsg};

        let count = datagrams.len().min(BATCH);
        let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
            [IoSlice::new(
                datagrams.get(i).map_or(&[][..], |(_, d)| d.as_ref()),
            )]
        });
        let addrs: [Option<SockaddrStorage>; BATCH] =
            std::array::from_fn(|i| datagrams.get(i).map(|(a, _)| SockaddrStorage::from(*a)));
        let cmsgs: [ControlMessage<'_>; 0] = [];
        let results = sendmmsg(
            socket.as_raw_fd(),
            &mut self.send_headers,
            iovs[..count].iter(),
            &addrs[..count],
            cmsgs,
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(results.count())
    }

    /// [`UdpBatch::send`] with GSO: the datagrams grouped by destination (in order
    /// within each), each run of one size sent as one segmented message, the rest in
    /// batches as without it.
    #[cfg(target_os = "linux")]
    fn send_gso<D: AsRef<[u8]>>(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[(SocketAddr, D)],
    ) -> (usize, usize) {
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(0..datagrams.len() as u32);
        order.sort_unstable_by_key(|&i| (datagrams[i as usize].0, i));
        let (mut sent, mut failed) = (0, 0);
        // Datagrams not in a run, sent in batches: order[plain..k].
        let mut plain = 0;
        let mut k = 0;
        let mut full = false;
        while k < order.len() && !full {
            let end = super::udp_gso::run_end(datagrams, &order, k);
            if end - k >= 2 && self.gso_ready(socket) {
                let (s, f, stop) = self.send_indexed(socket, datagrams, &order[plain..k]);
                (sent, failed, full) = (sent + s, failed + f, stop);
                if full {
                    break;
                }
                match self.send_segments(socket, datagrams, &order[k..end]) {
                    Ok(true) => {
                        sent += end - k;
                        super::udp_gso::count_run(end - k);
                        plain = end;
                    }
                    Ok(false) => full = true,
                    Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EIO as i32) => {
                        tracing::warn!(target: "kolabmeet::worker", "UDP GSO refused (EIO): sending datagram by datagram");
                        self.gso = Gso::Refused;
                        plain = k; // sent in batches below
                    }
                    Err(e) => {
                        tracing::debug!(target: "kolabmeet::worker", error = %e, "UDP GSO send failed");
                        failed += end - k;
                        plain = end;
                    }
                }
            }
            k = end;
        }
        if !full {
            let (s, f, _) = self.send_indexed(socket, datagrams, &order[plain..]);
            (sent, failed) = (sent + s, failed + f);
        }
        self.order = order;
        (sent, failed)
    }

    /// Whether the socket takes `UDP_SEGMENT` (probed once).
    #[cfg(target_os = "linux")]
    fn gso_ready(&mut self, socket: &UdpSocket) -> bool {
        if self.gso == Gso::Unprobed {
            self.gso = match nix::sys::socket::getsockopt(
                socket,
                nix::sys::socket::sockopt::UdpGsoSegment,
            ) {
                Ok(_) => Gso::On,
                Err(e) => {
                    tracing::warn!(target: "kolabmeet::worker", error = %e, "UDP GSO not available");
                    Gso::Refused
                }
            };
        }
        self.gso == Gso::On
    }

    /// Sends `datagrams[i]` for every `i` of `idx`, [`BATCH`] per call; returns how
    /// many were sent, how many failed, and whether the socket buffer was full (the rest
    /// dropped), as [`UdpBatch::send`] does.
    #[cfg(target_os = "linux")]
    fn send_indexed<D: AsRef<[u8]>>(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[(SocketAddr, D)],
        idx: &[u32],
    ) -> (usize, usize, bool) {
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmmsg};

        let (mut sent, mut failed) = (0, 0);
        let mut at = 0;
        while at < idx.len() {
            let count = (idx.len() - at).min(BATCH);
            let pick = |i: usize| idx.get(at + i).map(|&j| &datagrams[j as usize]);
            let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
                [IoSlice::new(pick(i).map_or(&[][..], |(_, d)| d.as_ref()))]
            });
            let addrs: [Option<SockaddrStorage>; BATCH] =
                std::array::from_fn(|i| pick(i).map(|(a, _)| SockaddrStorage::from(*a)));
            let cmsgs: [ControlMessage<'_>; 0] = [];
            match sendmmsg(
                socket.as_raw_fd(),
                &mut self.send_headers,
                iovs[..count].iter(),
                &addrs[..count],
                cmsgs,
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|r| r.count())
            .map_err(io::Error::from)
            {
                Ok(0) => return (sent, failed, true),
                Ok(n) => {
                    sent += n;
                    at += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (sent, failed, true),
                Err(e) => {
                    tracing::debug!(target: "kolabmeet::worker", error = %e, "UDP send failed");
                    failed += 1;
                    at += 1;
                }
            }
        }
        (sent, failed, false)
    }

    /// Sends `datagrams[i]` for the `i` of `run` (one destination, one size but maybe
    /// the last) as one message with `UDP_SEGMENT`. `Ok(false)`: the socket buffer is
    /// full.
    #[cfg(target_os = "linux")]
    fn send_segments<D: AsRef<[u8]>>(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[(SocketAddr, D)],
        run: &[u32],
    ) -> io::Result<bool> {
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmmsg};

        use super::udp_gso::MAX_SEGMENTS;

        let first = &datagrams[run[0] as usize];
        let segment = first.1.as_ref().len() as u16;
        let iovs: [IoSlice<'_>; MAX_SEGMENTS] = std::array::from_fn(|i| {
            IoSlice::new(
                run.get(i)
                    .map_or(&[][..], |&j| datagrams[j as usize].1.as_ref()),
            )
        });
        let message: [&[IoSlice<'_>]; 1] = [&iovs[..run.len().min(MAX_SEGMENTS)]];
        let addrs = [Some(SockaddrStorage::from(first.0))];
        let cmsgs = [ControlMessage::UdpGsoSegments(&segment)];
        loop {
            match sendmmsg(
                socket.as_raw_fd(),
                &mut self.gso_headers,
                message.iter(),
                addrs,
                cmsgs,
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|r| r.count())
            .map_err(io::Error::from)
            {
                Ok(n) => return Ok(n > 0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn send_raw<D: AsRef<[u8]>>(
        &mut self,
        socket: &UdpSocket,
        datagrams: &[(SocketAddr, D)],
    ) -> io::Result<usize> {
        let (to, data) = &datagrams[0];
        socket.send_to(data.as_ref(), *to).map(|_| 1)
    }
}

#[cfg(target_os = "linux")]
fn storage_to_addr(s: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4(std::net::SocketAddrV4::from(*v4)));
    }
    s.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(std::net::SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_over_loopback() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = b.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let datagrams: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, &p[..])).collect();
        let mut batch = UdpBatch::new(2048);
        assert_eq!(batch.send(&a, &datagrams), (100, 0));
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut calls = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < 100 && std::time::Instant::now() < deadline {
            match batch.recv(&b, |from, buf| {
                assert_eq!(from, a.local_addr().unwrap());
                got.push(buf.clone());
            }) {
                Ok(_) => calls += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, payloads, "every datagram, in order, at its length");
        assert!(calls <= 100 / BATCH + 2, "read in batches ({calls} calls)");
        // Nothing left: would block.
        assert_eq!(
            batch.recv(&b, |_, _| {}).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn gso_runs_arrive_as_the_datagrams_they_were() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        // Interleaved destinations; runs of one size with shorter ones between.
        let payloads: Vec<(SocketAddr, Vec<u8>)> = (0..90u8)
            .map(|i| {
                let to = if i % 3 == 0 { to_c } else { to_b };
                let len = if i % 7 == 0 { 60 } else { 1000 };
                (to, vec![i; len])
            })
            .collect();
        let mut batch = UdpBatch::new(2048);
        batch.gso = Gso::Unprobed;
        assert_eq!(batch.send(&a, &payloads), (90, 0));
        assert_eq!(batch.gso, Gso::On, "loopback takes UDP_SEGMENT");
        for (sock, to) in [(&b, to_b), (&c, to_c)] {
            let want: Vec<Vec<u8>> = payloads
                .iter()
                .filter(|(t, _)| *t == to)
                .map(|(_, d)| d.clone())
                .collect();
            let mut got: Vec<Vec<u8>> = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while got.len() < want.len() && std::time::Instant::now() < deadline {
                if batch.recv(sock, |_, buf| got.push(buf.clone())).is_err() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            assert_eq!(
                got, want,
                "each destination's datagrams, in order, at their lengths"
            );
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn buffers_grow_past_the_kernel_default() {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let default = nix::sys::socket::getsockopt(&a, nix::sys::socket::sockopt::RcvBuf).unwrap();
        let (rcv, snd) = enlarge_buffers(&a).expect("Linux reports the sizes");
        // Whatever rmem_max allows, the request never shrinks the buffer, and on any
        // machine whose limit is above the default it grows.
        let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        assert!(rcv >= default && snd > 0, "{default} -> {rcv}, {snd}");
        if max > default {
            assert!(rcv > default, "{default} -> {rcv} (rmem_max {max})");
        }
    }
}
