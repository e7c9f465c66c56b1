//! Fixtures of `tenancy.rs`: the real clients driven by one command line, guards for volumes,
//! groups and rules, what demo makes for the isolation and reader tests, checks collected so
//! that one run reports every failed expectation, and the stack's APIs over raw HTTP.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempest::{
    api_url, env, examples_dir, openstack, unique_name, wait_status, zun, CapsuleGuard, Run,
    TemplateFile, User,
};

/// Bound of every wait for a capsule or a deletion.
pub const LONG: Duration = Duration::from_secs(120);

/// Runs `cmd` (split at spaces; no argument here has one) as `user`: with `zun` if it starts
/// with `zun `, else with `openstack`.
pub fn cli(user: User, cmd: &str) -> Run {
    let args: Vec<&str> = cmd.split_whitespace().collect();
    match args.split_first() {
        Some((&"zun", rest)) => zun(user, rest),
        _ => openstack(user, &args),
    }
}

/// The `id` of what `cmd ... -f json` made.
pub fn made(user: User, cmd: &str) -> String {
    let r = cli(user, &format!("{cmd} -f json")).ok();
    r.json()["id"].as_str().expect("an id").to_owned()
}

/// Runs `cmd` as `user` until it succeeds or fails other than with `transient` (a capsule still
/// holds the thing), for at most [`LONG`].
fn delete_retrying(user: User, cmd: &str, transient: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let r = cli(user, cmd);
        if r.code == Some(0) || !r.stderr.contains(transient) || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Deletes a volume (id or name) when dropped, once no capsule holds it.
pub struct VolumeGuard(pub User, pub String);

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        let cmd = format!("volume delete {}", self.1);
        delete_retrying(self.0, &cmd, "Volume status must be");
    }
}

/// Deletes a security group (id or name) when dropped, once no capsule uses it.
pub struct GroupGuard(pub User, pub String);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let cmd = format!("security group delete {}", self.1);
        delete_retrying(self.0, &cmd, "in use");
    }
}

/// Deletes a security group rule when dropped.
pub struct RuleGuard(pub User, pub String);

impl Drop for RuleGuard {
    fn drop(&mut self) {
        let _ = cli(self.0, &format!("security group rule delete {}", self.1));
    }
}

/// Deletes capsule `name` of `owner` when dropped.
pub fn capsule_guard(owner: User, name: &str) -> CapsuleGuard {
    let name = name.to_owned();
    CapsuleGuard { name, owner }
}

/// Starts creating, as `user`, a busybox capsule running `script` (`examples/minimal.yaml`),
/// changed by `edit`; does not wait.
pub fn create(
    user: User,
    prefix: &str,
    script: &str,
    edit: impl FnOnce(&mut Value),
) -> CapsuleGuard {
    let name = unique_name(prefix);
    let file = TemplateFile::edited(&examples_dir().join("minimal.yaml"), &name, |v| {
        v["spec"]["containers"][0]["command"] = json!(["sh", "-c", script]);
        edit(v);
    });
    zun(user, &["capsule-create", "-f", file.arg()]).ok();
    CapsuleGuard { name, owner: user }
}

/// Waits until the capsule is running; returns it, its uuid and its first container's
/// (`containers` holds objects, or Python-style dict strings, depending on the client).
pub fn running(g: &CapsuleGuard) -> (Value, String, String) {
    let capsule = wait_status(g.owner, &g.name, "Running", LONG);
    let uuid = capsule["uuid"].as_str().expect("a uuid").to_owned();
    let container = match capsule["containers"][0]["uuid"].as_str() {
        Some(id) => id.to_owned(),
        None => {
            let text = capsule["containers"].to_string();
            let at = text.find("'uuid': '").expect("a container uuid") + "'uuid': '".len();
            text[at..at + 36].to_owned()
        }
    };
    (capsule, uuid, container)
}

