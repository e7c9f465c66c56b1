//! `top CONTAINER [--ps-args ARGS]`: the container's processes, as `ps` shows them inside it.

use serde_json::{Map, Value};

use super::{segment, OutputArgs};
use crate::client::Client;
use crate::{output, CliError};

/// `top` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The container's name or uuid.
    pub container: String,
    /// Arguments for `ps` (letters, digits, spaces, `,`, `+`, `-`).
    #[arg(long = "ps-args")]
    pub ps_args: Option<String>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// Zun's `{"Titles": [...], "Processes": [[...]]}` as rows keyed by title.
pub fn rows(answer: &Value) -> (Vec<String>, Vec<Value>) {
    let titles: Vec<String> = answer["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    let rows = answer["Processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let cells = p.as_array().cloned().unwrap_or_default();
            let row: Map<String, Value> = titles.iter().cloned().zip(cells).collect();
            Value::Object(row)
        })
        .collect();
    (titles, rows)
}

/// Runs it.
pub fn run(client: &Client, args: &Args) -> Result<(), CliError> {
    let mut path = format!("/containers/{}/top", segment(&args.container));
    if let Some(a) = &args.ps_args {
        path.push_str(&format!("?ps_args={}", segment(a)));
    }
    let (titles, rows) = rows(&client.get(&path)?);
    let columns: Vec<&str> = titles.iter().map(String::as_str).collect();
    print!(
        "{}",
        output::list(&rows, &columns, &args.output.columns, args.output.format)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_by_title() {
        let (t, r) = rows(&json!({"Titles": ["PID", "CMD"], "Processes": [["1", "sleep 9"]]}));
        assert_eq!(t, ["PID", "CMD"]);
        assert_eq!(r, [json!({"PID": "1", "CMD": "sleep 9"})]);
    }
}
