//! Process memory, read from /proc (Linux); zero elsewhere.

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// Peak resident set size (VmHWM) in bytes.
pub fn peak_rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_is_measured_on_linux() {
        if cfg!(target_os = "linux") {
            let r = super::rss_bytes();
            assert!(r > 1024 * 1024, "rss {r}");
            assert!(super::peak_rss_bytes() >= r / 2);
        }
    }
}
