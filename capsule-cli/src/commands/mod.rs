//! The subcommands: each takes its clap arguments and the API client, prints its result to
//! stdout and returns an error for `main` to print.

pub mod actions;
pub mod apply;
pub mod cp;
pub mod create;
pub mod delete;
pub mod describe;
pub mod events;
pub mod exec;
pub mod list;
pub mod logs;
pub mod services;
pub mod stats;
pub mod template;
pub mod top;
pub mod wait;

use crate::output::Format;

/// `-f/--format` and `-c/--column` of the commands that print a list or an object.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// A column to show (repeat for more); default: the command's own.
    #[arg(short = 'c', long = "column")]
    pub columns: Vec<String>,
}

/// `--format` and `-c` for the commands whose `-f` is a template file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ShowArgs {
    /// Output format of the capsule.
    #[arg(long = "format", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// A field to show (repeat for more); default: all.
    #[arg(short = 'c', long = "column")]
    pub columns: Vec<String>,
}

/// `--wait` and `--wait-timeout`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct WaitArgs {
    /// Wait until the capsule is Running (create) or gone (delete); exit 1 if it ends in Error.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits, in seconds.
    #[arg(long = "wait-timeout", default_value_t = 300)]
    pub wait_timeout: u64,
}

/// Percent-encodes a path segment (names may hold any character the API allows).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A capsule as python-zunclient shows it: `addresses` flattened to `ip, ip` and the
/// network names in `networks` (the API's `addresses` is `{network: [{addr, ...}]}`).
pub fn as_zunclient_shows(mut capsule: serde_json::Value) -> serde_json::Value {
    let Some(map) = capsule
        .get("addresses")
        .and_then(|a| a.as_object())
        .cloned()
    else {
        return capsule;
    };
    let mut ips = Vec::new();
    let mut networks = Vec::new();
    for (net, list) in &map {
        networks.push(net.clone());
        for a in list.as_array().into_iter().flatten() {
            if let Some(ip) = a["addr"].as_str() {
                ips.push(ip.to_owned());
            }
        }
    }
    capsule["addresses"] = serde_json::Value::String(ips.join(", "));
    capsule["networks"] = serde_json::Value::String(networks.join(", "));
    capsule
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_are_flattened_as_zunclient_does() {
        let c =
            json!({"uuid": "u", "addresses": {"capsule": [{"addr": "10.89.0.2", "port": "p"}]}});
        let c = as_zunclient_shows(c);
        assert_eq!(c["addresses"], "10.89.0.2");
        assert_eq!(c["networks"], "capsule");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