/// The logs of `container` (as `user`) once a line of them is `last`.
pub fn logs_until(user: User, container: &str, last: &str) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        let logs = zun(user, &["logs", container]).ok().stdout;
        if logs.lines().any(|l| l.trim() == last) {
            return logs;
        }
        let late = Instant::now() > deadline;
        assert!(!late, "{container} never printed {last}: {logs}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Failed expectations, collected so that one run reports all of them.
#[derive(Default)]
pub struct Checks(Vec<String>);

impl Checks {
    /// Records `what` unless `ok`.
    pub fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// Expects `method url` (with `body`) made as `s` to get `status`.
    pub fn want(
        &mut self,
        s: &Session<'_>,
        status: u16,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) {
        let r = s.raw.call(method, url, &s.token, body);
        let who = s.who;
        let ok = r.status == status;
        self.expect(ok, || {
            format!("{who} {method} {url}: want {status}, got {r:?}")
        });
    }

    /// Panics with every failed expectation, if any.
    #[track_caller]
    pub fn done(self, test: &str) {
        let n = self.0.len();
        assert!(n == 0, "{test}: {n} failed:\n- {}", self.0.join("\n- "));
    }
}

/// A client refused with a 404 (or with the client's "no such" after its name lookup).
pub fn not_found(r: &Run) -> bool {
    let text = format!("{}\n{}", r.stdout, r.stderr).to_lowercase();
    let marks = [
        "404",
        "not found",
        "could not be found",
        "no volume with",
        "found for",
    ];
    r.code != Some(0) && marks.iter().any(|m| text.contains(m))
}

/// A client refused by policy rule `rule` (Zun's and Cinder's message, or Neutron's).
pub fn policy_refused(r: &Run, rule: &str) -> bool {
    let text = format!("{}\n{}", r.stdout, r.stderr);
    let zun = format!("Policy doesn't allow {rule} to be performed");
    let neutron = format!("rule:{rule} is disallowed by policy");
    r.code != Some(0) && (text.contains(&zun) || text.contains(&neutron))
}

/// What demo makes for the isolation and reader tests: a running capsule, a volume, a group
/// with a rule; their ids. The guards delete them in order, the capsule first.
pub struct DemoThings {
    _guards: (CapsuleGuard, RuleGuard, VolumeGuard, GroupGuard),
    /// Capsule uuid.
    pub u: String,
    /// Capsule name.
    pub n: String,
    /// Its container's uuid.
    pub container: String,
    /// Volume id.
    pub v: String,
    /// Group id.
    pub g: String,
    /// Rule id.
    pub rule: String,
}

impl DemoThings {
    /// Makes them.
    pub fn new(prefix: &str) -> Self {
        let user = User::Demo;
        let capsule = create(user, prefix, "exec sleep infinity", |_| {});
        let n = capsule.name.clone();
        let v = made(user, &format!("volume create --size 1 {n}"));
        let volume = VolumeGuard(user, v.clone());
        let g = made(user, &format!("security group create {n}"));
        let group = GroupGuard(user, g.clone());
        let rule = format!("security group rule create {g} --protocol tcp --dst-port 9000:9001");
        let rule = made(user, &format!("{rule} --remote-ip 10.0.0.0/8"));
        let guards = (capsule, RuleGuard(user, rule.clone()), volume, group);
        let (_, u, container) = running(&guards.0);
        let _guards = guards;
        Self {
            _guards,
            u,
            n,
            container,
            v,
            g,
            rule,
        }
    }

    /// Whether `text` names any of them.
    pub fn named_in(&self, text: &str) -> bool {
        let ids = [&self.u, &self.v, &self.g, &self.rule];
        ids.iter().any(|id| text.contains(id.as_str()))
    }

    /// Demo still has all of it, unchanged.
    pub fn check_intact(&self, c: &mut Checks) {
        let (u, v, g) = (&self.u, &self.v, &self.g);
        let r = cli(User::Demo, &format!("capsule show {u} -f json"));
        let ok = r.code == Some(0) && r.json()["status"] == "Running";
        c.expect(ok, || format!("demo's capsule is not intact: {r:?}"));
        let r = cli(User::Demo, &format!("volume show {v} -f json"));
        let ok = r.code == Some(0) && !r.stdout.contains("stolen");
        c.expect(ok, || format!("demo's volume is not intact: {r:?}"));
        let r = cli(User::Demo, &format!("security group show {g} -f json"));
        let ok = r.code == Some(0) && !r.stdout.contains("stolen");
        let ok = ok && r.stdout.contains(&self.rule);
        c.expect(ok, || format!("demo's group or rule is not intact: {r:?}"));
    }
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
}

/// The stack's APIs over HTTP with users' Keystone tokens, outside the clients.
pub struct Raw {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

/// A user's token, for [`Checks::want`].
pub struct Session<'a> {
    raw: &'a Raw,
    who: &'static str,
    /// The token.
    pub token: String,
    /// The token's project.
    pub project: String,
}

impl Raw {
    /// A client with a runtime of its own.
    pub fn new() -> Self {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        let http = reqwest::Client::builder().timeout(LONG).build();
        let http = http.expect("an HTTP client");
        Self { rt, http }
    }

    /// A project-scoped token of `user` and its project's id (Keystone's own view of it).
    pub fn login(&self, user: User, who: &'static str) -> Session<'_> {
        let token = self.rt.block_on(tempest::token(user));
        let url = format!("{}/auth/tokens?nocatalog", env("ZUN_TEST_KEYSTONE_URL"));
        let r = self.request("GET", &url, &token);
        let r = self.send(r.header("X-Subject-Token", &token));
        assert_eq!(r.status, 200, "validate own token: {}", r.body);
        let body: Value = serde_json::from_str(&r.body).expect("token JSON");
        let project = body["token"]["project"]["id"].as_str().expect("project id");
        let project = project.to_owned();
        let raw = self;
        Session {
            raw,
            who,
            token,
            project,
        }
    }

    /// `method url` with `token` (and zun-api's newest microversion for zun-api).
    pub fn request(&self, method: &str, url: &str, token: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let r = self.http.request(method, url).header("X-Auth-Token", token);
        match url.starts_with(&api_url()) {
            true => r.header("OpenStack-API-Version", "container latest"),
            false => r,
        }
    }

    /// Sends `r`.
    pub fn send(&self, r: reqwest::RequestBuilder) -> Reply {
        self.rt.block_on(async {
            let resp = r.send().await.expect("the API answers");
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            Reply { status, body }
        })
    }

    /// `method url` with `token` and, if any, a JSON `body`.
    pub fn call(&self, method: &str, url: &str, token: &str, body: Option<Value>) -> Reply {
        let r = self.request(method, url, token);
        self.send(match body {
            Some(b) => r.json(&b),
            None => r,
        })
    }
}

/// A network API URL.
pub fn net_url(path: &str) -> String {
    format!("{}/v2.0{path}", env("ZUN_TEST_NETWORK_API_URL"))
}

/// A block-storage URL, with `project` in it unless empty.
pub fn vol_url(project: &str, path: &str) -> String {
    let base = env("ZUN_TEST_VOLUME_API_URL");
    match project {
        "" => format!("{base}/v3{path}"),
        p => format!("{base}/v3/{p}{path}"),
    }
}

/// A zun-api URL.
pub fn zun_url(path: &str) -> String {
    format!("{}/v1{path}", api_url())
}

/// A capsule create body: busybox `sleep infinity` named `name`, changed by `edit`.
pub fn capsule_body(name: &str, edit: impl FnOnce(&mut Value)) -> Option<Value> {
    let mut t = json!({"kind": "capsule", "metadata": {"name": name}, "spec": {"containers": [
        {"name": "main", "image": "busybox", "command": ["sleep", "infinity"]}]}});
    edit(&mut t);
    Some(json!({ "template": t }))
}

/// Mounts volume `id` in the template's first container.
pub fn mount_volume(t: &mut Value, id: &str) {
    t["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    t["spec"]["volumes"] = json!([{"name": "data", "cinder": {"volumeID": id}}]);
}

/// `{kind: fields}`: a create or an update body.
pub fn body(kind: &str, fields: Value) -> Option<Value> {
    let mut m = serde_json::Map::new();
    m.insert(kind.to_owned(), fields);
    Some(Value::Object(m))
}

/// A rule create body for group `group` (tcp `port`), with remote group `remote` if given.
pub fn rule_body(group: &str, port: u16, remote: Option<&str>) -> Option<Value> {
    let mut r = json!({"security_group_id": group, "direction": "ingress", "ethertype": "IPv4",
        "protocol": "tcp", "port_range_min": port, "port_range_max": port});
    if let Some(remote) = remote {
        r["remote_group_id"] = json!(remote);
    }
    body("security_group_rule", r)
}
