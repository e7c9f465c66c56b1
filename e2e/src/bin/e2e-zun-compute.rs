//! The compute agent as the e2e stacks run it: zun-compute's own command line, linked into
//! this package because Cargo gives a package's tests only that package's binaries.

fn main() -> std::process::ExitCode {
    zun_compute::cli::agent_main()
}
