//! This process as `/proc` shows it, for the tests of bounded state (soaks, churn): its
//! resident memory and open file descriptors.

/// Resident memory of this process, in KiB (`VmRSS` of `/proc/self/status`; 0 where
/// unreadable).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}
