//! Real storage faults for the tests that need them: a tmpfs mounted on a directory, a file
//! bind-mounted on itself (renaming over it fails with EBUSY, for root too), and a
//! filesystem filled to the brim. `mount` needs root: without it [`mount`] says so on
//! stderr and the test skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount made by a test; unmounted on drop (lazily, so it cannot fail on a busy file).
#[derive(Debug)]
pub struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `mount <args> <target>`; `None` (with a `SKIPPED:` line on stderr) when it fails.
pub fn mount(args: &[&str], target: &Path) -> Option<Mount> {
    let ok = Command::new("mount")
        .args(args)
        .arg(target)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED: `mount {} {}` failed (this test needs root and mount permission)",
            args.join(" "),
            target.display()
        );
    }
    ok.then(|| Mount(target.to_path_buf()))
}

/// A tmpfs of `size` (e.g. `64k`) on `dir`, readable by its owner only.
pub fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    mount(
        &[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ],
        dir,
    )
}

/// `file` bind-mounted on itself: it can be written in place, but not renamed over.
pub fn bind_on_itself(file: &Path) -> Option<Mount> {
    let source = file.to_string_lossy().into_owned();
    mount(&["--bind", &source], file)
}

/// Fills the filesystem holding `dir` until a write fails (ENOSPC), to the last byte; the
/// filler's path (remove it to free the space).
///
/// # Panics
/// If the filler cannot be created.
pub fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f =
        std::fs::File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    while f.write(&[0u8; 4096]).is_ok_and(|n| n > 0) {}
    // Also the last partial block.
    while f.write(&[0u8]).is_ok_and(|n| n == 1) {}
    let _ = f.sync_all();
    path
}
