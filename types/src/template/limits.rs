//! Bounds the validator enforces; the defaults are Zun's, plus sane caps where Zun has none.

use serde::{Deserialize, Serialize};

/// Bounds for [`crate::template::parse_template`]. Every field has a default
/// ([`Limits::default`]), so a config file may set only some of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Smallest `resources.requests.cpu` (Zun's `minimum_cpus`, 0.1).
    pub min_cpu: f64,
    /// Largest `resources.requests.cpu` (Zun's `maximum_cpus`, 16.0).
    pub max_cpu: f64,
    /// Smallest `resources.requests.memory` in MiB (Zun's `minimum_memory`, 4).
    pub min_memory_mib: u64,
    /// Largest `resources.requests.memory` in MiB (Zun's `maximum_memory`, 8192).
    pub max_memory_mib: u64,
    /// Largest new volume in GiB (1024).
    pub max_volume_size_gib: u64,
    /// Most application containers in one capsule (16).
    pub max_containers: usize,
    /// Most init containers in one capsule (16).
    pub max_init_containers: usize,
    /// Most volumes in one capsule (16).
    pub max_volumes: usize,
    /// Most `ports` entries over all containers of one capsule (64).
    pub max_ports: usize,
    /// Longest free-text string: each `command`/`args` item, `env` key and value, label value
    /// (32 KiB).
    pub max_string_len: usize,
    /// Most `command` plus `args` items in one container (1024).
    pub max_command_items: usize,
    /// Most `env` entries in one container (1024).
    pub max_env_vars: usize,
    /// Most `metadata.labels` entries (256).
    pub max_labels: usize,
    /// Most `volumeMounts` entries in one container (32).
    pub max_volume_mounts: usize,
    /// Most `spec.securityGroups` entries (16).
    pub max_security_groups: usize,
    /// Longest `mountPath` or `workDir` in bytes (4096, Linux's `PATH_MAX`).
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            min_cpu: 0.1,
            max_cpu: 16.0,
            min_memory_mib: 4,
            max_memory_mib: 8192,
            max_volume_size_gib: 1024,
            max_containers: 16,
            max_init_containers: 16,
            max_volumes: 16,
            max_ports: 64,
            max_string_len: 32 * 1024,
            max_command_items: 1024,
            max_env_vars: 1024,
            max_labels: 256,
            max_volume_mounts: 32,
            max_security_groups: 16,
            max_path_len: 4096,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_zuns() {
        let l = Limits::default();
        assert_eq!(l.min_cpu, 0.1);
        assert_eq!(l.max_cpu, 16.0);
        assert_eq!(l.min_memory_mib, 4);
        assert_eq!(l.max_memory_mib, 8192);
        assert_eq!(l.max_string_len, 32768);
    }

    #[test]
    fn partial_config_keeps_defaults() {
        let l: Limits = serde_json::from_str(r#"{"max_cpu": 4.0}"#).unwrap();
        assert_eq!(l.max_cpu, 4.0);
        assert_eq!(l.max_memory_mib, 8192);
    }
}
