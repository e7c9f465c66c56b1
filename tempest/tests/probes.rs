//! Health probes on the running stack, with the unchanged python-zunclient: a capsule whose
//! readiness probe passes shows ready; when its liveness probe starts failing, the container
//! is restarted (`restart_count` grows) and `zun action-list` says why; the view's
//! `healthcheck` and `auto_heal` show the probe.

use std::time::Duration;

use serde_json::json;
use tempest::{
    examples_dir, unique_name, wait_capsule, wait_status, zun, CapsuleGuard, TemplateFile, User,
};

#[test]
fn a_failing_liveness_probe_restarts_the_container_and_the_history_says_why() {
    let name = unique_name("probed");
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        let c = &mut v["spec"]["containers"][0];
        c["command"] = json!([
            "sh",
            "-c",
            "touch /tmp/live /tmp/ready; exec sleep infinity"
        ]);
        c["livenessProbe"] = json!({"exec": {"command": ["test", "-f", "/tmp/live"]},
                                    "periodSeconds": 1, "failureThreshold": 2});
        c["readinessProbe"] = json!({"exec": {"command": ["test", "-f", "/tmp/ready"]},
                                     "periodSeconds": 1, "failureThreshold": 1});
    });
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    zun(User::Demo, &["capsule-create", "-f", file.arg()]).ok();
    let c = wait_status(User::Demo, &name, "Running", Duration::from_secs(90));
    let container = c["containers"][0]["uuid"].as_str().unwrap().to_owned();
    assert_eq!(c["containers"][0]["auto_heal"], true, "{c}");
    assert_eq!(
        c["containers"][0]["healthcheck"]["cmd"], "test -f /tmp/live",
        "{c}"
    );
    wait_capsule(
        User::Demo,
        &name,
        "became ready",
        Duration::from_secs(30),
        |c| c["ready"] == true && c["containers"][0]["ready"] == true,
    );

    // Not ready any more, then not alive.
    zun(User::Demo, &["exec", &container, "rm /tmp/ready"]).ok();
    wait_capsule(
        User::Demo,
        &name,
        "became unready",
        Duration::from_secs(30),
        |c| c["containers"][0]["ready"] == false,
    );
    zun(User::Demo, &["exec", &container, "rm /tmp/live"]).ok();
    let restarted = wait_capsule(
        User::Demo,
        &name,
        "was restarted",
        Duration::from_secs(60),
        |c| c["containers"][0]["restart_count"].as_u64() >= Some(1),
    );
    assert_eq!(
        restarted["containers"][0]["status"], "Running",
        "{restarted}"
    );
    // The new start made both files again.
    wait_capsule(
        User::Demo,
        &name,
        "became ready again",
        Duration::from_secs(30),
        |c| c["containers"][0]["ready"] == true,
    );

    let list = zun(User::Demo, &["action-list", &container]).ok();
    assert!(list.stdout.contains("unhealthy"), "{}", list.stdout);
    assert!(
        list.stdout
            .contains("Liveness probe failed 2 times in a row: command exited with code 1"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("restarted"), "{}", list.stdout);
}
