//! Process-level helpers shared by the test servers and tests: the open-file limit, and
//! a process's resident memory.

/// Raises the soft `RLIMIT_NOFILE` as far as allowed (1,000 concurrent streams need ~1,000
/// sockets; the `rlimit` crate caps it where macOS needs). Returns the soft limit now in
/// force; errors leave it as it was. Windows has no such limit: `u64::MAX`.
pub fn raise_nofile_limit() -> u64 {
    #[cfg(unix)]
    {
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        u64::MAX
    }
}

/// A process's resident set in KiB, from `/proc/<pid>/status` (`None` where there is no
/// such file, e.g. off Linux).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples a process's resident set every 10 ms until `stop` is sent; the task yields
/// the largest value seen (KiB).
pub fn sample_rss(
    pid: u32,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<u64>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut max = 0;
        loop {
            max = max.max(vm_rss_kib(pid).unwrap_or(0));
            tokio::select! {
                _ = &mut stopped => return max,
                _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
            }
        }
    });
    (stop, task)
}

/// The CPU time a process has used so far, in clock ticks (user + system, from
/// `/proc/<pid>/stat`); `None` where there is no such file.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}
