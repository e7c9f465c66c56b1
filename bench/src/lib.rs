//! Benchmark figures: each benchmark (`devstack/bench.sh NAME`) records what it measured in
//! `bench/out/NAME.json` with [`Figures`], and `bench-report` (this crate's binary) merges them
//! into `bench/results.json`, a plot of the create-latency distribution and the table of
//! targets, our figures and podman's. The benchmarks of zun-api, e2e and tempest use it.

pub mod report;
pub mod svg;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

/// The repository's `bench/` directory (this crate's own), or `$CAPSULE_BENCH_DIR`.
pub fn bench_dir() -> PathBuf {
    match std::env::var_os("CAPSULE_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// Where benchmark `name` leaves its figures.
pub fn part_path(name: &str) -> PathBuf {
    bench_dir().join("out").join(format!("{name}.json"))
}

/// The `p` quantile (0..=1) of `sorted`, nearest rank, in milliseconds; 0 when empty.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Prints one line of latency figures: `what`, p50, p99, min, max and the count.
pub fn print_latency(what: &str, samples: &[Duration]) {
    let mut d = samples.to_vec();
    d.sort();
    println!(
        "{what:<44} p50 {:8.1} ms   p99 {:8.1} ms   min {:7.1}   max {:7.1}   (n={})",
        percentile_ms(&d, 0.5),
        percentile_ms(&d, 0.99),
        percentile_ms(&d, 0.0),
        percentile_ms(&d, 1.0),
        d.len()
    );
}

/// What one benchmark measured, by key. Saved as JSON when [`Figures::save`] is called.
#[derive(Debug)]
pub struct Figures {
    name: &'static str,
    entries: Map<String, Value>,
}

impl Figures {
    /// Figures of benchmark `name` (`pod`, `api`, `rpc`, ...).
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            entries: Map::new(),
        }
    }

    /// A latency distribution: p50, p99, min, max, n and every sample (ms), so the report can
    /// plot it. Returns p50 in ms.
    pub fn latency(&mut self, key: &str, what: &str, samples: &[Duration]) -> f64 {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let p50 = percentile_ms(&sorted, 0.5);
        let ms: Vec<f64> = sorted
            .iter()
            .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
            .collect();
        self.entries.insert(
            key.to_owned(),
            json!({
                "what": what, "unit": "ms", "n": sorted.len(),
                "p50": p50, "p99": percentile_ms(&sorted, 0.99),
                "min": percentile_ms(&sorted, 0.0), "max": percentile_ms(&sorted, 1.0),
                "samples": ms,
            }),
        );
        p50
    }

    /// A single figure with its unit (`MiB`, `req/s`, `ms`, `count`).
    pub fn value(&mut self, key: &str, what: &str, value: f64, unit: &str) {
        self.entries.insert(
            key.to_owned(),
            json!({"what": what, "unit": unit, "value": value}),
        );
    }

    /// Writes `bench/out/<name>.json` (with the time and host it was measured on) and says so.
    pub fn save(self) -> std::io::Result<PathBuf> {
        let path = part_path(self.name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let doc = json!({
            "bench": self.name,
            "measured_at_unix": secs,
            "host": host.trim(),
            "cpus": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            "figures": Value::Object(self.entries),
        });
        let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        println!("figures written to {}", path.display());
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&d, 0.5), 51.0);
        assert_eq!(percentile_ms(&d, 0.99), 99.0);
        assert_eq!(percentile_ms(&d, 0.0), 1.0);
        assert_eq!(percentile_ms(&d, 1.0), 100.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn latency_entry_keeps_sorted_samples() {
        let mut f = Figures::new("t");
        let p50 = f.latency(
            "x",
            "x",
            &[Duration::from_millis(3), Duration::from_millis(1)],
        );
        assert_eq!(p50, 3.0);
        assert_eq!(f.entries["x"]["samples"], json!([1.0, 3.0]));
        assert_eq!(f.entries["x"]["n"], 2);
    }
}
