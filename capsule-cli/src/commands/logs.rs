//! `logs CONTAINER`: a container's output (Zun's logs API), once or followed.

use std::io::Write;
use std::time::Duration;

use capsule_types::log_cursor::LogCursor;

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
    let mut seen = LogCursor::default();
    print_new(&first, &mut seen, args.timestamps);
    if !args.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        let path = match seen.since() {
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

fn print_new(text: &str, seen: &mut LogCursor, timestamps: bool) {
    let mut stdout = std::io::stdout().lock();
    for (line, rest) in seen.new_lines(text) {
        let _ = if timestamps {
            writeln!(stdout, "{line}")
        } else {
            writeln!(stdout, "{rest}")
        };
    }
    let _ = stdout.flush();
}
