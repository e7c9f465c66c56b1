//! `service-list`: the compute services and whether they are up (admin).

use super::list::pages;
use super::OutputArgs;
use crate::client::Client;
use crate::{output, CliError};

/// The columns python-zunclient shows.
pub const COLUMNS: &[&str] = &[
    "id",
    "host",
    "binary",
    "state",
    "disabled",
    "disabled_reason",
    "updated_at",
    "availability_zone",
];

/// `service-list` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let items = pages(client, "/services", "services", None)?;
    print!(
        "{}",
        output::list(&items, COLUMNS, &args.output.columns, args.output.format)?
    );
    Ok(())
}
