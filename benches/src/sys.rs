//! Batched UDP for the benches and load tools: `sendmmsg(2)` and `recvmmsg(2)` with kernel
//! receive timestamps (`SO_TIMESTAMPNS`), the same timestamps on a TCP stream (`recvmsg(2)`),
//! and socket buffer sizes (Linux).
//!
//! This is the only module of the crate with `unsafe` code.
// Justification: these system calls and socket options are only reachable through libc's
// raw FFI (the engine's safe `nix` wrappers are private to it, and `nix` does not parse
// `SCM_TIMESTAMPNS` into a value we can use without the same work). Every block below hands
// the kernel C structures that point into buffers this module (or the caller) owns and
// keeps alive, unmoved, for the duration of the call; nothing is kept across calls.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// A socket address in the C layout `sendmmsg` takes.
enum RawAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl RawAddr {
    fn new(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => RawAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => RawAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }

    fn as_ptr(&self) -> (*mut libc::c_void, libc::socklen_t) {
        match self {
            RawAddr::V4(a) => (
                a as *const libc::sockaddr_in as *mut libc::c_void,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            RawAddr::V6(a) => (
                a as *const libc::sockaddr_in6 as *mut libc::c_void,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: `mmsghdr` is a plain C struct of integers and raw pointers, for which all
    // zero bytes are a valid value (null pointers, zero lengths).
    unsafe { std::mem::zeroed() }
}

/// Reusable headers for `sendmmsg(2)`.
#[derive(Default)]
pub struct MmsgSender {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
}

impl MmsgSender {
    /// An empty sender; its vectors grow to the largest batch sent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends every datagram to `to` in as few `sendmmsg` calls as the kernel allows (one
    /// when it takes them all); returns how many were sent. A blocking socket waits for
    /// room; a non-blocking one returns what went out before `EAGAIN`.
    pub fn send_to<D: AsRef<[u8]>>(
        &mut self,
        socket: &impl AsRawFd,
        to: SocketAddr,
        datagrams: &[D],
    ) -> io::Result<usize> {
        let n = datagrams.len();
        if n == 0 {
            return Ok(0);
        }
        let addr = RawAddr::new(to);
        let (name, namelen) = addr.as_ptr();
        self.iovs.clear();
        self.iovs.extend(datagrams.iter().map(|d| libc::iovec {
            iov_base: d.as_ref().as_ptr() as *mut libc::c_void,
            iov_len: d.as_ref().len(),
        }));
        self.hdrs.clear();
        for iov in self.iovs.iter_mut() {
            let mut h = zeroed_mmsghdr();
            h.msg_hdr.msg_name = name;
            h.msg_hdr.msg_namelen = namelen;
            h.msg_hdr.msg_iov = iov as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
        let fd = socket.as_raw_fd();
        let mut sent = 0;
        while sent < n {
            let rest = &mut self.hdrs[sent..];
            // SAFETY: `rest` points to `rest.len()` initialised headers; each names `addr`
            // (alive until the end of this function) and one iovec of `self.iovs`, which
            // points into a datagram the caller lends us for this call. The kernel only
            // reads the buffers and writes each header's `msg_len`.
            let r = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock if sent > 0 => break,
                    _ => return Err(e),
                }
            }
            sent += r as usize;
        }
        Ok(sent)
    }
}

/// Datagrams per `recvmmsg` call.
pub const RECV_BATCH: usize = 32;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;
/// Room for one `SCM_TIMESTAMPNS` control message (aligned like `cmsghdr`).
const CONTROL_WORDS: usize = 8;

/// Reusable buffers for `recvmmsg(2)` with kernel receive timestamps.
pub struct MmsgReceiver {
    bufs: Vec<Vec<u8>>,
    control: Vec<[u64; CONTROL_WORDS]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    got: Vec<(usize, Option<u64>)>,
}

impl Default for MmsgReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl MmsgReceiver {
    /// Buffers for [`RECV_BATCH`] datagrams.
    pub fn new() -> Self {
        MmsgReceiver {
            bufs: (0..RECV_BATCH).map(|_| vec![0; MAX_DATAGRAM]).collect(),
            control: vec![[0; CONTROL_WORDS]; RECV_BATCH],
            iovs: Vec::with_capacity(RECV_BATCH),
            hdrs: Vec::with_capacity(RECV_BATCH),
            got: Vec::with_capacity(RECV_BATCH),
        }
    }

    /// Reads up to [`RECV_BATCH`] waiting datagrams without blocking; `Ok(0)` when none
    /// is waiting. Read them with [`MmsgReceiver::datagram`].
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.got.clear();
        self.iovs.clear();
        self.iovs.extend(self.bufs.iter_mut().map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        }));
        self.hdrs.clear();
        for (iov, ctrl) in self.iovs.iter_mut().zip(self.control.iter_mut()) {
            let mut h = zeroed_mmsghdr();
            h.msg_hdr.msg_iov = iov as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = ctrl.as_mut_ptr() as *mut libc::c_void;
            h.msg_hdr.msg_controllen = std::mem::size_of_val(ctrl) as _;
            self.hdrs.push(h);
        }
        let r = loop {
            // SAFETY: `self.hdrs` holds RECV_BATCH initialised headers, each pointing to one
            // iovec over a buffer of `self.bufs` (MAX_DATAGRAM bytes) and to its own control
            // buffer of `self.control`, all owned by `self` and not moved during the call;
            // the kernel writes at most the lengths given. No name buffer (null) is passed.
            let r = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    RECV_BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        };
        for h in &self.hdrs[..r] {
            let stamp = timestamp_ns(&h.msg_hdr);
            self.got.push((h.msg_len as usize, stamp));
        }
        Ok(r)
    }

