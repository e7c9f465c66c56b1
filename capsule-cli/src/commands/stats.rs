//! `stats CONTAINER [--watch]`: CPU, memory, block and network I/O, in Zun's words.

use std::time::Duration;

use super::{segment, OutputArgs};
use crate::client::Client;
use crate::{output, CliError};

/// `stats` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The container's name or uuid.
    pub container: String,
    /// Print them again every `--interval` seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two prints with `--watch`.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let path = format!("/containers/{}/stats", segment(&args.container));
    loop {
        let s = client.get(&path)?;
        print!(
            "{}",
            output::show(&s, &args.output.columns, args.output.format)?
        );
        if !args.watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(args.interval));
    }
}
