//! `bench-report`: merges the figures the benchmarks left in `bench/out/` into
//! `bench/results.json` and `bench/create-latency.svg`, and prints the table of DESIGN.md's
//! targets, our figures, podman's and the ratio. Run by `devstack/bench.sh` after the benchmarks.

use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = bench::bench_dir();
    match bench::report::write(&dir) {
        Ok((table, written)) if !table.lines().nth(1).unwrap_or_default().is_empty() => {
            println!("\n{table}");
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!(
                "no benchmark figures in {}/out: run devstack/bench.sh first",
                dir.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench-report: writing into {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