    /// The `i`-th datagram of the last [`MmsgReceiver::recv`] and its kernel receive time
    /// (nanoseconds since the Unix epoch, `CLOCK_REALTIME`) when the socket has
    /// [`enable_rx_timestamps`].
    pub fn datagram(&self, i: usize) -> (&[u8], Option<u64>) {
        let (len, stamp) = self.got[i];
        (&self.bufs[i][..len], stamp)
    }
}

/// The `SCM_TIMESTAMPNS` of a received message, if any.
fn timestamp_ns(hdr: &libc::msghdr) -> Option<u64> {
    // SAFETY: `hdr` is a header the kernel just filled by `recvmmsg`; its control pointer
    // and `msg_controllen` describe the control buffer it wrote, which the CMSG_* macros walk
    // without leaving it. The timespec is read unaligned from the message's data.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

/// Reads from a stream socket into `buf` (`recvmsg(2)`; blocking or not as the socket
/// is), with the kernel's receive timestamp of the last segment read (nanoseconds since
/// the Unix epoch, `CLOCK_REALTIME`) when the socket has [`enable_rx_timestamps`].
/// `Ok((0, _))` is the end of the stream.
pub fn recv_stamped(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut control = [0u64; CONTROL_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `msghdr` is a plain C struct of integers and raw pointers, for which all
    // zero bytes are a valid value (null pointers, zero lengths).
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    hdr.msg_controllen = std::mem::size_of_val(&control) as _;
    loop {
        // SAFETY: `hdr` points to one iovec over `buf` (borrowed mutably for this call) and
        // to `control`, both alive and unmoved during the call; the kernel writes at most the
        // lengths given and no name (null).
        let r = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut hdr, 0) };
        if r >= 0 {
            return Ok((r as usize, timestamp_ns(&hdr)));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn set_int_option(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live `c_int` and its exact size; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks the kernel to stamp every datagram or segment the socket receives (`SO_TIMESTAMPNS`).
pub fn enable_rx_timestamps(socket: &impl AsRawFd) -> io::Result<()> {
    set_int_option(socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Sets the socket's receive and send buffers to `bytes`, beyond `net.core.rmem_max` /
/// `wmem_max` when the process may (`SO_RCVBUFFORCE`, CAP_NET_ADMIN), else as far as the
/// limits allow.
pub fn set_buffers(socket: &impl AsRawFd, bytes: usize) {
    let v = bytes.min(i32::MAX as usize) as libc::c_int;
    if set_int_option(socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
        let _ = set_int_option(socket, libc::SOL_SOCKET, libc::SO_RCVBUF, v);
    }
    if set_int_option(socket, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v).is_err() {
        let _ = set_int_option(socket, libc::SOL_SOCKET, libc::SO_SNDBUF, v);
    }
}

/// The memory page size (`sysconf(_SC_PAGESIZE)`), for `/proc/self/statm`.
pub fn page_size() -> usize {
    // SAFETY: `sysconf` reads a constant of the system; no pointers are involved.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if r > 0 { r as usize } else { 4096 }
}

/// Raises the soft limit of open files to at least `want` (up to the hard limit);
/// returns the soft limit in force afterwards.
pub fn raise_open_files(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable `rlimit` the kernel fills.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur >= want {
        return lim.rlim_cur;
    }
    let new = libc::rlimit {
        rlim_cur: want.min(lim.rlim_max),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: passes a pointer to a live `rlimit`; the kernel only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
        new.rlim_cur
    } else {
        lim.rlim_cur
    }
}

/// Binds thread `tid` (0: the calling thread) to the CPUs in `cpus`.
pub fn pin_thread(tid: i32, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: `cpu_set_t` is a plain bit array, for which all zero bytes (no CPU) is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: `CPU_SET` writes one bit of `set`, which is live and writable; it ignores
        // CPUs beyond the set's size.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: passes a live `cpu_set_t` and its exact size; the kernel only reads it.
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs thread `tid` (0: the calling thread) under `SCHED_FIFO` at `priority` (1-99):
/// it preempts every normal task on its CPU when it wakes up (the kernel's real-time
/// throttling still leaves those 5% of each second). Needs `CAP_SYS_NICE`.
pub fn set_fifo(tid: i32, priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: passes a pointer to a live `sched_param`; the kernel only reads it.
    let r = unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the calling thread's timer slack (`PR_SET_TIMERSLACK`): how much later than
/// asked the kernel may end its sleeps (50 µs by default), for a sender that paces
/// packets to their times.
pub fn set_timer_slack(ns: u64) -> io::Result<()> {
    // SAFETY: `PR_SET_TIMERSLACK` takes one integer argument and no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// CPU time the calling thread has used so far, user and system (`CLOCK_THREAD_CPUTIME_ID`):
/// what a measurement on a shared machine should compare, since time the thread waits
/// for a core does not count.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into the one we own and pass.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
