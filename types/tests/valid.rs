//! The templates in `fixtures/valid/*.yaml` are accepted and normalized as documented.
//!
//! Each is read as a user's file is (serde_yaml → serde_json::Value → `parse_template`), and also
//! sent the way python-zunclient sends it (`{"template": {...}}` and `{"template": "<json>"}`).

use capsule_types::template::{
    parse_create_body, parse_template, CapsuleTemplate, ImagePullPolicy, Limits, Protocol,
    RestartPolicy, VolumeSource,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const FILES: [&str; 6] = [
    "init-containers.yaml",
    "minimal.yaml",
    "ports.yaml",
    "shared-volume.yaml",
    "zun-guide-example.yaml",
    "zun-quirks.yaml",
];

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid")
}

fn yaml_value(file: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(file)).expect("read fixture");
    serde_yaml::from_str(&text).expect("fixture is YAML convertible to JSON")
}

fn load(file: &str) -> CapsuleTemplate {
    let value = yaml_value(file);
    let limits = Limits::default();
    let t = parse_template(&value, &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
    // The same template through the whole request body, as an object and as a JSON string.
    let body = json!({ "template": value });
    assert_eq!(parse_create_body(&body, &limits).as_ref(), Ok(&t), "{file}");
    let text = serde_json::to_string(&value).expect("serialize");
    let body = json!({ "template": text });
    assert_eq!(parse_create_body(&body, &limits).as_ref(), Ok(&t), "{file}");
    // And it round-trips through its stored JSON form.
    let stored = serde_json::to_string(&t).expect("serialize template");
    let back: CapsuleTemplate = serde_json::from_str(&stored).expect("deserialize template");
    assert_eq!(back, t, "{file}");
    t
}

#[test]
fn every_fixture_is_covered() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("list fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    let listed: BTreeSet<String> = FILES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        on_disk, listed,
        "add new fixtures to FILES and give them a test"
    );
    for file in FILES {
        load(file);
    }
}

#[test]
fn zun_guide_example() {
    let t = load("zun-guide-example.yaml");
    assert_eq!(t.name.as_deref(), Some("demo"));
    assert_eq!(t.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(t.annotations, Some(json!({"key1": "value1"})));
    assert_eq!(t.availability_zone.as_deref(), Some("nova"));
    assert_eq!(t.restart_policy, RestartPolicy::Always);
    assert_eq!(t.restart_policy.zun_name(), "always");
    assert_eq!(t.security_groups, ["default"]);

    assert_eq!(t.init_containers.len(), 1);
    let init = &t.init_containers[0];
    assert_eq!(init.image, "busybox");
    assert_eq!(
        init.zun_command(),
        [
            "wget",
            "-O",
            "/work-dir/index.html",
            "https://www.openstack.org/"
        ]
    );
    assert_eq!(init.volume_mounts[0].mount_path, "/work-dir");
    assert!(!init.volume_mounts[0].read_only);
    assert_eq!((init.cpu, init.memory_mib), (Some(0.1), Some(128)));

    assert_eq!(t.containers.len(), 1);
    let nginx = &t.containers[0];
    assert_eq!(nginx.image, "nginx");
    assert_eq!(nginx.work_dir.as_deref(), Some("/"));
    assert_eq!(nginx.env.get("ENV2").map(String::as_str), Some("v"));
    assert_eq!(nginx.ports.len(), 1);
    assert_eq!(nginx.ports[0].container_port, 80);
    assert_eq!(nginx.ports[0].protocol, Protocol::Tcp);
    assert_eq!(nginx.ports[0].host_port, None);
    assert_eq!(nginx.exposed_ports(), ["80/tcp"]);
    assert_eq!(nginx.volume_mounts[0].name, "workdir");
    assert_eq!(nginx.volume_mounts[0].mount_path, "/usr/share/nginx/html");
    assert_eq!(nginx.image_pull_policy, None);
    assert!(!nginx.stdin && !nginx.tty);

    assert_eq!(t.volumes.len(), 1);
    assert_eq!(t.volumes[0].name, "workdir");
    assert_eq!(
        t.volumes[0].source,
        VolumeSource::New {
            size_gib: 1,
            auto_remove: true
        }
    );
    // Zun: sum of the app containers (0.5), then max with each init container (0.1).
    assert_eq!(t.total_cpu(), 0.5);
    assert_eq!(t.total_memory_mib(), 512);
    assert!(t.host_ports().is_empty());
}

#[test]
fn minimal() {
    let t = load("minimal.yaml");
    assert_eq!(t.name, None);
    assert!(t.labels.is_empty());
    assert_eq!(t.annotations, None);
    assert_eq!(t.availability_zone, None);
    assert_eq!(t.restart_policy, RestartPolicy::Always);
    assert!(t.init_containers.is_empty());
    assert!(t.volumes.is_empty());
    assert_eq!(t.security_groups, ["default"]);
    assert_eq!(t.containers.len(), 1);
    let c = &t.containers[0];
    assert_eq!(c.image, "busybox");
    assert_eq!(c.name, None);
    assert!(c.command.is_empty() && c.args.is_empty() && c.env.is_empty() && c.ports.is_empty());
    assert_eq!((c.cpu, c.memory_mib), (None, None));
    assert_eq!(t.total_cpu(), 0.0);
    assert_eq!(t.total_memory_mib(), 0);
}

#[test]
fn shared_volume() {
    let t = load("shared-volume.yaml");
    assert_eq!(t.name.as_deref(), Some("log-pipeline"));
    // Scalars coerced as Zun's DictOfStrings.
    assert_eq!(t.labels["tier"], "backend");
    assert_eq!(t.labels["replicas"], "2");
    assert_eq!(t.labels["canary"], "False");
    assert_eq!(t.restart_policy, RestartPolicy::OnFailure);
    assert_eq!(t.restart_policy.zun_name(), "on-failure");
    assert_eq!(t.security_groups, ["default", "logs"]);
    let [writer, reader] = &t.containers[..] else {
        panic!("two containers expected");
    };
    assert_eq!(writer.name.as_deref(), Some("writer"));
    assert_eq!(
        writer.zun_command(),
        [
            "sh",
            "-c",
            "while true; do date >> /var/log/app/out.log; sleep 5; done"
        ]
    );
    // Trailing slash normalized away.
    assert_eq!(writer.volume_mounts[0].mount_path, "/var/log/app");
    assert!(!writer.volume_mounts[0].read_only);
    assert_eq!(reader.image, "localhost:5000/tools/tail:latest");
    assert_eq!(reader.volume_mounts[0].name, "logs");
    assert!(reader.volume_mounts[0].read_only);
    assert_eq!(
        t.volumes[0].source,
        VolumeSource::New {
            size_gib: 2,
            auto_remove: false
        }
    );
    assert_eq!(t.total_cpu(), 0.5);
    assert_eq!(t.total_memory_mib(), 96);
}

#[test]
fn init_containers() {
    let t = load("init-containers.yaml");
    // The deprecated top-level restartPolicy is honoured when spec has none.
    assert_eq!(t.restart_policy, RestartPolicy::Never);
    assert_eq!(t.restart_policy.zun_name(), "no");
    let names: Vec<_> = t.all_containers().map(|c| c.name.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some("wait-for-db"),
            Some("migrate"),
            Some("app"),
            Some("sidecar")
        ]
    );
    assert!(t.init_containers[1].image.contains("@sha256:"));
    assert_eq!(t.init_containers[1].zun_command(), ["--apply"]);
    assert_eq!(
        t.volumes[0].source,
        VolumeSource::Existing {
            volume_id: "0b5a3b0e-7d43-4c5e-9d5f-6b1c2d3e4f50"
                .parse()
                .expect("uuid")
        }
    );
    // App containers sum to 1.5 CPU / 768 MiB; the first init container asks for more.
    assert_eq!(t.total_cpu(), 2.0);
    assert_eq!(t.total_memory_mib(), 2048);
}

