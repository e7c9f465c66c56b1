//! `capsule`: capsules from a terminal, with the credentials OpenStack users already have
//! (`OS_*` variables, `--os-*` flags, `clouds.yaml`). Exit codes: 0 success, 1 the cloud
//! refused or failed, 2 a wrong command line or template (nothing sent).

use std::time::Duration;

use capsule_cli::auth::{self, AuthArgs};
use capsule_cli::client::{Client, DEFAULT_MICROVERSION};
use capsule_cli::commands::actions::{self, Verb};
use capsule_cli::commands::template::Loaded;
use capsule_cli::commands::{
    apply, cp, create, delete, describe, events, exec, list, logs, services, stats, top,
};
use capsule_cli::CliError;
use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "capsule",
    version,
    about = "Capsules (pods) on an OpenStack cloud"
)]
struct Cli {
    #[command(flatten)]
    auth: AuthArgs,
    /// API microversion to ask for (`container X.Y`).
    #[arg(long, global = true, env = "CAPSULE_API_VERSION", default_value = DEFAULT_MICROVERSION)]
    microversion: String,
    /// Print each HTTP request and answer to stderr (tokens and passwords hidden).
    #[arg(long, global = true)]
    debug: bool,
    /// HTTP timeout, in seconds.
    #[arg(long = "http-timeout", global = true, default_value_t = 60)]
    http_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a capsule from a template.
    #[command(name = "capsule-create")]
    CapsuleCreate(create::Args),
    /// List capsules.
    #[command(name = "capsule-list")]
    CapsuleList(list::Args),
    /// Show a capsule.
    #[command(name = "capsule-describe")]
    CapsuleDescribe(describe::Args),
    /// Delete capsules.
    #[command(name = "capsule-delete")]
    CapsuleDelete(delete::Args),
    /// Create a capsule unless one with its name already runs this template.
    Apply(apply::Args),
    /// Print a container's logs.
    Logs(logs::Args),
    /// Run a command in a running container (its exit code is ours).
    Exec(exec::Args),
    /// Copy files between here and a container (`CONTAINER:/path` on one side).
    Cp(cp::Args),
    /// Stop containers (or, with --capsule, whole capsules).
    Stop(actions::Args),
    /// Start stopped containers (or, with --capsule, whole capsules).
    Start(actions::Args),
    /// Restart containers (or, with --capsule, whole capsules).
    Restart(actions::Args),
    /// Send containers a signal.
    Kill(actions::Args),
    /// Freeze containers.
    Pause(actions::Args),
    /// Thaw paused containers.
    Unpause(actions::Args),
    /// A container's processes.
    Top(top::Args),
    /// A container's CPU, memory and I/O.
    Stats(stats::Args),
    /// What happened to a container (its actions), or one action's events.
    Events(events::Args),
    /// List compute services (admin).
    #[command(name = "service-list")]
    ServiceList(services::Args),
    /// Print a shell completion script.
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "capsule",
            &mut std::io::stdout(),
        );
        return;
    }
    match run(&cli) {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ERROR: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// Runs the command; the exit code (0, or `exec`'s command's).
fn run(cli: &Cli) -> Result<i32, CliError> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(cli.http_timeout))
        .build()
        .map_err(|e| CliError::Failed(format!("HTTP client: {e}")))?;
    // A template is read and checked before anything is sent, Keystone included.
    let template = match &cli.command {
        Command::CapsuleCreate(a) => Some(Loaded::read_valid(&a.file)?),
        Command::Apply(a) => Some(Loaded::read_valid(&a.file)?),
        _ => None,
    };
    let result = run_once(cli, &http, template.as_ref());
    // A cached token the API no longer takes (revoked, Keystone restarted): forget it and
    // try once more with a new one. Nothing was done with the refused token.
    if let Err(CliError::Api { status: 401, .. }) = result {
        auth::forget(&cli.auth);
        return run_once(cli, &http, template.as_ref());
    }
    result
}

