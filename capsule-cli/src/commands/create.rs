//! `capsule-create -f FILE`: validate locally, create, optionally wait until Running.

use std::time::Duration;

use serde_json::{json, Value};

use super::template::Loaded;
use super::{wait, ShowArgs, WaitArgs};
use crate::client::Client;
use crate::{output, CliError};

/// `capsule-create` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The capsule template, YAML or JSON (`-` reads stdin).
    #[arg(short = 'f', long = "file")]
    pub file: String,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
    #[command(flatten)]
    pub(crate) show: ShowArgs,
}

/// Runs it with the template `t` read from `args.file` and validated (before any request,
/// Keystone included, so a bad template sends nothing).
pub fn run(client: &Client, args: &Args, t: &Loaded) -> Result<(), CliError> {
    let created = create(client, &t.value)?;
    finish(client, created, args.wait, &args.show)
}

/// POSTs `template`; the capsule as the API answered.
pub fn create(client: &Client, template: &Value) -> Result<Value, CliError> {
    client.post("/capsules", &json!({ "template": template }))
}

/// Waits if asked, then prints the capsule.
pub fn finish(
    client: &Client,
    capsule: Value,
    wait_args: WaitArgs,
    show: &ShowArgs,
) -> Result<(), CliError> {
    let capsule = if wait_args.wait {
        let id = capsule["uuid"]
            .as_str()
            .ok_or_else(|| CliError::Failed(format!("the API answered no uuid: {capsule}")))?;
        wait::until_running(client, id, Duration::from_secs(wait_args.wait_timeout))?
    } else {
        capsule
    };
    let capsule = super::as_zunclient_shows(capsule);
    print!("{}", output::show(&capsule, &show.columns, show.format)?);
    Ok(())
}
