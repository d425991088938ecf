//! The workspace's binaries that tests and tools run (`authbridge`, the kit's helpers):
//! where they are, and how they get built.
//!
//! A binary is `<target>/<profile>/<name>`, `<target>` being `CARGO_TARGET_DIR` or the
//! ancestor of this executable that holds `debug/` (or `release/`), and `<profile>` the
//! profile this executable was built with (`debug`, or `release` under `cargo run
//! --release` and `cargo test --release`). When it is missing,
//! [`locate`] builds it once per process:
//!
//! - from a program that `cargo run` started (the demo, the benches), into `<target>`
//!   itself: cargo releases the target directory's lock before it runs the program, so the
//!   inner `cargo build` shares every crate already built — see [`build`];
//! - from a test binary (it lives in `<target>/debug/deps/`), into `<target>/authbridge-kit`
//!   instead: `cargo test` may hold `<target>`'s lock while tests run, and a nested build
//!   there would wait for ever. That builds a second tree: `./scripts/test` builds every
//!   binary before the tests run, so it never happens there.
//!
//! A binary that exists is used as it is, even if older than the sources: build first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Deadline of one nested `cargo build`.
const BUILD_DEADLINE: Duration = Duration::from_secs(900);

/// The variables (besides `CARGO_PKG_*`) that `cargo run` sets for the program it runs.
const RUN_ONLY_ENV: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// The target directory: `CARGO_TARGET_DIR`, else the ancestor of this executable that
/// holds `debug/` (or `release/`), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors() {
            let name = dir.file_name().and_then(|n| n.to_str());
            if matches!(name, Some("debug") | Some("release")) {
                if let Some(parent) = dir.parent() {
                    return parent.to_path_buf();
                }
            }
        }
    }
    workspace_root().join("target")
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `release` when this executable lives in a `release/` directory, else `debug`.
pub fn profile() -> &'static str {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .ancestors()
        .filter_map(|d| d.file_name().and_then(|n| n.to_str()))
        .find(|n| matches!(*n, "debug" | "release"));
    match dir {
        Some("release") => "release",
        _ => "debug",
    }
}

/// `<target>/<profile>/<name>` (with the platform's executable suffix).
pub fn profile_path(name: &str) -> PathBuf {
    in_profile(&target_dir(), name)
}

fn in_profile(target: &Path, name: &str) -> PathBuf {
    target
        .join(profile())
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// True in a test binary (`<target>/debug/deps/<name>-<hash>`), where `cargo test` may hold
/// the target directory's lock.
pub fn in_test_binary() -> bool {
    std::env::current_exe().is_ok_and(|exe| {
        exe.parent()
            .and_then(Path::file_name)
            .is_some_and(|dir| dir == "deps")
    })
}

/// The binary `name` of workspace package `package`: `<target>/<profile>/<name>`, built once
/// per process if it is missing (see the module docs for where).
///
/// # Panics
/// If it is still missing after the build; the message says how to provide it.
pub fn locate(package: &str, name: &str) -> PathBuf {
    static FOUND: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let found = FOUND.get_or_init(Default::default);
    let mut found = found.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = found.get(name) {
        return path.clone();
    }
    let path = profile_path(name);
    let path = if path.is_file() {
        path
    } else if in_test_binary() {
        let kit_target = target_dir().join("authbridge-kit");
        eprintln!(
            "{} is missing: building it into {} (a second build of its dependencies; \
             `./scripts/test` builds every binary first)",
            path.display(),
            kit_target.display()
        );
        let outcome = build(&[package], &[name], &kit_target);
        let built = in_profile(&kit_target, name);
        if !built.is_file() {
            panic!(
                "{name} is not at {} and building it into {} failed ({outcome:?}); run \
                 `cargo build -p {package} --bin {name}` first",
                path.display(),
                kit_target.display()
            );
        }
        built
    } else {
        let outcome = build(&[package], &[name], &target_dir());
        if !path.is_file() {
            panic!(
                "{name} is not at {} and building it failed ({outcome:?}); run \
                 `cargo build -p {package} --bin {name}` first",
                path.display()
            );
        }
        path
    };
    found.insert(name.to_owned(), path.clone());
    path
}

/// Runs `cargo build -p <packages…> --bin <bins…>` (with `--release` when this
/// executable is a release build) into `target` with a deadline, cargo's progress on this
/// process's stderr; how long it took, or what went wrong.
///
/// Naming the caller's own package beside the binary's makes cargo resolve the features
/// of every shared dependency as in the caller's own build, so nothing already built is
/// built again with other features — provided the caller depends on the binary's package
/// (the demo depends on `authbridge-app-server` for this). Never from a test: see the
/// module docs.
pub fn build(packages: &[&str], bins: &[&str], target: &Path) -> Result<Duration, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.arg("build");
    if profile() == "release" {
        cmd.arg("--release");
    }
    for p in packages {
        cmd.args(["-p", p]);
    }
    for b in bins {
        cmd.args(["--bin", b]);
    }
    // What `cargo run` set for the running program describes that program, not this
    // build: build scripts that track such a variable (ring's does, for
    // CARGO_MANIFEST_DIR) would see it change and rebuild at the next plain `cargo`.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_") || RUN_ONLY_ENV.contains(&name) {
            cmd.env_remove(name);
        }
    }
    let started = Instant::now();
    let mut child = cmd
        .env("CARGO_TARGET_DIR", target)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cargo did not start: {e}"))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(started.elapsed()),
            Ok(Some(status)) => return Err(format!("cargo build: {status}")),
            Ok(None) if started.elapsed() > BUILD_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cargo build: no result within {BUILD_DEADLINE:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for cargo failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_dir_is_an_ancestor_of_this_test_binary_or_the_env_value() {
        let dir = target_dir();
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(env) if Path::new(&env).is_absolute() => assert_eq!(dir, PathBuf::from(env)),
            _ => {
                let exe = std::env::current_exe().unwrap();
                assert!(
                    exe.starts_with(&dir),
                    "{} not under {}",
                    exe.display(),
                    dir.display()
                );
            }
        }
    }

    #[test]
    fn a_test_binary_knows_it_must_not_build_into_the_target_dir() {
        assert!(in_test_binary());
    }
}
