//! The benchmark report: merges what the benchmarks left in `bench/out/`, sets each figure
//! beside its DESIGN.md target and podman's figure for the same pod work, and writes
//! `bench/results.json` and `bench/create-latency.svg`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::svg::{cdf_plot, Series};

/// The benchmarks whose figures the report knows, in report order.
pub const PARTS: &[&str] = &["pod", "exec", "probes", "api", "rpc", "sg", "oidc"];

/// A target from DESIGN.md: the figure must be at most, or at least, this.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// `≤ x` (latency, memory).
    AtMost(f64),
    /// `≥ x` (throughput).
    AtLeast(f64),
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// The unit of `ours` and `podman`.
    pub unit: String,
    /// DESIGN.md's target, if it sets one.
    pub target: Option<Target>,
    /// Our figure.
    pub ours: f64,
    /// podman's figure for the same work, if measured.
    pub podman: Option<f64>,
}

impl Row {
    /// Whether `ours` meets the target (`None` without one).
    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| match t {
            Target::AtMost(x) => self.ours <= x,
            Target::AtLeast(x) => self.ours >= x,
        })
    }

    /// podman / ours: how many times longer (or more memory) podman takes; for throughput,
    /// where more is better, ours / podman. `None` without a podman figure.
    pub fn ratio(&self) -> Option<f64> {
        let p = self.podman?;
        (self.ours > 0.0 && p > 0.0).then(|| match self.target {
            Some(Target::AtLeast(_)) => self.ours / p,
            _ => p / self.ours,
        })
    }
}

/// The parts found in `out` (`bench/out/`), by benchmark name.
pub fn load_parts(out: &Path) -> BTreeMap<String, Value> {
    let mut parts = BTreeMap::new();
    for name in PARTS {
        let path = out.join(format!("{name}.json"));
        if let Ok(text) = std::fs::read_to_string(&path) {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => {
                    parts.insert((*name).to_owned(), v);
                }
                Err(e) => eprintln!("{}: not JSON ({e}); left out", path.display()),
            }
        }
    }
    parts
}

fn fig<'a>(parts: &'a BTreeMap<String, Value>, bench: &str, key: &str) -> Option<&'a Value> {
    parts.get(bench)?.get("figures")?.get(key)
}

fn num(parts: &BTreeMap<String, Value>, bench: &str, key: &str, field: &str) -> Option<f64> {
    fig(parts, bench, key)?.get(field)?.as_f64()
}

