//! Real pods on the stack's compute host, driven as a cloud user drives them: the real
//! `zun`/`openstack` clients through Keystone, the agent over RabbitMQ, containerd, the
//! registry, netavark and the shim. Restarts and OOM kills must show in what the clients print,
//! and a deleted capsule must leave nothing on the host.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tempest::{
    examples_dir, host_leftovers, unique_name, wait_capsule, wait_gone, zun, CapsuleGuard,
    TemplateFile, User,
};

const LONG: Duration = Duration::from_secs(120);

/// Creates `examples/minimal.yaml` renamed and changed by `edit`, as demo, with the real zun.
fn create(prefix: &str, edit: impl FnOnce(&mut Value)) -> (String, CapsuleGuard) {
    let name = unique_name(prefix);
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, edit);
    let guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    (name, guard)
}

/// Deletes `name` with the real zun, waits until it is gone, and checks the host.
fn delete_and_check(name: &str, uuid: &str) {
    zun(User::Demo, &["capsule-delete", name]).ok();
    wait_gone(User::Demo, name, LONG);
    // devstack's compute host keeps its namespaces in /run/netns.
    let left = host_leftovers(uuid, Path::new("/run/netns"));
    assert!(left.is_empty(), "capsule {name} left behind: {left:#?}");
}

#[test]
fn a_container_failing_under_on_failure_is_restarted_and_the_count_shows() {
    let (name, _guard) = create("flaky", |v| {
        v["restartPolicy"] = json!("OnFailure");
        v["spec"]["containers"][0]["command"] = json!(["sh", "-c", "echo try; exit 1"]);
    });
    let c = wait_capsule(User::Demo, &name, "restarted twice", LONG, |c| {
        c["containers"][0]["restart_count"].as_i64().unwrap_or(0) >= 2
    });
    assert_ne!(c["status"], "Error", "{c}");
    assert_eq!(c["containers"][0]["exit_code"], 1, "{c}");
    let uuid = c["uuid"].as_str().unwrap().to_owned();
    // The leftover check sees a live capsule: what it finds after the delete means something.
    let live = host_leftovers(&uuid, Path::new("/run/netns"));
    for kind in ["netns capsule-", "cgroup ", "mount ", "nft: "] {
        assert!(
            live.iter().any(|l| l.starts_with(kind)),
            "the leftover check does not see the running capsule's {kind:?}: {live:#?}"
        );
    }
    let cgroups = live.iter().filter(|l| l.starts_with("cgroup ")).count();
    assert!(
        cgroups >= 2,
        "the capsule's cgroup in only {cgroups} hierarchy: {live:#?}"
    );
    delete_and_check(&name, &uuid);
}

#[test]
fn memory_over_the_request_is_oom_killed_and_reported() {
    let (name, _guard) = create("hog", |v| {
        v["restartPolicy"] = json!("Never");
        let c = &mut v["spec"]["containers"][0];
        c["command"] = json!(["sh", "-c", "x=a; while true; do x=$x$x; done"]);
        c["resources"] = json!({"requests": {"memory": 16}});
    });
    let c = wait_capsule(User::Demo, &name, "had its container fail", LONG, |c| {
        c["containers"][0]["status"] == "Error"
    });
    let reason = c["containers"][0]["status_reason"].as_str().unwrap_or("");
    assert!(reason.contains("OOMKilled"), "{c}");
    assert_eq!(c["status"], "Error", "{c}");
    let uuid = c["uuid"].as_str().unwrap().to_owned();
    delete_and_check(&name, &uuid);
}
