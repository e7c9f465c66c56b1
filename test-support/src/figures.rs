//! Figures a test measures and shows (latencies beside their baseline), printed and, when
//! `CAPSULE_TEST_FIGURES` names a file, appended to it: `devstack/run-tests.sh` prints that
//! file after the suite, where cargo would have hidden a passing test's output.

use std::io::Write;

/// Shows one line of figures from test `test`.
pub fn show(test: &str, line: &str) {
    eprintln!("{line}");
    let Ok(path) = std::env::var("CAPSULE_TEST_FIGURES") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{test}: {line}"));
    if let Err(e) = written {
        panic!("CAPSULE_TEST_FIGURES={path}: {e}");
    }
}
