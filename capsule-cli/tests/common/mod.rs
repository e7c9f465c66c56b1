//! What the tests of the `capsule` binary against the running stack share: running it as a
//! user (credentials in `OS_*`, as openrc sets them), its exit code and output, and a running
//! capsule to work on.
// Each test file uses a part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

use serde_json::Value;
use tempest::{env, examples_dir, unique_name, CapsuleGuard, TemplateFile, User};

/// Runs `capsule args` with `user`'s credentials in `OS_*`, as openrc sets them.
pub fn capsule(user: User, args: &[&str]) -> Output {
    command_as(user).args(args).output().expect("run capsule")
}

/// `capsule` with `user`'s credentials in `OS_*`.
pub fn command_as(user: User) -> Command {
    let (name, project, password) = user.credentials();
    let mut cmd = base_command();
    cmd.env("OS_USERNAME", name)
        .env("OS_PROJECT_NAME", project)
        .env("OS_PASSWORD", password);
    cmd
}

/// `capsule` with only the common settings (no user, no cache, no inherited `OS_*`).
pub fn base_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capsule"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("OS_AUTH_URL", env("ZUN_TEST_KEYSTONE_URL"))
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_DOMAIN_NAME", "Default")
        .env("OS_REGION_NAME", "RegionOne")
        .env("CAPSULE_NO_TOKEN_CACHE", "1");
    cmd
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts it exited `code`; returns stdout.
pub fn expect(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

pub fn json_of(out: &Output) -> Value {
    serde_json::from_str(&expect(out, 0)).expect("JSON output")
}

/// Creates `examples/minimal.yaml` as demo with its container running `sh -c script`, waits
/// until it runs; its name, its container's uuid, and the guard that deletes it.
pub fn running(prefix: &str, script: &str) -> (String, String, CapsuleGuard) {
    let name = unique_name(prefix);
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        v["spec"]["containers"][0]["command"] = serde_json::json!(["sh", "-c", script]);
    });
    let guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    let args = [
        "capsule-create",
        "-f",
        file.arg(),
        "--wait",
        "--format",
        "json",
    ];
    let c = json_of(&capsule(User::Demo, &args));
    let container = c["containers"][0]["uuid"].as_str().unwrap().to_owned();
    (name, container, guard)
}
