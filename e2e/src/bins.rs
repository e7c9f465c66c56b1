//! The programs a stack runs: zun-compute's agent and shim, built from zun-compute's own
//! sources as this package's binaries `e2e-zun-compute` and `e2e-capsule-shim` (Cargo gives a
//! package's tests and benchmarks only that package's binaries), and found where Cargo puts
//! them: beside the `deps/` directory of the running test or benchmark.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The directory Cargo builds this profile's binaries into (`target/debug`,
/// `target/release`), from where the running test executable is (`.../deps/<test>-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test");
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The path of this package's binary `name`, as text (it goes into configuration files);
/// panics, saying how to build it, when it is missing.
fn binary(name: &str) -> String {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: it is built with this package's tests and benchmarks \
         (cargo test -p e2e, cargo bench -p e2e)",
        path.display()
    );
    path.into_os_string()
        .into_string()
        .unwrap_or_else(|p| panic!("{} is not UTF-8", p.display()))
}

/// The compute agent (`zun-compute`'s `main.rs`).
pub fn zun_compute() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| binary("e2e-zun-compute"))
}

/// The per-capsule shim (`zun-compute`'s `capsule-shim`), as pod hosts are configured with it
/// and as it shows in `/proc/<pid>/cmdline`.
pub fn capsule_shim() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| binary("e2e-capsule-shim"))
}