fn run_once(
    cli: &Cli,
    http: &reqwest::blocking::Client,
    template: Option<&Loaded>,
) -> Result<i32, CliError> {
    let needs_template = || CliError::Usage("no template was read".into());
    let session = auth::session(&cli.auth, http, cli.debug)?;
    let client = Client::new(http.clone(), session, &cli.microversion, cli.debug);
    let done = match &cli.command {
        Command::Exec(a) => return exec::run(&client, a),
        Command::CapsuleCreate(a) => create::run(&client, a, template.ok_or_else(needs_template)?),
        Command::CapsuleList(a) => list::run(&client, a),
        Command::CapsuleDescribe(a) => describe::run(&client, a),
        Command::CapsuleDelete(a) => delete::run(&client, a),
        Command::Apply(a) => apply::run(&client, a, template.ok_or_else(needs_template)?),
        Command::Logs(a) => logs::run(&client, a),
        Command::ServiceList(a) => services::run(&client, a),
        Command::Cp(a) => cp::run(&client, a),
        Command::Stop(a) => actions::run(&client, Verb::Stop, a),
        Command::Start(a) => actions::run(&client, Verb::Start, a),
        Command::Restart(a) => actions::run(&client, Verb::Restart, a),
        Command::Kill(a) => actions::run(&client, Verb::Kill, a),
        Command::Pause(a) => actions::run(&client, Verb::Pause, a),
        Command::Unpause(a) => actions::run(&client, Verb::Unpause, a),
        Command::Top(a) => top::run(&client, a),
        Command::Stats(a) => stats::run(&client, a),
        Command::Events(a) => events::run(&client, a),
        Command::Completion { .. } => Ok(()),
    };
    done.map(|()| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("capsule").chain(args.iter().copied()))
    }

    #[test]
    fn exec_takes_the_command_after_the_separator() {
        let cli = parse(&["exec", "-it", "web", "--", "sh", "-c", "echo $$"]).unwrap();
        let Command::Exec(a) = cli.command else {
            panic!("not exec");
        };
        assert!(a.interactive && a.tty);
        assert_eq!(a.container, "web");
        assert_eq!(a.command, ["sh", "-c", "echo $$"]);
        // Options after `--` belong to the command.
        let cli = parse(&["exec", "web", "--", "ls", "-i"]).unwrap();
        let Command::Exec(a) = cli.command else {
            panic!("not exec");
        };
        assert!(!a.interactive);
        assert_eq!(a.command, ["ls", "-i"]);
        // No command: a usage error (exit 2, as every wrong command line).
        let e = parse(&["exec", "web"]).err().unwrap();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn lifecycle_verbs_and_their_options() {
        let cli = parse(&["stop", "--capsule", "--timeout", "3", "a", "b"]).unwrap();
        let Command::Stop(a) = cli.command else {
            panic!("not stop");
        };
        assert!(a.capsule);
        assert_eq!(a.timeout, Some(3));
        assert_eq!(a.targets, ["a", "b"]);
        let cli = parse(&["kill", "-s", "TERM", "web"]).unwrap();
        assert!(matches!(cli.command, Command::Kill(ref a) if a.signal.as_deref() == Some("TERM")));
        assert!(parse(&["stop"]).is_err(), "a target is required");
        assert!(parse(&["stop", "--timeout", "-1", "web"]).is_err());
    }

    #[test]
    fn top_stats_events_cp() {
        assert!(matches!(
            parse(&["top", "web", "--ps-args", "aux"]).unwrap().command,
            Command::Top(ref a) if a.ps_args.as_deref() == Some("aux")
        ));
        assert!(matches!(
            parse(&["stats", "web", "--watch", "--interval", "5"]).unwrap().command,
            Command::Stats(ref a) if a.watch && a.interval == 5
        ));
        assert!(parse(&["stats", "web", "--interval", "0"]).is_err());
        assert!(matches!(
            parse(&["events", "web", "req-1"]).unwrap().command,
            Command::Events(ref a) if a.request_id.as_deref() == Some("req-1")
        ));
        assert!(matches!(
            parse(&["cp", "./f", "web:/tmp"]).unwrap().command,
            Command::Cp(_)
        ));
    }
}