/// The table rows for whatever figures `parts` holds.
pub fn rows(parts: &BTreeMap<String, Value>) -> Vec<Row> {
    use Target::{AtLeast, AtMost};
    // (metric, bench, key, field, unit, target, podman's key)
    type Spec = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<Target>,
        Option<&'static str>,
    );
    #[rustfmt::skip]
    let specs: &[Spec] = &[
        ("create -> Running, p50", "pod", "create_seq", "p50", "ms", Some(AtMost(80.0)), Some("podman_create_seq")),
        ("create -> Running, p99", "pod", "create_seq", "p99", "ms", Some(AtMost(250.0)), Some("podman_create_seq")),
        ("delete -> gone, p50", "pod", "delete_seq", "p50", "ms", Some(AtMost(60.0)), Some("podman_delete_seq")),
        ("delete -> gone, p99", "pod", "delete_seq", "p99", "ms", None, Some("podman_delete_seq")),
        ("create beside a running capsule, p50", "pod", "create_beside", "p50", "ms", Some(AtMost(80.0)), None),
        ("delete beside a running capsule, p50", "pod", "delete_beside", "p50", "ms", Some(AtMost(60.0)), None),
        ("10 at once: create -> Running, p50", "pod", "create_burst10", "p50", "ms", None, None),
        ("10 at once: wall time per capsule", "pod", "burst10_per_capsule", "value", "ms", None, None),
        ("100 at once: create -> Running, p50", "pod", "create_burst100", "p50", "ms", None, Some("podman_create_burst100")),
        ("100 at once: create -> Running, p99", "pod", "create_burst100", "p99", "ms", None, Some("podman_create_burst100")),
        ("100 at once: wall time per capsule", "pod", "burst100_per_capsule", "value", "ms", None, Some("podman_burst100_per_capsule")),
        ("100 at once: Running (of 100)", "pod", "burst100_running", "value", "count", Some(AtLeast(100.0)), None),
        ("100 at once: delete -> gone, p50", "pod", "delete_burst100", "p50", "ms", None, Some("podman_delete_burst100")),
        ("100 at once: delete -> gone, p99", "pod", "delete_burst100", "p99", "ms", None, Some("podman_delete_burst100")),
        ("exec round trip (API -> container), p50", "exec", "exec", "p50", "ms", Some(AtMost(25.0)), Some("podman_exec")),
        ("exec round trip (API -> container), p99", "exec", "exec", "p99", "ms", None, Some("podman_exec")),
        ("stats (API -> host's cgroup), p50", "exec", "stats", "p50", "ms", None, Some("podman_stats")),
        ("100 capsules, no probes: agent + shims CPU", "probes", "none_agent_shims_cpu", "value", "%", None, None),
        ("100 exec probes/s: agent + shims CPU", "probes", "exec_agent_shims_cpu", "value", "%", None, None),
        ("exec probe: CPU per probe (agent + shim)", "probes", "exec_cpu_per_probe", "value", "ms", None, Some("podman_cpu_per_check")),
        ("exec probe: whole host CPU per probe", "probes", "exec_host_cpu_per_probe", "value", "ms", None, Some("podman_cpu_per_check")),
        ("100 TCP probes/s: agent + shims CPU", "probes", "tcp_agent_shims_cpu", "value", "%", None, None),
        ("TCP probe: CPU per probe (agent + shim)", "probes", "tcp_cpu_per_probe", "value", "ms", None, None),
        ("GET /v1/capsules, 1,000, gzip (as zunclient)", "api", "list_1000_gzip", "value", "req/s", Some(AtLeast(5000.0)), None),
        ("GET /v1/capsules, 1,000, uncompressed", "api", "list_1000", "value", "req/s", Some(AtLeast(5000.0)), None),
        ("GET /v1/capsules?limit=50", "api", "list_page50", "value", "req/s", None, None),
        ("POST /v1/capsules (API alone), p50", "api", "post_create", "p50", "ms", None, None),
        ("RPC round trip POST -> agent -> report, p50", "rpc", "round_trip", "p50", "ms", None, None),
        ("RPC round trip POST -> agent -> report, p99", "rpc", "round_trip", "p99", "ms", None, None),
        ("zun-compute idle RSS", "pod", "idle_rss", "value", "MiB", Some(AtMost(30.0)), None),
        ("per capsule on the host (private memory)", "pod", "per_capsule_private", "value", "MiB", Some(AtMost(2.0)), Some("podman_per_pod_private")),
        ("rule create -> host's nftables, p50", "sg", "rule_create_in_table", "p50", "ms", Some(AtMost(1000.0)), None),
        ("rule create -> host's nftables, p99", "sg", "rule_create_in_table", "p99", "ms", Some(AtMost(1000.0)), None),
        ("OIDC token check, uncached RS256, p50", "oidc", "uncached_rs256", "p50", "ms", None, None),
        ("OIDC token check, cached, p50", "oidc", "cached_rs256", "p50", "ms", None, None),
    ];
    specs
        .iter()
        .filter_map(|(metric, bench, key, field, unit, target, podman)| {
            Some(Row {
                metric: (*metric).to_owned(),
                unit: (*unit).to_owned(),
                target: *target,
                ours: num(parts, bench, key, field)?,
                podman: podman.and_then(|k| num(parts, bench, k, field)),
            })
        })
        .collect()
}

fn show(v: f64, unit: &str) -> String {
    match unit {
        "req/s" | "count" => format!("{v:.0} {unit}"),
        _ if v >= 100.0 => format!("{v:.0} {unit}"),
        _ if v >= 1.0 => format!("{v:.1} {unit}"),
        _ => format!("{v:.3} {unit}"),
    }
}

