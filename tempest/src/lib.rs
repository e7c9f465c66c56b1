//! End-to-end fixtures against a running capsule stack (`devstack/stack.sh`): the users
//! devstack creates, the real `zun` and `openstack` commands run as them, Keystone tokens, and
//! guards that delete what a test created even when it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use test_support::wait;

/// test-support's, here too because tempest's tests use them with the fixtures below: the
/// devstack environment reader, free ports and the host-leftover checks.
pub use test_support::{env, free_port, host_leftovers, volume_leftovers};

/// A user devstack creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// `admin` in project `admin`, role admin.
    Admin,
    /// `demo` in project `demo`, role member.
    Demo,
    /// `demo-reader` in project `demo`, role reader.
    Reader,
    /// `alt_demo` in project `alt_demo`, role member.
    AltDemo,
}

impl User {
    /// `(user name, project name, password)`.
    pub fn credentials(self) -> (&'static str, &'static str, String) {
        match self {
            User::Admin => ("admin", "admin", env("ZUN_TEST_ADMIN_PASSWORD")),
            User::Demo => ("demo", "demo", env("ZUN_TEST_DEMO_PASSWORD")),
            User::Reader => ("demo-reader", "demo", env("ZUN_TEST_READER_PASSWORD")),
            User::AltDemo => ("alt_demo", "alt_demo", env("ZUN_TEST_ALT_DEMO_PASSWORD")),
        }
    }
}

/// The result of a command: exit status and both outputs as text.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "command failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as JSON (`-f json`).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// The client `program` of the clients' venv, with `user`'s credentials in `OS_*` and no
/// other environment, ready for arguments.
pub fn client_command(program: &str, user: User) -> Command {
    let bin = PathBuf::from(env("ZUN_TEST_CLIENTS_BIN")).join(program);
    let (name, project, password) = user.credentials();
    let mut cmd = Command::new(&bin);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", std::env::temp_dir())
        .env("OS_AUTH_URL", env("ZUN_TEST_KEYSTONE_URL"))
        .env("OS_IDENTITY_API_VERSION", "3")
        .env("OS_AUTH_TYPE", "password")
        .env("OS_USERNAME", name)
        .env("OS_PASSWORD", password)
        .env("OS_PROJECT_NAME", project)
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_DOMAIN_NAME", "Default")
        .env("OS_REGION_NAME", "RegionOne");
    cmd
}

fn client(program: &str, user: User, args: &[&str]) -> Run {
    let out = client_command(program, user)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run::from(out)
}

/// Runs python-zunclient's `zun` as `user`.
pub fn zun(user: User, args: &[&str]) -> Run {
    client("zun", user, args)
}

/// Runs `openstack` as `user`.
pub fn openstack(user: User, args: &[&str]) -> Run {
    client("openstack", user, args)
}

/// The base URL of the running zun-api.
pub fn api_url() -> String {
    env("ZUN_TEST_API_URL")
}

/// A project-scoped Keystone token of `user`.
pub async fn token(user: User) -> String {
    let (name, project, password) = user.credentials();
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/auth/tokens?nocatalog",
            env("ZUN_TEST_KEYSTONE_URL")
        ))
        .json(&body)
        .send()
        .await
        .expect("Keystone answers");
    assert_eq!(resp.status().as_u16(), 201, "token for {name}");
    resp.headers()["x-subject-token"]
        .to_str()
        .expect("token is ASCII")
        .to_owned()
}

/// Waits until `openstack capsule show NAME` (as `user`) says `want`; returns the capsule.
pub fn wait_status(user: User, name: &str, want: &str, within: std::time::Duration) -> Value {
    wait_capsule(user, name, &format!("reached {want}"), within, |c| {
        c["status"] == want
    })
}

/// Polls `openstack capsule show NAME -f json` as `user` until `pred` holds for it; returns
/// it. Panics with the last one seen (or the last error) after `within`.
pub fn wait_capsule(
    user: User,
    name: &str,
    what: &str,
    within: std::time::Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    wait::until(within, std::time::Duration::from_millis(500), || {
        let r = openstack(user, &["capsule", "show", name, "-f", "json"]);
        if r.code != Some(0) {
            return Err(format!("capsule {name} not shown: {}", r.stderr));
        }
        let c = r.json();
        if pred(&c) {
            Ok(c)
        } else {
            Err(format!("capsule {name} never {what}: {c}"))
        }
    })
}

/// Waits until `openstack capsule show NAME` says it is gone (404) for `user`.
pub fn wait_gone(user: User, name: &str, within: std::time::Duration) {
    wait::until(within, std::time::Duration::from_millis(250), || {
        let r = openstack(user, &["capsule", "show", name, "-f", "json"]);
        if r.code != Some(0) && r.stderr.contains("404") {
            Ok(())
        } else {
            Err(format!(
                "capsule {name} still there: {} {}",
                r.stdout, r.stderr
            ))
        }
    })
}

/// The repository's `examples/` directory.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A unique capsule name for one test.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A template file written from `template` with its `metadata.name` set to `name`; removed
/// when dropped.
pub struct TemplateFile {
    /// Where it is.
    pub path: PathBuf,
}

impl TemplateFile {
    /// Writes `template` (YAML) renamed to `name`.
    pub fn renamed(template: &Path, name: &str) -> Self {
        let text = std::fs::read_to_string(template).expect("read template");
        let mut v: Value = serde_yaml::from_str(&text).expect("template is YAML");
        v["metadata"]["name"] = Value::String(name.to_owned());
        let path = std::env::temp_dir().join(format!("{name}.yaml"));
        std::fs::write(&path, serde_yaml::to_string(&v).expect("to YAML")).expect("write");
        Self { path }
    }

    /// Writes `template` (YAML) renamed to `name` and changed by `edit`.
    pub fn edited(template: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> Self {
        let f = Self::renamed(template, name);
        let text = std::fs::read_to_string(&f.path).expect("read template");
        let mut v: Value = serde_yaml::from_str(&text).expect("template is YAML");
        edit(&mut v);
        std::fs::write(&f.path, serde_yaml::to_string(&v).expect("to YAML")).expect("write");
        f
    }

    /// The path as a string.
    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap_or_default()
    }
}

impl Drop for TemplateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Deletes the capsule `name` of `owner` when dropped, so a failing test leaves nothing.
pub struct CapsuleGuard {
    /// Capsule name.
    pub name: String,
    /// Who created it.
    pub owner: User,
}

impl Drop for CapsuleGuard {
    fn drop(&mut self) {
        // Already deleted by the test is fine: the command then fails and we ignore it.
        let _ = zun(self.owner, &["capsule-delete", &self.name]);
    }
}
