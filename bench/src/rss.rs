//! The process's peak resident memory, for commands and examples that report it.

/// Peak resident set size of this process so far (`VmHWM` in `/proc/self/status`), MiB;
/// `None` where the kernel does not report it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_a_peak() {
        let mib = super::peak_rss_mib().expect("Linux reports VmHWM");
        assert!(mib > 0.0);
    }
}
