//! The `capsule` binary with OpenID Connect tokens against the running stack: a client of
//! devstack's real provider (node-oidc-provider) gets a token with the client-credentials
//! grant and creates, lists and deletes capsules in the project zun-api maps it to, without a
//! Keystone user; a bad token or a wrong secret is a clear error.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{expect, text};
use serde_json::Value;
use tempest::{env, examples_dir, unique_name, wait_gone, zun, CapsuleGuard, TemplateFile, User};

/// `capsule` with no Keystone credentials at all, pointed at the API.
fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capsule"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CAPSULE_ENDPOINT", env("ZUN_TEST_API_URL"))
        .env("CAPSULE_NO_TOKEN_CACHE", "1");
    cmd
}

/// `capsule args` as devstack's `capsule-ci` client, with the client-credentials grant.
fn as_client(secret: &str, args: &[&str]) -> Output {
    bare()
        .env("OS_AUTH_TYPE", "v3oidcclientcredentials")
        .env(
            "OS_DISCOVERY_ENDPOINT",
            format!(
                "{}/.well-known/openid-configuration",
                env("ZUN_TEST_OIDC_ISSUER")
            ),
        )
        .env("OS_CLIENT_ID", env("ZUN_TEST_OIDC_CLIENT_ID"))
        .env("OS_CLIENT_SECRET", secret)
        .args(args)
        .output()
        .expect("run capsule")
}

#[test]
fn a_client_credentials_token_creates_lists_and_deletes_capsules_in_its_project() {
    let secret = env("ZUN_TEST_OIDC_CLIENT_SECRET");
    let name = unique_name("oidc");
    let file = TemplateFile::renamed(&examples_dir().join("minimal.yaml"), &name);
    let _guard = CapsuleGuard {
        name: name.clone(),
        owner: User::Demo,
    };
    let out = as_client(
        &secret,
        &[
            "capsule-create",
            "-f",
            file.arg(),
            "--wait",
            "--format",
            "json",
        ],
    );
    let created: Value = serde_json::from_str(&expect(&out, 0)).expect("JSON output");
    assert_eq!(created["status"], "Running", "{created}");
    // The client acts in project demo (devstack's [oidc] client map): demo's Keystone user
    // sees the capsule with the real zunclient.
    let seen = zun(User::Demo, &["capsule-describe", &name]).ok().stdout;
    assert!(seen.contains(created["uuid"].as_str().unwrap()), "{seen}");
    let listed = expect(
        &as_client(&secret, &["capsule-list", "--format", "json"]),
        0,
    );
    assert!(listed.contains(&name), "{listed}");
    expect(&as_client(&secret, &["capsule-delete", &name]), 0);
    wait_gone(User::Demo, &name, Duration::from_secs(120));
}

#[test]
fn a_bad_token_or_a_wrong_secret_is_a_clear_error() {
    let out = bare()
        .env("OS_ACCESS_TOKEN", "not-a-jwt")
        .args(["capsule-list"])
        .output()
        .expect("run capsule");
    expect(&out, 1);
    let err = text(&out.stderr);
    assert!(err.contains("401"), "{err}");

    let out = as_client("wrong-secret", &["capsule-list"]);
    expect(&out, 1);
    let err = text(&out.stderr);
    assert!(err.contains("the issuer refused client"), "{err}");

    // Without --endpoint there is nothing to send the token to.
    let out = Command::new(env!("CARGO_BIN_EXE_capsule"))
        .env_clear()
        .env("OS_ACCESS_TOKEN", "t")
        .env("CAPSULE_NO_TOKEN_CACHE", "1")
        .args(["capsule-list"])
        .output()
        .expect("run capsule");
    expect(&out, 2);
    assert!(
        text(&out.stderr).contains("--endpoint"),
        "{}",
        text(&out.stderr)
    );
}
