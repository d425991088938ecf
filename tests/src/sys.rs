//! Process-level helpers shared by the test servers.

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
