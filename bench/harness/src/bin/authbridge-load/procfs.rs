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

/// CPU time and context switches of all of a process's threads so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// Time on a CPU, in nanoseconds (first field of each `/proc/<pid>/task/<tid>/schedstat`).
    pub on_cpu_ns: u64,
    /// Voluntary and involuntary context switches, summed over threads.
    pub switches: u64,
}

/// Sums `schedstat` and the context-switch counts over the threads alive now.
pub fn cpu(pid: u32) -> anyhow::Result<Cpu> {
    let mut total = Cpu::default();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("listing /proc/{pid}/task"))?;
    for task in tasks.flatten() {
        // A thread may end between the listing and the reads: skip it.
        let path = task.path();
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue;
        };
        total.on_cpu_ns += schedstat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total.switches += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(total)
}
