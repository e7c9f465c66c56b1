//! What this host offers: CPUs, memory, disk, architecture, OS and kernel, read from the
//! system unless the configuration says otherwise. The memory offered is what capsules may
//! take: the host's memory less `[resources] reserved_memory_mib` (as the kubelet reports
//! allocatable = capacity - reserved), unless `[resources] memory_mib` names the offer.

use capsule_types::rpc::NodeResources;

use crate::config::ResourcesConfig;

/// The host's memory (`MemTotal`), MiB; 0 if it cannot be read.
pub fn meminfo_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// The resources to report.
pub fn resources(cfg: &ResourcesConfig) -> NodeResources {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    NodeResources {
        cpus: cfg.cpus.unwrap_or(cpus as f64),
        memory_mib: cfg
            .memory_mib
            .unwrap_or_else(|| meminfo_mib().saturating_sub(cfg.reserved_memory_mib)),
        disk_gib: cfg.disk_gib.unwrap_or(0),
        architecture: std::env::consts::ARCH.to_owned(),
        os: os_name(),
        kernel_version: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
        labels: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_host_and_honours_overrides() {
        let r = resources(&ResourcesConfig::default());
        assert!(r.cpus >= 1.0);
        assert!(r.memory_mib > 0, "MemTotal read from /proc/meminfo");
        assert_eq!(
            r.memory_mib,
            meminfo_mib() - 512,
            "the reserve is not offered"
        );
        assert!(!r.kernel_version.is_empty());
        let r = resources(&ResourcesConfig {
            cpus: Some(3.0),
            memory_mib: Some(512),
            disk_gib: Some(7),
            reserved_memory_mib: 100,
        });
        assert_eq!(
            (r.cpus, r.memory_mib, r.disk_gib),
            (3.0, 512, 7),
            "an offer named is the offer"
        );
        let r = resources(&ResourcesConfig {
            reserved_memory_mib: 1000,
            ..ResourcesConfig::default()
        });
        assert_eq!(r.memory_mib, meminfo_mib() - 1000);
    }
}
