//! `zun-compute`: the compute agent of one host (see [`zun_compute::cli::agent_main`]).

fn main() -> std::process::ExitCode {
    zun_compute::cli::agent_main()
}
