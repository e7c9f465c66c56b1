//! `capsule-list`: the project's capsules (or all, for admins), following `next` links.

use serde_json::Value;

use super::OutputArgs;
use crate::client::Client;
use crate::{output, CliError};

/// The columns python-zunclient shows.
pub const COLUMNS: &[&str] = &["uuid", "name", "status", "addresses"];

/// `capsule-list` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Capsules of every project (admin).
    #[arg(long = "all-projects")]
    pub all_projects: bool,
    /// At most this many capsules.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after the capsule with this uuid.
    #[arg(long)]
    pub marker: Option<String>,
    /// Sort by this field (e.g. created_at, name, status).
    #[arg(long = "sort-key")]
    pub sort_key: Option<String>,
    /// asc or desc.
    #[arg(long = "sort-dir", value_parser = ["asc", "desc"])]
    pub sort_dir: Option<String>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let mut query = Vec::new();
    if args.all_projects {
        query.push("all_projects=True".to_owned());
    }
    if let Some(l) = args.limit {
        query.push(format!("limit={l}"));
    }
    if let Some(m) = &args.marker {
        query.push(format!("marker={}", super::segment(m)));
    }
    if let Some(k) = &args.sort_key {
        query.push(format!("sort_key={}", super::segment(k)));
    }
    if let Some(d) = &args.sort_dir {
        query.push(format!("sort_dir={d}"));
    }
    let first = if query.is_empty() {
        "/capsules".to_owned()
    } else {
        format!("/capsules?{}", query.join("&"))
    };
    let items: Vec<_> = pages(client, &first, "capsules", args.limit.map(|l| l as usize))?
        .into_iter()
        .map(super::as_zunclient_shows)
        .collect();
    print!(
        "{}",
        output::list(&items, COLUMNS, &args.output.columns, args.output.format)?
    );
    Ok(())
}

/// Every item under `key` from `first` on, following `next`, up to `limit` items.
pub fn pages(
    client: &Client,
    first: &str,
    key: &str,
    limit: Option<usize>,
) -> Result<Vec<Value>, CliError> {
    let mut items = Vec::new();
    let mut url = first.to_owned();
    loop {
        let page = client.get(&url)?;
        let got = page[key]
            .as_array()
            .ok_or_else(|| CliError::Failed(format!("the API answered no `{key}` list: {page}")))?;
        items.extend(got.iter().cloned());
        if limit.is_some_and(|l| items.len() >= l) {
            items.truncate(limit.unwrap_or(usize::MAX));
            return Ok(items);
        }
        match page["next"].as_str() {
            Some(next) if !got.is_empty() => url = next.to_owned(),
            _ => return Ok(items),
        }
    }
}
