//! `capsule-shim`: the per-capsule shim process (see [`zun_compute::cli::shim_main`] and
//! `zun_compute::shim`).

fn main() -> std::process::ExitCode {
    zun_compute::cli::shim_main()
}
