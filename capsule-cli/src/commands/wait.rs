//! `--wait`: poll a capsule until it is Running, in Error, or gone, with a progress line on
//! a terminal (plain lines otherwise).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Client;
use crate::CliError;

const POLL: Duration = Duration::from_millis(250);

/// Waits until capsule `id` is Running (returns it) or Error (fails with its reason).
pub fn until_running(client: &Client, id: &str, timeout: Duration) -> Result<Value, CliError> {
    let mut progress = Progress::new(id);
    let start = Instant::now();
    loop {
        let c = client.get(&format!("/capsules/{}", super::segment(id)))?;
        let status = c["status"].as_str().unwrap_or("?").to_owned();
        progress.show(&status, start.elapsed());
        match status.as_str() {
            "Running" => {
                progress.done();
                return Ok(c);
            }
            "Error" => {
                progress.done();
                let reason = c["status_reason"].as_str().unwrap_or("no reason given");
                return Err(CliError::Failed(format!(
                    "capsule {id} is in Error: {reason}"
                )));
            }
            _ => {}
        }
        if start.elapsed() > timeout {
            progress.done();
            return Err(CliError::Failed(format!(
                "capsule {id} is still {status} after {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until capsule `id` is gone (404).
pub fn until_gone(client: &Client, id: &str, timeout: Duration) -> Result<(), CliError> {
    let mut progress = Progress::new(id);
    let start = Instant::now();
    loop {
        match client.get(&format!("/capsules/{}", super::segment(id))) {
            Err(CliError::Api { status: 404, .. }) => {
                progress.show("deleted", start.elapsed());
                progress.done();
                return Ok(());
            }
            Err(e) => {
                progress.done();
                return Err(e);
            }
            Ok(c) => {
                let status = c["status"].as_str().unwrap_or("?").to_owned();
                progress.show(&status, start.elapsed());
                if start.elapsed() > timeout {
                    progress.done();
                    return Err(CliError::Failed(format!(
                        "capsule {id} is still there ({status}) after {} s",
                        timeout.as_secs()
                    )));
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Progress on stderr: one rewritten line on a terminal, else a line per change of status.
struct Progress {
    id: String,
    tty: bool,
    last: String,
    ticks: usize,
}

impl Progress {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            tty: std::io::stderr().is_terminal(),
            last: String::new(),
            ticks: 0,
        }
    }

    fn show(&mut self, status: &str, elapsed: Duration) {
        let mut err = std::io::stderr();
        if self.tty {
            const SPIN: [char; 4] = ['|', '/', '-', '\\'];
            self.ticks += 1;
            let _ = write!(
                err,
                "\r{} {}: {status} ({:.1} s)\x1b[K",
                SPIN[self.ticks % SPIN.len()],
                self.id,
                elapsed.as_secs_f64()
            );
            let _ = err.flush();
        } else if status != self.last {
            let _ = writeln!(
                err,
                "{}: {status} ({:.1} s)",
                self.id,
                elapsed.as_secs_f64()
            );
        }
        self.last = status.to_owned();
    }

    fn done(&mut self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}
