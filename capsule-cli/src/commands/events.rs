//! `events CONTAINER [REQUEST_ID]`: what happened to a container (Zun's container actions,
//! as `zun action-list`), or one action with its events (as `zun action-show`).

use super::{segment, OutputArgs};
use crate::client::Client;
use crate::{output, CliError};

/// The columns python-zunclient's `action-list` shows.
pub const COLUMNS: &[&str] = &[
    "user_id",
    "container_uuid",
    "request_id",
    "action",
    "message",
    "start_time",
];

/// `events` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The container's name or uuid.
    pub container: String,
    /// One action (its request id), with its events.
    pub request_id: Option<String>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let base = format!("/containers/{}/container_actions", segment(&args.container));
    let text = match &args.request_id {
        Some(r) => {
            let a = client.get(&format!("{base}/{}", segment(r)))?;
            output::show(&a, &args.output.columns, args.output.format)?
        }
        None => {
            let list = client.get(&base)?;
            let items = list["containerActions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            output::list(&items, COLUMNS, &args.output.columns, args.output.format)?
        }
    };
    print!("{text}");
    Ok(())
}
