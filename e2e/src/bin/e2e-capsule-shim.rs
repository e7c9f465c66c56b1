//! The per-capsule shim as the e2e pod hosts run it: zun-compute's own `capsule-shim`, linked
//! into this package because Cargo gives a package's tests only that package's binaries.

fn main() -> std::process::ExitCode {
    zun_compute::cli::shim_main()
}
