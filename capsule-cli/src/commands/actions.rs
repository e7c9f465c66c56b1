//! `stop|start|restart|kill|pause|unpause CONTAINER...`: Zun's container actions (202, done
//! by the host after the answer), or with `--capsule` our extension on whole capsules (stop,
//! start, restart).

use super::segment;
use crate::client::Client;
use crate::CliError;

/// A lifecycle action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Stop (SIGTERM, then SIGKILL after the grace period).
    Stop,
    /// Start a stopped container.
    Start,
    /// Stop, then start.
    Restart,
    /// Send a signal.
    Kill,
    /// Freeze.
    Pause,
    /// Thaw.
    Unpause,
}

impl Verb {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Restart => "restart",
            Verb::Kill => "kill",
            Verb::Pause => "pause",
            Verb::Unpause => "unpause",
        }
    }
}

/// The arguments of every action.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Container names or uuids (capsules with `--capsule`).
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Act on whole capsules (every application container): stop, start and restart only.
    #[arg(long)]
    pub capsule: bool,
    /// Seconds between SIGTERM and SIGKILL (stop, restart).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// The signal, by name or number (kill; default SIGKILL).
    #[arg(long, short = 's')]
    pub signal: Option<String>,
}

/// The API path of `verb` on `target`, or why the arguments do not fit.
pub fn path(verb: Verb, args: &Args, target: &str) -> Result<String, CliError> {
    let usage = |m: &str| Err(CliError::Usage(m.to_owned()));
    if args.timeout.is_some() && !matches!(verb, Verb::Stop | Verb::Restart) {
        return usage("--timeout goes with stop and restart only");
    }
    if args.signal.is_some() && verb != Verb::Kill {
        return usage("--signal goes with kill only");
    }
    let (route, action) = if args.capsule {
        let action = match verb {
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Restart => "restart",
            _ => return usage("--capsule goes with stop, start and restart only"),
        };
        ("capsules", action)
    } else {
        let action = match verb {
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Restart => "reboot",
            Verb::Kill => "kill",
            Verb::Pause => "pause",
            Verb::Unpause => "unpause",
        };
        ("containers", action)
    };
    let mut p = format!("/{route}/{}/{action}", segment(target));
    if let Some(t) = args.timeout {
        p.push_str(&format!("?timeout={t}"));
    }
    if let Some(s) = &args.signal {
        p.push_str(&format!("?signal={}", segment(s)));
    }
    Ok(p)
}

/// Runs it on every target; prints a line per accepted request, and fails (after trying
/// them all) if any was refused.
pub fn run(client: &Client, verb: Verb, args: &Args) -> Result<(), CliError> {
    let paths = args
        .targets
        .iter()
        .map(|t| path(verb, args, t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut last_err = None;
    for (target, p) in args.targets.iter().zip(paths) {
        match client.post_empty(&p) {
            Ok(_) => println!(
                "Request to {} {} {target} has been accepted.",
                verb.name(),
                if args.capsule { "capsule" } else { "container" }
            ),
            Err(e) => {
                eprintln!("{target}: {e}");
                last_err = Some(e);
            }
        }
    }
    match last_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(capsule: bool, timeout: Option<u64>, signal: Option<&str>) -> Args {
        Args {
            targets: vec!["web".into()],
            capsule,
            timeout,
            signal: signal.map(str::to_owned),
        }
    }

    #[test]
    fn zuns_routes_and_ours() {
        let p = |v, a: &Args| path(v, a, "web").unwrap();
        assert_eq!(
            p(Verb::Stop, &args(false, Some(5), None)),
            "/containers/web/stop?timeout=5"
        );
        assert_eq!(
            p(Verb::Restart, &args(false, None, None)),
            "/containers/web/reboot"
        );
        assert_eq!(
            p(Verb::Kill, &args(false, None, Some("SIGTERM"))),
            "/containers/web/kill?signal=SIGTERM"
        );
        assert_eq!(
            p(Verb::Unpause, &args(false, None, None)),
            "/containers/web/unpause"
        );
        assert_eq!(
            p(Verb::Restart, &args(true, Some(0), None)),
            "/capsules/web/restart?timeout=0"
        );
        assert_eq!(
            p(Verb::Start, &args(true, None, None)),
            "/capsules/web/start"
        );
    }

    #[test]
    fn misfits_are_usage_errors() {
        for (v, a) in [
            (Verb::Pause, args(true, None, None)),
            (Verb::Kill, args(true, None, None)),
            (Verb::Start, args(false, Some(1), None)),
            (Verb::Stop, args(false, None, Some("TERM"))),
        ] {
            let e = path(v, &a, "web").unwrap_err();
            assert_eq!(e.exit_code(), 2, "{v:?}: {e}");
        }
    }
}