#[test]
fn ports() {
    let t = load("ports.yaml");
    assert_eq!(t.security_groups, ["web-sg"]);
    let dns = &t.containers[0];
    assert_eq!(dns.ports[0].name.as_deref(), Some("dns-udp"));
    assert_eq!(dns.ports[0].protocol, Protocol::Udp);
    assert_eq!(dns.ports[1].protocol, Protocol::Tcp);
    assert_eq!(dns.exposed_ports(), ["53/udp", "53/tcp"]);
    let web = &t.containers[1];
    assert_eq!(web.ports[1].host_port, None);
    assert_eq!(
        t.host_ports(),
        [
            (5353, Protocol::Udp),
            (5353, Protocol::Tcp),
            (8080, Protocol::Tcp)
        ]
    );
}

#[test]
fn zun_quirks() {
    let t = load("zun-quirks.yaml");
    assert_eq!(t.name.as_deref(), Some("quirks.example_1"));
    assert_eq!(t.labels["version"], "1.5");
    assert_eq!(t.labels["enabled"], "True");
    assert_eq!(t.annotations, None);
    assert_eq!(t.availability_zone, None);

    let [a, b, c] = &t.containers[..] else {
        panic!("three containers expected");
    };
    // Boolean strings mean what they say (Zun: "false" → true).
    assert!(a.stdin && !a.tty);
    assert!(b.stdin && b.tty);
    assert!(!c.stdin && !c.tty);
    assert_eq!(a.image_pull_policy, Some(ImagePullPolicy::IfNotPresent));
    assert_eq!(b.image_pull_policy.map(|p| p.as_zun_str()), Some("never"));
    assert_eq!(c.image_pull_policy, None);
    assert_eq!(a.env["EMPTY"], "");
    assert_eq!(a.env["QUOTED"], "8080");
    assert_eq!(a.work_dir, None);
    // Numeric strings converted, not crashed on.
    assert_eq!(a.ports[0].container_port, 8080);
    assert_eq!(a.ports[0].host_port, Some(18080));
    assert_eq!((a.cpu, a.memory_mib), (Some(1.5), Some(256)));
    assert_eq!((b.cpu, b.memory_mib), (Some(0.5), None));
    assert_eq!((c.cpu, c.memory_mib), (None, Some(4)));
    assert!(b.command.is_empty());
    assert_eq!(a.volume_mounts[0].mount_path, "/scratch/data");
    assert!(!a.volume_mounts[0].read_only);
    // autoRemove: "false" is false (Zun: true).
    assert_eq!(
        t.volumes[0].source,
        VolumeSource::New {
            size_gib: 3,
            auto_remove: false
        }
    );
    assert_eq!(t.total_cpu(), 2.0);
    assert_eq!(t.total_memory_mib(), 260);
}
