//! Inputs run on copies of one prepared state: a stateful target (a worker core with
//! connected WebRTC transports: ICE, two DTLS handshakes, producers and consumers) sets
//! its state up once per process, and each input runs in a forked child of the process,
//! on the child's copy-on-write copy of that state. Every input therefore starts from
//! exactly the same connected state (the same DTLS and SRTP keys, libsrtp contexts,
//! random generator and hash seeds; nothing an earlier input did), which no `Clone` of
//! the core could give: the DTLS stack's and libsrtp's state cannot be copied otherwise.
//!
//! Coverage: the child's sanitizer-coverage counters (the `__sancov_cntrs` section
//! libFuzzer reads after each input) are copied back into the parent's through a shared
//! mapping, so libFuzzer sees what the input covered. What the child's compare
//! instructions saw (libFuzzer's table of recent compares, the source of its `DE:`
//! dictionary hints) and its stack depth stay in the child: mutations guided by them are
//! lost for the code that runs there, nothing else.
//!
//! Crashes: a panic in the child aborts it; libFuzzer's handler in the child prints the
//! report and writes the crash input, and the parent then panics too (so the run stops
//! and `cargo fuzz run <target> <crash file>` reproduces it the same way). A child that
//! hangs is killed with its parent (`PR_SET_PDEATHSIG`) when libFuzzer's timeout ends it.
//!
//! Without sanitizer coverage (`cargo fuzz coverage` builds) or with
//! `KOLABMEET_FUZZ_IN_PROCESS=1` (to debug an input in one process), each input runs in
//! process on a state built for it, as the targets did before.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::OnceLock;

/// The section the sanitizer-coverage counters of `-sanitizer-coverage-inline-8bit-counters`
/// are in (one byte per instrumented edge).
const COUNTERS_SECTION: &[u8] = b"__sancov_cntrs";

/// Exit status of a child that ran its input to the end.
const CHILD_OK: i32 = 0;

/// A state set up once (by `make`, on first use) and the inputs run on copies of it. See
/// the module documentation.
pub struct Template<T> {
    make: fn() -> T,
    state: Option<T>,
}

impl<T> Template<T> {
    /// A template whose state `make` builds on the first input.
    pub const fn new(make: fn() -> T) -> Self {
        Template { make, state: None }
    }

    /// Runs `input` on a copy of the state: in a forked child when the counters can be
    /// carried back, else in process on a fresh state.
    pub fn run(&mut self, input: impl FnOnce(&mut T)) {
        let Some(shared) = shared_counters() else {
            let mut fresh = (self.make)();
            input(&mut fresh);
            return;
        };
        let state = self.state.get_or_insert_with(self.make);
        shared.run_in_child(state, input);
    }
}

/// The process's coverage counters and a mapping shared with the children, of the same
/// size, that a child copies its counters into before it exits.
struct SharedCounters {
    counters: *mut u8,
    shared: *mut u8,
    len: usize,
}

// SAFETY: the pointers are to the process's own counters section and to a mapping that
// lives as long as the process; they are only used from the thread libFuzzer runs inputs
// on (the `Template`'s owner), and hold no thread-bound data.
unsafe impl Send for SharedCounters {}
// SAFETY: as above: shared only to be stored in a `OnceLock`.
unsafe impl Sync for SharedCounters {}

/// The counters and their shared mapping, or `None` when inputs run in process.
fn shared_counters() -> Option<&'static SharedCounters> {
    static SHARED: OnceLock<Option<SharedCounters>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if std::env::var_os("KOLABMEET_FUZZ_IN_PROCESS").is_some_and(|v| v != "0") {
                return None;
            }
            let (counters, len) = counters_section()?;
            // SAFETY: a fresh anonymous shared mapping; no existing memory is touched.
            let shared = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if shared == libc::MAP_FAILED {
                return None;
            }
            Some(SharedCounters {
                counters: counters as *mut u8,
                shared: shared.cast(),
                len,
            })
        })
        .as_ref()
}

impl SharedCounters {
    /// Forks; the child runs `input` on its copy of `state`, copies its counters to the
    /// shared mapping and exits; the parent waits and takes the counters.
    fn run_in_child<T>(&self, state: &mut T, input: impl FnOnce(&mut T)) {
        // SAFETY: the child only runs Rust code on its own copy of the address space and
        // leaves with `_exit` (no atexit handler, no stdio flush of the parent's buffers).
        // The only other thread of a fuzzing process, libFuzzer's RSS watcher, holds no
        // lock the child needs (glibc's and the sanitizer's allocators lock across fork).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            panic!("fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: prctl with an integer signal number; the child dies with its parent
            // (a hanging input ends when libFuzzer's timeout ends the parent).
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            input(state);
            // SAFETY: both regions are `len` bytes, valid for the process's lifetime,
            // and distinct mappings.
            unsafe { std::ptr::copy_nonoverlapping(self.counters, self.shared, self.len) };
            // SAFETY: ends the child at once, as documented above.
            unsafe { libc::_exit(CHILD_OK) };
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "waitpid: {e}");
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == CHILD_OK {
            // SAFETY: as in the child; the child has exited, nothing writes the mapping.
            unsafe { std::ptr::copy_nonoverlapping(self.shared, self.counters, self.len) };
            return;
        }
        panic!(
            "the input failed in its forked copy of the state (wait status {status:#x}); \
             the child's report is above"
        );
    }
}

/// Where the coverage counters are in this process, from the section headers of
/// `/proc/self/exe` (64-bit little-endian ELF) and the load offset of the executable;
/// `None` when there is no such section.
fn counters_section() -> Option<(usize, usize)> {
    let mut exe = File::open("/proc/self/exe").ok()?;
    let mut header = [0u8; 64];
    exe.read_exact(&mut header).ok()?;
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u64_at = |b: &[u8], at: usize| {
        u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) as usize
    };
    let (entry, shoff) = (u64_at(&header, 24), u64_at(&header, 40));
    let (shentsize, shnum, shstrndx) = (
        u16_at(&header, 58),
        u16_at(&header, 60),
        u16_at(&header, 62),
    );
    if shentsize < 64 || shstrndx >= shnum {
        return None;
    }
    let mut sections = vec![0u8; shentsize * shnum];
    exe.seek(SeekFrom::Start(shoff as u64)).ok()?;
    exe.read_exact(&mut sections).ok()?;
    let section = |i: usize| &sections[i * shentsize..(i + 1) * shentsize];
    let names = section(shstrndx);
    let mut strtab = vec![0u8; u64_at(names, 32)];
    exe.seek(SeekFrom::Start(u64_at(names, 24) as u64)).ok()?;
    exe.read_exact(&mut strtab).ok()?;
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave the process.
    let loaded_entry = unsafe { libc::getauxval(libc::AT_ENTRY) } as usize;
    let bias = loaded_entry.wrapping_sub(entry);
    (0..shnum).find_map(|i| {
        let s = section(i);
        let name = strtab.get(u32::from_le_bytes(s[..4].try_into().ok()?) as usize..)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        let (addr, size) = (u64_at(s, 16), u64_at(s, 32));
        (name == COUNTERS_SECTION && addr != 0 && size != 0)
            .then(|| (addr.wrapping_add(bias), size))
    })
}
