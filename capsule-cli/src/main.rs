//! `capsule`: capsules from a terminal, with the credentials OpenStack users already have
//! (`OS_*` variables, `--os-*` flags, `clouds.yaml`). Exit codes: 0 success, 1 the cloud
//! refused or failed, 2 a wrong command line or template (nothing sent).

use std::time::Duration;

use capsule_cli::auth::{self, AuthArgs};
use capsule_cli::client::{Client, DEFAULT_MICROVERSION};
use capsule_cli::commands::template::Loaded;
use capsule_cli::commands::{apply, create, delete, describe, list, logs, services};
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
    if let Err(e) = run(&cli) {
        eprintln!("ERROR: {e}");
        std::process::exit(e.exit_code());
    }
}

fn run(cli: &Cli) -> Result<(), CliError> {
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
) -> Result<(), CliError> {
    let needs_template = || CliError::Usage("no template was read".into());
    let session = auth::session(&cli.auth, http, cli.debug)?;
    let client = Client::new(http.clone(), session, &cli.microversion, cli.debug);
    match &cli.command {
        Command::CapsuleCreate(a) => create::run(&client, a, template.ok_or_else(needs_template)?),
        Command::CapsuleList(a) => list::run(&client, a),
        Command::CapsuleDescribe(a) => describe::run(&client, a),
        Command::CapsuleDelete(a) => delete::run(&client, a),
        Command::Apply(a) => apply::run(&client, a, template.ok_or_else(needs_template)?),
        Command::Logs(a) => logs::run(&client, a),
        Command::ServiceList(a) => services::run(&client, a),
        Command::Completion { .. } => Ok(()),
    }
}