/// The table as text.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<46} {:>12} {:>12} {:>6} {:>12} {:>8}\n",
        "measure", "target", "ours", "met", "podman", "ratio"
    );
    for r in rows {
        let target = match r.target {
            Some(Target::AtMost(x)) => format!("<= {}", show(x, &r.unit)),
            Some(Target::AtLeast(x)) => format!(">= {}", show(x, &r.unit)),
            None => "-".into(),
        };
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        out.push_str(&format!(
            "{:<46} {:>12} {:>12} {:>6} {:>12} {:>8}\n",
            r.metric,
            target,
            show(r.ours, &r.unit),
            met,
            r.podman
                .map(|p| show(p, &r.unit))
                .unwrap_or_else(|| "-".into()),
            r.ratio()
                .map(|x| format!("{x:.1}x"))
                .unwrap_or_else(|| "-".into()),
        ));
    }
    out
}

/// The create-latency series for the plot: ours and podman's, one at a time and 100 at once.
pub fn create_series(parts: &BTreeMap<String, Value>) -> Vec<Series> {
    [
        ("capsule service, one at a time", "#1f77b4", "create_seq"),
        ("capsule service, 100 at once", "#17becf", "create_burst100"),
        ("podman, one at a time", "#d62728", "podman_create_seq"),
        ("podman, 100 at once", "#ff9896", "podman_create_burst100"),
    ]
    .into_iter()
    .filter_map(|(label, color, key)| {
        let samples: Vec<f64> = fig(parts, "pod", key)?
            .get("samples")?
            .as_array()?
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        (!samples.is_empty()).then(|| Series {
            label: label.to_owned(),
            color,
            samples,
        })
    })
    .collect()
}

/// Writes `results.json` and `create-latency.svg` into `dir` from the parts in `dir/out`;
/// returns the table and the files written.
pub fn write(dir: &Path) -> std::io::Result<(String, Vec<PathBuf>)> {
    let parts = load_parts(&dir.join("out"));
    let rows = rows(&parts);
    let results = json!({
        "rows": rows.iter().map(|r| json!({
            "metric": r.metric, "unit": r.unit,
            "target": r.target.map(|t| match t {
                Target::AtMost(x) => json!({"at_most": x}),
                Target::AtLeast(x) => json!({"at_least": x}),
            }),
            "ours": r.ours, "met": r.met(), "podman": r.podman, "ratio": r.ratio(),
        })).collect::<Vec<_>>(),
        "parts": parts,
    });
    std::fs::create_dir_all(dir)?;
    let json_path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&results).map_err(std::io::Error::other)?;
    std::fs::write(&json_path, text + "\n")?;
    let mut written = vec![json_path];
    let series = create_series(&parts);
    if !series.is_empty() {
        let svg_path = dir.join("create-latency.svg");
        let title = "2-container busybox capsule with a published port: create -> all Running";
        std::fs::write(&svg_path, cdf_plot(title, &series))?;
        written.push(svg_path);
    }
    Ok((table(&rows), written))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> BTreeMap<String, Value> {
        let pod = json!({"figures": {
            "create_seq": {"p50": 90.0, "p99": 110.0, "samples": [80.0, 90.0, 110.0]},
            "podman_create_seq": {"p50": 360.0, "p99": 400.0, "samples": [360.0]},
            "idle_rss": {"value": 20.0},
        }});
        let api = json!({"figures": {"list_1000": {"value": 6000.0}}});
        [("pod".to_owned(), pod), ("api".to_owned(), api)]
            .into_iter()
            .collect()
    }

    #[test]
    fn rows_compare_with_targets_and_podman() {
        let rows = rows(&parts());
        let names: Vec<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(
            names,
            [
                "create -> Running, p50",
                "create -> Running, p99",
                "GET /v1/capsules, 1,000, uncompressed",
                "zun-compute idle RSS"
            ]
        );
        assert_eq!(rows[0].met(), Some(false));
        assert_eq!(rows[0].ratio(), Some(4.0));
        assert_eq!(rows[1].met(), Some(true));
        assert_eq!(rows[2].met(), Some(true));
        assert_eq!(rows[2].ratio(), None);
        let t = table(&rows);
        assert!(
            t.contains("<= 80.0 ms") && t.contains("NO") && t.contains("4.0x"),
            "{t}"
        );
    }

    #[test]
    fn series_only_for_measured_runs() {
        let s = create_series(&parts());
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].samples, [80.0, 90.0, 110.0]);
    }
}
