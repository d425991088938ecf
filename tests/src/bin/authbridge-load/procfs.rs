//! What the kernel says about the server process: resident memory and open file descriptors.

use anyhow::Context;

/// Memory and descriptors of one process at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    /// `VmRSS`: resident set size now, in KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident set size so far, in KiB.
    pub peak_rss_kib: u64,
    /// Entries in `/proc/<pid>/fd`.
    pub open_fds: u64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/fd`.
pub fn resources(pid: u32) -> anyhow::Result<Resources> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (has the server exited?)"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib = line.trim().trim_end_matches("kB").trim();
        kib.parse()
            .with_context(|| format!("bad {name} value {kib:?}"))
    };
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
        .count() as u64;
    Ok(Resources {
        rss_kib: field("VmRSS:")?,
        peak_rss_kib: field("VmHWM:")?,
        open_fds,
    })
}
