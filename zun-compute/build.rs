//! Builds the sandbox's pause program (`pause/pause.c`) as a static binary in `OUT_DIR`; the
//! `shim` module embeds it (`shim::PAUSE`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=pause/pause.c");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let target = out.join("capsule-pause");
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
        .arg(&target)
        .arg("pause/pause.c")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(
        status.success(),
        "`{cc} -static -Os -o {} pause/pause.c` failed ({status}); a static C library (Debian libc6-dev) is needed",
        target.display()
    );
}
