//! Compute hosts as Zun's `hosts_view` shows them.

use db::entity::compute_node;
use serde_json::{json, Value};

use crate::app::host::HostPage;

/// Zun's `cpus` is an integer column: whole counts are shown as integers.
fn cpus(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// One host, with its links under `base_url`.
pub fn host_json(n: &compute_node::Model, base_url: &str) -> Value {
    let runtimes = if n.runtimes.is_array() {
        n.runtimes.clone()
    } else {
        json!(["runc"])
    };
    json!({
        "uuid": n.uuid,
        "links": [
            {"href": format!("{base_url}/v1/hosts/{}", n.uuid), "rel": "self"},
            {"href": format!("{base_url}/hosts/{}", n.uuid), "rel": "bookmark"},
        ],
        "hostname": n.hostname,
        "mem_total": n.mem_total,
        "cpus": cpus(n.cpus),
        "total_containers": n.total_containers,
        "architecture": n.architecture,
        "os_type": n.os_type,
        "os": n.os,
        "kernel_version": n.kernel_version,
        "labels": n.labels,
        "mem_used": n.mem_used,
        "cpu_used": n.cpu_used,
        "disk_used": n.disk_used,
        "disk_total": n.disk_total,
        "disk_quota_supported": false,
        "runtimes": runtimes,
        "enable_cpu_pinning": false,
    })
}

/// `{"hosts": [...], "next": <url or null>}`.
pub fn host_list_json(page: &HostPage, base_url: &str) -> Value {
    json!({
        "hosts": page.nodes.iter().map(|n| host_json(n, base_url)).collect::<Vec<_>>(),
        "next": page
            .next_query
            .as_ref()
            .map(|q| format!("{base_url}/v1/hosts?{q}")),
    })
}
