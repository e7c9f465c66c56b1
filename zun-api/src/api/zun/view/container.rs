//! What Zun's container calls answer, in Zun's shapes: an exec's output or its stream's
//! `proxy_url`, `top`'s Docker-shaped `Titles`/`Processes`, `stats`' table of figures as
//! Zun's Docker driver words them, and an archive with its `stat`.

use capsule_types::rpc::{ArchiveStat, ContainerStats};
use serde_json::{json, Value};

use crate::app::container::calls::ExecOutcome;

const MIB: f64 = 1024.0 * 1024.0;

/// The URL of an exec session's stream on this API: `ws://` (or `wss://` behind TLS) on the
/// base URL of links, `/v1/containers/<uuid>/exec_stream?exec_id=<id>&grant=<grant>`.
pub fn exec_stream_url(base_url: &str, container: &str, exec_id: &str, grant: &str) -> String {
    let ws = if let Some(rest) = base_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        format!("ws://{base_url}")
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("exec_id", exec_id)
        .append_pair("grant", grant)
        .finish();
    format!("{ws}/v1/containers/{container}/exec_stream?{query}")
}

/// `execute`'s answer: `output`, `exit_code`, `exec_id` and `proxy_url`, as Zun's compute API
/// returns them.
pub fn exec_json(outcome: &ExecOutcome, base_url: &str) -> Value {
    match outcome {
        ExecOutcome::Output { output, exit_code } => json!({
            "output": output, "exit_code": exit_code, "exec_id": null, "proxy_url": null,
        }),
        ExecOutcome::Session {
            container,
            exec_id,
            grant,
        } => {
            let id = exec_id.to_string();
            json!({
                "output": null, "exit_code": null, "exec_id": id,
                "proxy_url": exec_stream_url(base_url, container, &id, grant),
            })
        }
    }
}

/// `top`'s answer, as Docker's (and Zun's): `{"Titles": [...], "Processes": [[...]]}`.
pub fn top_json(titles: &[String], processes: &[Vec<String>]) -> Value {
    json!({ "Titles": titles, "Processes": processes })
}

/// `stats`' answer, with the keys of Zun's Docker driver (memory in MiB, I/O as `in/out`).
pub fn stats_json(name: &str, s: &ContainerStats) -> Value {
    let usage = s.memory_usage_bytes as f64 / MIB;
    let limit = s.memory_limit_bytes as f64 / MIB;
    let percent = if s.memory_limit_bytes > 0 {
        s.memory_usage_bytes as f64 / s.memory_limit_bytes as f64 * 100.0
    } else {
        0.0
    };
    json!({
        "CONTAINER": name,
        "CPU %": s.cpu_percent,
        "MEM USAGE(MiB)": usage,
        "MEM LIMIT(MiB)": limit,
        "MEM %": percent,
        "BLOCK I/O(B)": format!("{}/{}", s.block_read_bytes, s.block_write_bytes),
        "NET I/O(B)": format!("{}/{}", s.network_rx_bytes, s.network_tx_bytes),
    })
}

/// `get_archive`'s answer: `{"data": <base64 tar>, "stat": {...}}`.
pub fn archive_json(data: &str, stat: &ArchiveStat) -> Value {
    json!({ "data": data, "stat": stat })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls_follow_the_base_url() {
        let u = exec_stream_url("http://h:9517", "c", "e", "g+/=");
        assert_eq!(
            u,
            "ws://h:9517/v1/containers/c/exec_stream?exec_id=e&grant=g%2B%2F%3D"
        );
        let u = exec_stream_url("https://cloud.example/container", "c", "e", "g");
        assert_eq!(
            u,
            "wss://cloud.example/container/v1/containers/c/exec_stream?exec_id=e&grant=g"
        );
    }

    #[test]
    fn stats_in_zuns_words() {
        let s = ContainerStats {
            cpu_percent: 1.5,
            memory_usage_bytes: 64 * 1024 * 1024,
            memory_limit_bytes: 256 * 1024 * 1024,
            block_read_bytes: 1,
            block_write_bytes: 2,
            network_rx_bytes: 3,
            network_tx_bytes: 4,
        };
        let v = stats_json("web", &s);
        assert_eq!(v["CONTAINER"], "web");
        assert_eq!(v["MEM USAGE(MiB)"], 64.0);
        assert_eq!(v["MEM LIMIT(MiB)"], 256.0);
        assert_eq!(v["MEM %"], 25.0);
        assert_eq!(v["BLOCK I/O(B)"], "1/2");
        assert_eq!(v["NET I/O(B)"], "3/4");
    }
}
