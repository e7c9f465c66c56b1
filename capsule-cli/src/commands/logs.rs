//! `logs CONTAINER`: a container's output (Zun's logs API), once or followed.

use std::io::Write;
use std::time::Duration;

use super::segment;
use crate::client::Client;
use crate::CliError;

const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// `logs` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The container's uuid or name.
    pub container: String,
    /// Keep printing new output until the container is gone (or Ctrl-C).
    #[arg(long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(long, default_value = "all")]
    pub tail: String,
    /// Prefix each line with its time.
    #[arg(long)]
    pub timestamps: bool,
    /// Only stdout.
    #[arg(long, conflicts_with = "stderr")]
    pub stdout: bool,
    /// Only stderr.
    #[arg(long)]
    pub stderr: bool,
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    if args.tail != "all" && args.tail.parse::<u64>().is_err() {
        return Err(CliError::Usage(format!(
            "--tail must be a number of lines or \"all\", not {:?}",
            args.tail
        )));
    }
    let (out, err) = match (args.stdout, args.stderr) {
        (true, _) => (true, false),
        (_, true) => (false, true),
        _ => (true, true),
    };
    let base = format!(
        "/containers/{}/logs?stdout={}&stderr={}&timestamps=True",
        segment(&args.container),
        py_bool(out),
        py_bool(err)
    );
    let first = client.get_text(&format!("{base}&tail={}", args.tail))?;
    let mut seen = Seen::default();
    print_new(&first, &mut seen, args.timestamps);
    if !args.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        let path = match &seen.last {
            Some(t) => format!("{base}&since={}", segment(t)),
            None => base.clone(),
        };
        match client.get_text(&path) {
            Ok(text) => print_new(&text, &mut seen, args.timestamps),
            Err(CliError::Api { status: 404, .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The newest time printed, and how many lines with that time were printed (`since` is
/// inclusive, so the next answer repeats them).
#[derive(Default)]
struct Seen {
    last: Option<String>,
    at_last: usize,
}

fn print_new(text: &str, seen: &mut Seen, timestamps: bool) {
    let mut stdout = std::io::stdout().lock();
    let mut skip = seen.at_last;
    for line in text.lines() {
        let (time, rest) = line.split_once(' ').unwrap_or((line, ""));
        if seen.last.as_deref() == Some(time) {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            seen.at_last += 1;
        } else {
            skip = 0;
            seen.last = Some(time.to_owned());
            seen.at_last = 1;
        }
        let _ = if timestamps {
            writeln!(stdout, "{line}")
        } else {
            writeln!(stdout, "{rest}")
        };
    }
    let _ = stdout.flush();
}
