//! `capsule-describe NAME|UUID`: one capsule, every field.

use super::{segment, OutputArgs};
use crate::client::Client;
use crate::{output, CliError};

/// `capsule-describe` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The capsule's name or uuid.
    pub capsule: String,
    /// Look in every project (admin).
    #[arg(long = "all-projects")]
    pub all_projects: bool,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let mut path = format!("/capsules/{}", segment(&args.capsule));
    if args.all_projects {
        path.push_str("?all_projects=True");
    }
    let c = super::as_zunclient_shows(client.get(&path)?);
    print!(
        "{}",
        output::show(&c, &args.output.columns, args.output.format)?
    );
    Ok(())
}
