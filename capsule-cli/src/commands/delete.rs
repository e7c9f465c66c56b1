//! `capsule-delete NAME|UUID...`: delete each (one failing does not stop the others), and
//! with `--wait` wait until each is gone.

use std::time::Duration;

use super::{segment, wait, WaitArgs};
use crate::client::Client;
use crate::CliError;

/// `capsule-delete` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Names or uuids of the capsules.
    #[arg(required = true)]
    pub capsules: Vec<String>,
    /// Capsules of any project (admin).
    #[arg(long = "all-projects")]
    pub all_projects: bool,
    /// Remove the records at once even if the host is gone (admin).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// Deletes `name`; with `wait`, waits until its uuid is gone (a new capsule may take the name).
fn delete_one(client: &Client, name: &str, query: &str, wait: WaitArgs) -> Result<(), CliError> {
    let uuid = if wait.wait {
        // Only all_projects: GET takes no `force`.
        let scope = if query.contains("all_projects") {
            "?all_projects=True"
        } else {
            ""
        };
        let c = client.get(&format!("/capsules/{}{scope}", segment(name)))?;
        c["uuid"].as_str().map(str::to_owned)
    } else {
        None
    };
    client.delete(&format!("/capsules/{}{query}", segment(name)))?;
    println!("Request to delete capsule {name} has been accepted.");
    match uuid {
        Some(id) => wait::until_gone(client, &id, Duration::from_secs(wait.wait_timeout)),
        None => Ok(()),
    }
}

/// Runs it; fails (after trying all) if any failed.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let mut query = Vec::new();
    if args.all_projects {
        query.push("all_projects=True");
    }
    if args.force {
        query.push("force=True");
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let mut failed = Vec::new();
    for name in &args.capsules {
        let result = delete_one(client, name, &query, args.wait);
        if let Err(e) = result {
            eprintln!("ERROR: delete of capsule {name} failed: {e}");
            failed.push(name.as_str());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} of {} capsules not deleted: {}",
            failed.len(),
            args.capsules.len(),
            failed.join(", ")
        )))
    }
}
