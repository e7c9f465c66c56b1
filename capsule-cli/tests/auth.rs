//! `capsule_cli::auth` against the running devstack's real Keystone: password, application
//! credential and token auth, `clouds.yaml` with `secure.yaml`, flags over files, the catalog's
//! `container` endpoint, token reuse from the cache, and the errors a user sees.
//!
//! Run with the stack's test environment: `set -a; source /opt/capsule/etc/test-env; set +a;
//! cargo test -p capsule-cli --test auth`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use capsule_cli::auth::{forget_with, session_with, AuthArgs, Paths, Session};
use capsule_cli::CliError;
use serde_json::{json, Value};
use tempest::{env, unique_name, User};

const KEYSTONE_401: &str = "The request you have made requires authentication. (HTTP 401)";

fn keystone() -> String {
    env("ZUN_TEST_KEYSTONE_URL")
}

/// The `container` endpoint devstack registers.
fn api_v1() -> String {
    format!("{}/v1", env("ZUN_TEST_API_URL").trim_end_matches('/'))
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A client whose every request fails (a proxy on a closed port): a session made with it
/// proves Keystone was not asked.
fn offline() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .proxy(reqwest::Proxy::all("http://127.0.0.1:9").unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let d = std::env::temp_dir().join(format!("capsule-auth-{}", unique_name(what)));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn cache(&self) -> PathBuf {
        self.0.join("cache")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// No clouds.yaml, no cache.
fn bare() -> Paths {
    Paths::default()
}

fn with_cache(dir: &TempDir) -> Paths {
    Paths {
        cache_dir: Some(dir.cache()),
        ..Paths::default()
    }
}

/// `user`'s password credentials, as `source openrc` gives them.
fn password_args(user: User) -> AuthArgs {
    let (name, project, password) = user.credentials();
    AuthArgs {
        auth_url: Some(keystone()),
        username: Some(name.into()),
        password: Some(password),
        user_domain_name: Some("Default".into()),
        project_name: Some(project.into()),
        project_domain_name: Some("Default".into()),
        region_name: Some("RegionOne".into()),
        ..Default::default()
    }
}

/// demo's password credentials, changed by `edit`.
fn demo(edit: impl FnOnce(&mut AuthArgs)) -> AuthArgs {
    let mut a = password_args(User::Demo);
    edit(&mut a);
    a
}

/// Cloud `name` of clouds.yaml, with flags set by `edit`.
fn cloud_with(name: &str, edit: impl FnOnce(&mut AuthArgs)) -> AuthArgs {
    let mut a = cloud(name);
    edit(&mut a);
    a
}

/// Asserts `msg` starts with `prefix`, showing it otherwise.
#[track_caller]
fn starts(msg: impl std::fmt::Display, prefix: &str) {
    let m = msg.to_string();
    assert!(m.starts_with(prefix), "{m}");
}

fn ok(args: &AuthArgs, paths: &Paths) -> Session {
    session_with(args, &http(), false, paths).unwrap_or_else(|e| panic!("session: {e}"))
}

fn err(args: &AuthArgs, paths: &Paths) -> CliError {
    match session_with(args, &http(), false, paths) {
        Ok(s) => panic!("expected an error, got a session for {}", s.endpoint),
        Err(e) => e,
    }
}

/// Keystone's view of `token`: `GET /v3/auth/tokens` (as the admin).
fn validate(token: &str) -> Value {
    let admin = ok(&password_args(User::Admin), &bare());
    let resp = http()
        .get(format!("{}/auth/tokens", keystone()))
        .header("X-Auth-Token", admin.token)
        .header("X-Subject-Token", token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "token not valid");
    resp.json().unwrap()
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn password_auth_gets_a_project_token_and_the_container_endpoint() {
    let s = ok(&password_args(User::Demo), &bare());
    assert_eq!(s.endpoint, api_v1());
    assert_eq!(s.endpoint, "http://127.0.0.1:9517/v1");
    let v = validate(&s.token);
    assert_eq!(v["token"]["user"]["name"], "demo");
    assert_eq!(v["token"]["project"]["name"], "demo");

    // The same by ids, the v3password alias, the auth URL without /v3, the internal interface.
    let by_ids = demo(|a| {
        a.auth_type = Some("v3password".into());
        a.auth_url = Some(keystone().trim_end_matches("/v3").to_owned() + "/");
        (a.username, a.user_domain_name, a.project_name) = (None, None, None);
        a.user_id = v["token"]["user"]["id"].as_str().map(str::to_owned);
        a.project_id = v["token"]["project"]["id"].as_str().map(str::to_owned);
        a.interface = Some("internal".into());
    });
    let s = ok(&by_ids, &bare());
    assert_eq!(s.endpoint, api_v1());
    assert_eq!(validate(&s.token)["token"]["user"]["name"], "demo");
}

#[test]
fn a_wrong_password_is_an_auth_error_with_keystones_message() {
    let args = demo(|a| a.password = Some("not-the-password".into()));
    let e = err(&args, &bare());
    let msg = e.to_string();
    assert!(matches!(e, CliError::Auth(_)), "{e:?}");
    starts(&msg, KEYSTONE_401);
    assert!(msg.contains("Request-ID: req-"), "{msg}");
    assert!(!msg.contains("not-the-password"), "{msg}");
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn a_region_without_the_endpoint_says_so() {
    let args = demo(|a| a.region_name = Some("NoSuchRegion".into()));
    let e = err(&args, &bare());
    assert!(matches!(e, CliError::Auth(_)), "{e:?}");
    let want = "no `container` endpoint (interface public, region NoSuchRegion) in the catalog";
    starts(e, want);
}

#[test]
fn missing_or_contradictory_options_are_usage_errors_before_any_request() {
    let cases = [
        (
            demo(|a| a.project_name = None),
            "no project: set --os-project-name",
        ),
        (
            demo(|a| a.user_domain_name = None),
            "user \"demo\" needs its domain: --os-user-domain-name",
        ),
        (
            demo(|a| a.auth_type = Some("kerberos".into())),
            "unsupported auth type \"kerberos\": use password, v3applicationcredential or token",
        ),
        (
            demo(|a| a.auth_url = None),
            "no Keystone URL: set --os-auth-url or OS_AUTH_URL",
        ),
        (
            demo(|a| {
                a.application_credential_name = Some("mine".into());
                a.application_credential_secret = Some("s".into());
                a.username = None;
            }),
            "--os-application-credential-name needs its user",
        ),
    ];
    for (args, want) in cases {
        // Offline: had anything been sent, the error would be "cannot reach Keystone".
        let e = session_with(&args, &offline(), false, &bare()).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)), "{e:?}");
        starts(&e, want);
        assert_eq!(e.exit_code(), 2);
    }
}

/// A clouds.yaml with cloud `devstack` for demo, its password only in secure.yaml.
fn clouds_files(dir: &TempDir, password_in_clouds: &str) -> Paths {
    let (_, _, password) = User::Demo.credentials();
    let clouds = dir.write(
        "clouds.yaml",
        &format!(
            "clouds:\n  devstack:\n    auth:\n      auth_url: {}\n      username: demo\n      \
             password: {password_in_clouds}\n      project_name: demo\n      \
             user_domain_name: Default\n      project_domain_name: Default\n    \
             region_name: RegionOne\n    interface: public\n  other:\n    auth: {{}}\n",
            keystone()
        ),
    );
    let secure = dir.write(
        "secure.yaml",
        &format!("clouds:\n  devstack:\n    auth:\n      password: '{password}'\n"),
    );
    Paths {
        clouds: vec![dir.0.join("missing-clouds.yaml"), clouds],
        secure: vec![secure],
        cache_dir: None,
    }
}

fn cloud(name: &str) -> AuthArgs {
    AuthArgs {
        cloud: Some(name.into()),
        ..Default::default()
    }
}

#[test]
fn clouds_yaml_with_the_password_in_secure_yaml() {
    let dir = TempDir::new("clouds");
    let paths = clouds_files(&dir, "overridden-by-secure");
    let s = ok(&cloud("devstack"), &paths);
    assert_eq!(s.endpoint, api_v1());
    assert_eq!(validate(&s.token)["token"]["user"]["name"], "demo");
}

#[test]
fn an_unknown_cloud_is_a_usage_error_naming_the_files() {
    let dir = TempDir::new("nocloud");
    let paths = clouds_files(&dir, "x");
    let e = err(&cloud("nope"), &paths);
    assert!(matches!(e, CliError::Usage(_)), "{e:?}");
    let msg = e.to_string();
    let clouds = dir.0.join("clouds.yaml").display().to_string();
    starts(&msg, &format!("cloud \"nope\" not found in {clouds}"));
    assert!(msg.contains("clouds there: devstack, other"), "{msg}");
    assert!(msg.contains("missing-clouds.yaml"), "{msg}");

    let none = Paths {
        clouds: vec![dir.0.join("a/clouds.yaml")],
        secure: vec![dir.0.join("a/secure.yaml")],
        cache_dir: None,
    };
    let msg = err(&cloud("nope"), &none).to_string();
    starts(
        &msg,
        "cloud \"nope\" not found: there is no clouds.yaml (searched ",
    );
    assert!(
        msg.contains(&dir.0.join("a/secure.yaml").display().to_string()),
        "{msg}"
    );
}

#[test]
fn flags_override_clouds_yaml() {
    let dir = TempDir::new("override");
    let (_, _, password) = User::Demo.credentials();
    // clouds.yaml alone: the wrong password (no secure.yaml).
    let mut paths = clouds_files(&dir, "wrong-in-clouds");
    paths.secure.clear();
    starts(err(&cloud("devstack"), &paths), KEYSTONE_401);
    // --os-password wins over it.
    let args = cloud_with("devstack", |a| a.password = Some(password));
    assert_eq!(ok(&args, &paths).endpoint, api_v1());
    // And a wrong flag wins over a right file.
    let paths = clouds_files(&dir, "wrong-in-clouds");
    let args = cloud_with("devstack", |a| a.password = Some("wrong-flag".into()));
    starts(err(&args, &paths), KEYSTONE_401);
    // --os-region-name too: the cloud's RegionOne is replaced.
    let args = cloud_with("devstack", |a| a.region_name = Some("Elsewhere".into()));
    let e = err(&args, &paths).to_string();
    assert!(e.contains("(interface public, region Elsewhere)"), "{e}");
}

#[test]
fn a_token_is_reused_from_a_private_cache_until_the_password_changes() {
    let dir = TempDir::new("cache");
    let paths = with_cache(&dir);
    let args = password_args(User::Demo);
    let first = ok(&args, &paths);
    let files = cache_files(&dir.cache());
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let name = file.file_name().unwrap().to_str().unwrap();
    starts(name, "token-");
    assert!(name.ends_with(".json"), "{name}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(file), 0o600);
    assert_eq!(mode(&dir.cache()), 0o700);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains(args.password.as_deref().unwrap()), "{text}");

    // Offline: only the cache can answer.
    let again = session_with(&args, &offline(), false, &paths).unwrap();
    assert_eq!(again.token, first.token);
    assert_eq!(again.endpoint, api_v1());
    // --endpoint still wins over the cached endpoint.
    let elsewhere = demo(|a| a.endpoint = Some("http://capsule.example:9517/".into()));
    let s = session_with(&elsewhere, &offline(), false, &paths).unwrap();
    assert_eq!(s.token, first.token);
    assert_eq!(s.endpoint, "http://capsule.example:9517/v1");

    // Another password is another entry: Keystone is asked, and refuses.
    let wrong = demo(|a| a.password = Some("changed".into()));
    starts(err(&wrong, &paths), KEYSTONE_401);
    // Another project is another entry too.
    let alt = password_args(User::AltDemo);
    assert_ne!(ok(&alt, &paths).token, first.token);
    assert_eq!(cache_files(&dir.cache()).len(), 2);

    // forget() drops the entry (the API refused the token): Keystone must be asked again.
    forget_with(&args, &paths);
    assert!(!file.exists());
    let e = session_with(&args, &offline(), false, &paths).unwrap_err();
    starts(e, "cannot reach Keystone at ");
}

#[test]
fn a_corrupt_or_expiring_cache_file_is_replaced() {
    let dir = TempDir::new("corrupt");
    let paths = with_cache(&dir);
    let args = password_args(User::Demo);
    ok(&args, &paths);
    let file = cache_files(&dir.cache()).remove(0);

    std::fs::write(&file, "{not json").unwrap();
    let s = ok(&args, &paths);
    let entry: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(entry["token"], s.token.as_str());
    assert_eq!(entry["endpoint"], api_v1().as_str());

    // A token with 30 s left is not reused; one with an hour left is (even a planted one).
    let planted = |token: &str, secs: i64| {
        let expires = chrono::Utc::now() + chrono::Duration::seconds(secs);
        let e = json!({"token": token, "expires_at": expires.to_rfc3339(), "endpoint": api_v1()});
        std::fs::write(&file, e.to_string()).unwrap();
    };
    planted("nearly-expired", 30);
    let s = ok(&args, &paths);
    assert_ne!(s.token, "nearly-expired");
    validate(&s.token);
    planted("planted", 3600);
    let s = session_with(&args, &offline(), false, &paths).unwrap();
    assert_eq!(s.token, "planted");
}

/// An application credential of demo's, deleted when dropped.
struct AppCred {
    user_id: String,
    id: String,
    name: String,
    secret: String,
    token: String,
}

impl AppCred {
    fn create() -> Self {
        let demo = ok(&password_args(User::Demo), &bare());
        let user_id = validate(&demo.token)["token"]["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let name = unique_name("capsule-auth-test");
        let resp = http()
            .post(format!(
                "{}/users/{user_id}/application_credentials",
                keystone()
            ))
            .header("X-Auth-Token", &demo.token)
            .json(&json!({"application_credential": {
                "name": name, "description": "capsule-cli tests/auth.rs"
            }}))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "create application credential");
        let v: Value = resp.json().unwrap();
        let ac = &v["application_credential"];
        Self {
            user_id,
            id: ac["id"].as_str().unwrap().to_owned(),
            name,
            secret: ac["secret"].as_str().unwrap().to_owned(),
            token: demo.token,
        }
    }
}

impl Drop for AppCred {
    fn drop(&mut self) {
        let _ = http()
            .delete(format!(
                "{}/users/{}/application_credentials/{}",
                keystone(),
                self.user_id,
                self.id
            ))
            .header("X-Auth-Token", &self.token)
            .send();
    }
}

#[test]
fn an_application_credential_authenticates_by_id_or_by_name_and_user() {
    let ac = AppCred::create();
    // By id and secret; the project is the credential's (a stray project domain is ignored).
    let by_id = AuthArgs {
        auth_url: Some(keystone()),
        application_credential_id: Some(ac.id.clone()),
        application_credential_secret: Some(ac.secret.clone()),
        project_domain_name: Some("Default".into()),
        ..Default::default()
    };
    let s = ok(&by_id, &bare());
    assert_eq!(s.endpoint, api_v1());
    let v = validate(&s.token);
    assert_eq!(v["token"]["project"]["name"], "demo");
    assert_eq!(v["token"]["methods"], json!(["application_credential"]));

    // By name, secret and user, with the auth type spelled out.
    let by_name = AuthArgs {
        auth_url: Some(keystone()),
        auth_type: Some("v3applicationcredential".into()),
        application_credential_name: Some(ac.name.clone()),
        application_credential_secret: Some(ac.secret.clone()),
        username: Some("demo".into()),
        user_domain_name: Some("Default".into()),
        ..Default::default()
    };
    assert_eq!(ok(&by_name, &bare()).endpoint, api_v1());

    let wrong = AuthArgs {
        application_credential_secret: Some("not-the-secret".into()),
        ..by_id
    };
    let e = err(&wrong, &bare());
    assert!(matches!(e, CliError::Auth(_)), "{e:?}");
    starts(&e, KEYSTONE_401);
}

#[test]
fn a_token_with_an_endpoint_skips_keystone() {
    let args = AuthArgs {
        auth_url: Some("http://keystone.invalid:1/v3".into()),
        token: Some("a-token-as-it-is".into()),
        endpoint: Some("http://127.0.0.1:9517/".into()),
        ..Default::default()
    };
    // Offline, and the auth URL does not resolve: Keystone cannot have been asked.
    let s = session_with(&args, &offline(), false, &bare()).unwrap();
    assert_eq!(s.token, "a-token-as-it-is");
    assert_eq!(s.endpoint, "http://127.0.0.1:9517/v1");
    let already = AuthArgs {
        endpoint: Some("http://127.0.0.1:9517/v1/".into()),
        auth_url: None,
        ..args
    };
    let s = session_with(&already, &offline(), false, &bare()).unwrap();
    assert_eq!(s.endpoint, "http://127.0.0.1:9517/v1");
}

#[test]
fn a_token_without_an_endpoint_is_rescoped_for_the_catalog() {
    let demo = ok(&password_args(User::Demo), &bare());
    let args = AuthArgs {
        auth_url: Some(keystone()),
        token: Some(demo.token.clone()),
        project_name: Some("demo".into()),
        project_domain_name: Some("Default".into()),
        ..Default::default()
    };
    let s = ok(&args, &bare());
    assert_eq!(s.endpoint, api_v1());
    assert_eq!(validate(&s.token)["token"]["project"]["name"], "demo");

    let bogus = AuthArgs {
        token: Some("gAAAAA-not-a-token".into()),
        ..args
    };
    let e = err(&bogus, &bare());
    assert!(matches!(e, CliError::Auth(_)), "{e:?}");
    assert!(e.to_string().contains("(HTTP 40"), "{e}");
}

#[test]
fn debug_shows_the_keystone_request_without_secrets() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_capsule"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("CAPSULE_NO_TOKEN_CACHE", "1")
        .args([
            "--debug",
            "--os-auth-url",
            &keystone(),
            "--os-username=demo",
        ])
        .args(["--os-user-domain-name=Default", "--os-project-name=demo"])
        .args([
            "--os-project-domain-name=Default",
            "--os-password=debug-wrong-pw",
        ])
        .arg("capsule-list")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("REQ: POST {}/auth/tokens", keystone())),
        "{err}"
    );
    assert!(err.contains(r#""password":"***""#), "{err}");
    assert!(err.contains("RESP: [401]"), "{err}");
    assert!(err.contains(&format!("ERROR: {KEYSTONE_401}")), "{err}");
    assert!(!err.contains("debug-wrong-pw"), "{err}");
}
