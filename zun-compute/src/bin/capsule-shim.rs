//! `capsule-shim`: the per-capsule shim process (see `zun_compute::shim`).
//!
//! `capsule-shim start --dir <capsule_dir>` reads `<capsule_dir>/plan.json`, starts the shim in
//! the background and exits 0 once it listens on `<capsule_dir>/shim.sock`, or 1 with the reason
//! on stderr. It must stay single-threaded: no async runtime here.

use std::path::PathBuf;

const USAGE: &str = "usage: capsule-shim start --dir <capsule_dir>";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [cmd, flag, dir] if cmd == "start" && flag == "--dir" => PathBuf::from(dir),
        [cmd, dir] if cmd == "start" && dir.starts_with("--dir=") => {
            PathBuf::from(dir.trim_start_matches("--dir="))
        }
        [h] if h == "--help" || h == "-h" => {
            println!("{USAGE}");
            return;
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    std::process::exit(zun_compute::shim::daemon::start(&dir));
}
