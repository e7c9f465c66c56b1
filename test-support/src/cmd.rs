//! Host tools run by tests (`ip`, `nft`, `losetup`, `mkfs.ext4`, ...), with their output as text.

use std::ffi::OsString;
use std::process::Command;

/// The system's directories of tools, administration tools included, added to `PATH` when it
/// lacks them (a non-login shell or `sudo` may leave out `/usr/sbin`, where `losetup`,
/// `mkfs.ext4`, `ip` and `nft` are).
const SYSTEM_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// `PATH` with [`SYSTEM_PATH`]'s directories appended when missing.
fn path() -> OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<_> = std::env::split_paths(&current).collect();
    for d in SYSTEM_PATH {
        if !dirs.iter().any(|p| p.as_os_str() == d) {
            dirs.push(d.into());
        }
    }
    std::env::join_paths(dirs).unwrap_or(current)
}

/// Runs `cmd args`; its standard output, or `Err` with the command, its status and its
/// standard error.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .env("PATH", path())
        .output()
        .map_err(|e| format!("{cmd} {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `tool args` and returns its standard output; panics (failing the test, with the
/// reason) if it is missing or fails, so that a tool that cannot run never reads as "the host
/// is clean".
#[track_caller]
pub fn required_output(tool: &str, args: &[&str]) -> String {
    run(tool, args).unwrap_or_else(|e| panic!("{e} (devstack/stack.sh installs {tool})"))
}
