//! Faults in the middle of 100 real-pod creates and deletes: `kill -9` of zun-compute, a
//! RabbitMQ restart and a zun-api restart. The workload acts as a careful user: a call that did
//! not get through is retried, but a create whose answer was lost is looked up by its (unique)
//! name before it is sent again. Afterwards every capsule whose create was accepted ran and is
//! gone, none was made twice or lost, the outbox is empty and the host holds nothing of any of
//! them: no network namespace, veth, firewall rule or chain, cgroup, mount, loop device, state
//! directory or shim. Needs root and a running devstack (containerd, registry, rabbitmq-server).
//!
//! The scenarios run side by side (as many as the test harness runs at once), each with its own
//! broker, API, database and pod host on its own bridge, subnet and firewall table.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::pod::PodHost;
use e2e::{Stack, ADMIN};
use serde_json::{json, Value};
use tokio::sync::watch;

/// Capsules each scenario creates and deletes.
const CAPSULES: usize = 100;
/// Capsules under way at once.
const IN_FLIGHT: usize = 8;
/// The fault comes once this many creates were sent.
const FAULT_AT: usize = 40;
/// How long one capsule may take to reach Running, or to go after its delete.
const STEP: Duration = Duration::from_secs(120);
/// How long the whole workload may take (a stuck product must not hang the suite).
const WORKLOAD: Duration = Duration::from_secs(400);
/// How long the host may take to converge once the workload is done (orphan clean-up runs
/// with heartbeats and reconciliation).
const SETTLE: Duration = Duration::from_secs(30);
/// Pause between tries of a call that did not get through, and between polls.
const PAUSE: Duration = Duration::from_millis(200);

/// Host ports handed out in this process, so no two capsules of any scenario share one.
static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL of zun-compute, started again 2 s later.
    KillCompute,
    /// RabbitMQ stopped and started again.
    RestartBroker,
    /// zun-api (and its conductor) killed and started again on the same port.
    RestartApi,
}

impl Fault {
    fn host(self) -> &'static str {
        match self {
            Fault::KillCompute => "fault-kill9",
            Fault::RestartBroker => "fault-rabbit",
            Fault::RestartApi => "fault-api",
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_zun_compute_during_100_creates_and_deletes_loses_and_leaves_nothing() {
    scenario(Fault::KillCompute).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restart_during_100_creates_and_deletes_loses_and_leaves_nothing() {
    scenario(Fault::RestartBroker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zun_api_restart_during_100_creates_and_deletes_loses_and_leaves_nothing() {
    scenario(Fault::RestartApi).await;
}

/// A host port no other capsule of this process was given, free now for TCP and UDP, and
/// below the kernel's ephemeral range (20000..32000): a port from that range can be taken as
/// the local port of any outgoing connection before its capsule is made, and the host rightly
/// refuses to publish a port in use.
fn unique_port() -> u16 {
    const FIRST: u16 = 20000;
    const SPAN: u16 = 12000;
    let mut given = PORTS.lock().unwrap_or_else(|p| p.into_inner());
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(SPAN)) as u16;
    (0..SPAN)
        .map(|k| FIRST + (start + k) % SPAN)
        .find(|&p| {
            !given.contains(&p)
                && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
                && std::net::UdpSocket::bind(("0.0.0.0", p)).is_ok()
        })
        .inspect(|&p| {
            given.insert(p);
        })
        .expect("a free host port in 20000..32000")
}

/// A one-container busybox pod; the image is cached (`IfNotPresent`, which only admins may ask
/// for), and the pod publishes `port` when given, so the DNAT rules are made and removed too.
fn template(name: &str, port: Option<u16>) -> Value {
    let mut c = json!({"image": "busybox", "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", "3600"]});
    if let Some(p) = port {
        c["ports"] = json!([{"containerPort": 8080, "hostPort": p}]);
    }
    json!({"kind": "capsule", "metadata": {"name": name}, "spec": {"containers": [c]}})
}

/// What became of one call.
enum Outcome {
    /// The API answered.
    Answer(u16, Value),
    /// No connection: the request was never sent.
    NotSent(String),
    /// Sent, but the answer was lost: the request may or may not have been carried out.
    Lost(String),
}

/// The error with its causes.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The API as the workload's user sees it (admin, so it may keep the image cached).
#[derive(Clone)]
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Outcome {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-user-id", ADMIN.0)
            .header("x-project-id", ADMIN.1)
            .header("x-roles", ADMIN.2)
            .header("openstack-api-version", "container 1.40");
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(b) => {
                        Outcome::Answer(status, serde_json::from_slice(&b).unwrap_or_default())
                    }
                    Err(e) => Outcome::Lost(chain(&e)),
                }
            }
            Err(e) if e.is_connect() => Outcome::NotSent(chain(&e)),
            Err(e) => Outcome::Lost(chain(&e)),
        }
    }

    /// A call that may be repeated (GET, DELETE), tried until the API answers; whether an
    /// earlier try's answer was lost comes with the answer.
    async fn retried(
        &self,
        method: reqwest::Method,
        path: &str,
        until: Instant,
        notes: &mut Vec<String>,
    ) -> Result<(u16, Value, bool), String> {
        let mut lost = false;
        loop {
            match self.send(method.clone(), path, None).await {
                Outcome::Answer(s, v) => return Ok((s, v, lost)),
                Outcome::NotSent(e) => {
                    if notes.last().is_none_or(|n| !n.starts_with("not sent")) {
                        notes.push(format!("not sent ({method} {path}): {e}"));
                    }
                }
                Outcome::Lost(e) => {
                    lost = true;
                    notes.push(format!("answer lost ({method} {path}): {e}"));
                }
            }
            if Instant::now() > until {
                return Err(format!("{method} {path}: no answer; {notes:?}"));
            }
            tokio::time::sleep(PAUSE).await;
        }
    }

    /// The uuids of the capsules named `name`, in every project.
    async fn named(
        &self,
        name: &str,
        until: Instant,
        notes: &mut Vec<String>,
    ) -> Result<Vec<String>, String> {
        let (s, v, _) = self
            .retried(
                reqwest::Method::GET,
                "/v1/capsules?all_projects=1",
                until,
                notes,
            )
            .await?;
        if s != 200 {
            return Err(format!("list of capsules answered {s}: {v}"));
        }
        Ok(v["capsules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["name"] == name)
            .filter_map(|c| c["uuid"].as_str().map(str::to_owned))
            .collect())
    }
}

/// One capsule's life in the workload.
#[derive(Debug)]
struct Life {
    name: String,
    uuid: Option<String>,
    /// Calls that did not get through, answers lost and how they were made good.
    notes: Vec<String>,
    /// Which step failed, and how.
    failure: Option<String>,
}

/// Where each capsule under way is, for the report of what the fault hit.
type Phases = Arc<Mutex<BTreeMap<usize, &'static str>>>;

fn phase(phases: &Phases, i: usize, p: Option<&'static str>) {
    let mut m = phases.lock().unwrap_or_else(|p| p.into_inner());
    match p {
        Some(p) => m.insert(i, p),
        None => m.remove(&i),
    };
}

/// Creates capsule `name`, waits until it runs, deletes it and waits until it is gone.
async fn life(api: Api, i: usize, name: String, publish: bool, phases: Phases) -> Life {
    let mut life = Life {
        name,
        uuid: None,
        notes: Vec::new(),
        failure: None,
    };
    let port = publish.then(unique_port);
    if let Err(e) = live(&api, i, &mut life, port, &phases).await {
        life.failure = Some(format!(
            "capsule {} (uuid {}): {e}",
            life.name,
            life.uuid.as_deref().unwrap_or("none")
        ));
    }
    phase(&phases, i, None);
    life
}

async fn live(
    api: &Api,
    i: usize,
    life: &mut Life,
    port: Option<u16>,
    phases: &Phases,
) -> Result<(), String> {
    use reqwest::Method;
    phase(phases, i, Some("create"));
    let uuid = create(api, life, port).await?;
    life.uuid = Some(uuid.clone());
    phase(phases, i, Some("wait for Running"));
    let path = format!("/v1/capsules/{uuid}");
    let until = Instant::now() + STEP;
    loop {
        let (s, v, _) = api
            .retried(Method::GET, &path, until, &mut life.notes)
            .await
            .map_err(|e| format!("step Running: {e}"))?;
        match s {
            200 if v["status"] == "Running" => break,
            404 => {
                return Err(format!(
                    "step Running: accepted (202) but gone before it ran (lost): {v}"
                ))
            }
            200 if Instant::now() > until => {
                return Err(format!("step Running: never Running; last: {v}"));
            }
            200 => {}
            _ => return Err(format!("step Running: GET answered {s}: {v}")),
        }
        tokio::time::sleep(PAUSE).await;
    }
    phase(phases, i, Some("delete"));
    let until = Instant::now() + STEP;
    let (s, v, lost) = api
        .retried(Method::DELETE, &path, until, &mut life.notes)
        .await
        .map_err(|e| format!("step delete: {e}"))?;
    match s {
        204 => {}
        // An earlier DELETE went through but its answer was lost.
        404 if lost => life
            .notes
            .push("delete: 404 after a lost answer: it was carried out".into()),
        _ => return Err(format!("step delete: DELETE answered {s}: {v}")),
    }
    phase(phases, i, Some("wait until gone"));
    loop {
        let (s, v, _) = api
            .retried(Method::GET, &path, until, &mut life.notes)
            .await
            .map_err(|e| format!("step gone: {e}"))?;
        match s {
            404 => return Ok(()),
            // Only a failed delete ends a pending one: then the capsule stays.
            200 if v["status"] != "Deleting" => {
                return Err(format!(
                    "step gone: its delete ended, the capsule stays: {v}"
                ));
            }
            200 if Instant::now() > until => {
                return Err(format!("step gone: still there after its delete: {v}"));
            }
            200 => {}
            _ => return Err(format!("step gone: GET answered {s}: {v}")),
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Sends the create until it is answered, never twice for one capsule: a lost answer is
/// followed by a look-up of the name, and the create is sent again only if it finds nothing.
async fn create(api: &Api, life: &mut Life, port: Option<u16>) -> Result<String, String> {
    let body = json!({ "template": template(&life.name, port) });
    let until = Instant::now() + STEP;
    loop {
        match api
            .send(reqwest::Method::POST, "/v1/capsules", Some(&body))
            .await
        {
            Outcome::Answer(202, v) => {
                return v["uuid"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("step create: 202 without a uuid: {v}"));
            }
            Outcome::Answer(s, v) => return Err(format!("step create: answered {s}: {v}")),
            Outcome::NotSent(e) => {
                if life.notes.last().is_none_or(|n| !n.starts_with("not sent")) {
                    life.notes.push(format!("not sent (POST): {e}"));
                }
            }
            Outcome::Lost(e) => {
                life.notes.push(format!("answer lost (POST): {e}"));
                let found = api
                    .named(&life.name, until, &mut life.notes)
                    .await
                    .map_err(|e| format!("step create, look-up after a lost answer: {e}"))?;
                match found.as_slice() {
                    [] => life
                        .notes
                        .push("create: not found after a lost answer; sent again".into()),
                    [one] => {
                        life.notes
                            .push("create: found after a lost answer; not sent again".into());
                        return Ok(one.clone());
                    }
                    many => {
                        return Err(format!(
                            "step create: made {} times after a lost answer: {many:?}",
                            many.len()
                        ))
                    }
                }
            }
        }
        if Instant::now() > until {
            return Err(format!("step create: never answered; {:?}", life.notes));
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Runs the 100 lives, `IN_FLIGHT` at a time, telling `sent` how many were started. Stops
/// starting new ones after the first failure (the test fails anyway; less to clean up).
async fn workload(
    api: Api,
    prefix: &'static str,
    sent: watch::Sender<usize>,
    phases: Phases,
) -> Vec<Life> {
    let deadline = Instant::now() + WORKLOAD;
    let mut set = tokio::task::JoinSet::new();
    let mut lives = Vec::new();
    let mut failed = false;
    for i in 0..CAPSULES {
        while set.len() >= IN_FLIGHT {
            let l: Life = set
                .join_next()
                .await
                .expect("a capsule under way")
                .expect("capsule task panicked");
            failed |= l.failure.is_some();
            lives.push(l);
        }
        if failed || Instant::now() > deadline {
            break;
        }
        let name = format!("{prefix}-{i}");
        // Every other capsule publishes a port, chosen just before its create.
        let publish = i % 2 == 0;
        set.spawn(life(api.clone(), i, name, publish, phases.clone()));
        sent.send_replace(i + 1);
    }
    while let Some(l) = set.join_next().await {
        lives.push(l.expect("capsule task panicked"));
    }
    lives
}

/// Waits until `FAULT_AT` creates were sent and capsules are both being made and deleted,
/// then brings the fault; false if the workload ended first.
async fn inject(
    fault: Fault,
    stack: &mut Stack,
    host: &mut PodHost,
    mut sent: watch::Receiver<usize>,
    phases: Phases,
) -> bool {
    if sent.wait_for(|n| *n >= FAULT_AT).await.is_err() {
        return false;
    }
    // Strike while some capsules are being made and others deleted (the deletes are the
    // delicate part: a half-done teardown must still end with the capsule gone).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let both = {
            let m = phases.lock().unwrap_or_else(|p| p.into_inner());
            let has = |p: &str| m.values().any(|v| *v == p);
            has("wait until gone") && (has("create") || has("wait for Running"))
        };
        if both || Instant::now() > deadline {
            break;
        }
        if sent.has_changed().is_err() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let on_host = std::fs::read_dir(host.compute.state_dir.join("capsules"))
        .map(|d| d.count())
        .unwrap_or(0);
    let under_way: Vec<&str> = phases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .copied()
        .collect();
    let t = Instant::now();
    match fault {
        Fault::KillCompute => {
            host.compute.kill9();
            tokio::time::sleep(Duration::from_secs(2)).await;
            host.compute.restart();
        }
        Fault::RestartBroker => {
            let mut broker = stack.broker.take().expect("the stack's broker");
            let restarted = tokio::task::spawn_blocking(move || {
                broker.restart();
                broker
            });
            stack.broker = Some(restarted.await.expect("broker restart"));
        }
        Fault::RestartApi => stack.restart_api().await,
    }
    eprintln!(
        "{fault:?} on host {}: after {} creates sent, {on_host} capsules on the host, under \
         way: {under_way:?}; took {:.1} s",
        host.compute.host,
        *sent.borrow(),
        t.elapsed().as_secs_f64()
    );
    true
}

/// What is left on `host` that the workload made: per capsule (network namespace, cgroups,
/// mounts, netavark and security-group rules, state directory), and host-wide: capsule
/// directories, network namespaces, mounts under the state directory, veths on the bridge,
/// chains and elements in the security-group table, loop devices, shims.
fn host_leftovers(host: &PodHost, uuids: &[String]) -> Vec<String> {
    let mut left: Vec<String> = uuids
        .iter()
        .flat_map(|u| {
            host.leftovers(u)
                .into_iter()
                .map(move |l| format!("{u}: {l}"))
        })
        .collect();
    let state_dir = &host.compute.state_dir;
    for sub in ["capsules", "netns"] {
        for e in std::fs::read_dir(state_dir.join(sub)).into_iter().flatten() {
            left.push(format!(
                "{sub}/{}",
                e.map(|e| e.path().display().to_string())
                    .unwrap_or_default()
            ));
        }
    }
    let netns_dir = state_dir.join("netns");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(
        mounts
            .lines()
            .filter(|l| {
                l.split(' ')
                    .nth(4)
                    .map(Path::new)
                    .is_some_and(|m| m.starts_with(state_dir) && m != netns_dir)
            })
            .map(|l| format!("mount {l}")),
    );
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", &host.bridge])
        .output()
        .expect("run ip link");
    left.extend(
        String::from_utf8_lossy(&links.stdout)
            .lines()
            .map(|l| format!("link on {}: {l}", host.bridge)),
    );
    let table = std::process::Command::new("nft")
        .args(["list", "table", "inet", &host.table])
        .output()
        .expect("run nft");
    left.extend(
        String::from_utf8_lossy(&table.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("chain eg_")
                    || l.starts_with("chain in_")
                    || l.starts_with("elements")
            })
            .map(|l| format!("nft table {}: {l}", host.table)),
    );
    left.extend(host.volume_leftovers(&[]));
    left.extend(shims(state_dir));
    left
}

/// The shim processes (and anything they forked that did not exec) of capsules under
/// `state_dir`.
fn shims(state_dir: &Path) -> Vec<String> {
    let shim = e2e::bins::capsule_shim();
    let dirs: Vec<String> = [Some(state_dir.to_owned()), state_dir.canonicalize().ok()]
        .into_iter()
        .flatten()
        .map(|d| d.display().to_string())
        .collect();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a == shim)
            && args
                .iter()
                .any(|a| dirs.iter().any(|d| a.starts_with(d.as_str())))
        {
            found.push(format!("shim pid {pid}: {}", args.join(" ")));
        }
    }
    found
}

/// `text` without its terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The agent's log lines about `uuids` (and its restarts), for a failure message; the whole
/// log is kept in a file that outlives the test's state directory.
fn agent_log(host: &PodHost, uuids: &[&str]) -> String {
    let log = std::fs::read_to_string(host.compute.state_dir.join("agent.log")).unwrap_or_default();
    let log = strip_ansi(&log);
    let keep = std::env::temp_dir().join(format!(
        "faults-{}-{}.log",
        host.compute.host,
        std::process::id()
    ));
    let kept = match std::fs::write(&keep, &log) {
        Ok(()) => format!("whole agent log: {}", keep.display()),
        Err(e) => format!("agent log not kept: {e}"),
    };
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| uuids.iter().any(|u| l.contains(u)) || l.contains("zun-compute starting"))
        .collect();
    format!(
        "agent log of host {} about {uuids:?} ({kept}):\n{}",
        host.compute.host,
        lines.join("\n")
    )
}

async fn scenario(fault: Fault) {
    // The API runs in this process: its warnings and errors go with the test's output
    // (`ZUN_TEST_API_LOG` sets the filter).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("ZUN_TEST_API_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .with_ansi(false)
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    // Hosts stay up through the fault (a 3 s window would rightly declare a host dead while
    // its agent or the broker restarts, and fail the creates waiting for it).
    let mut stack = Stack::start_with(30).await;
    let mut host = PodHost::start(&stack, fault.host()).await;
    let scene = format!("{fault:?} on host {}", host.compute.host);
    let api = Api {
        base: stack.api.clone(),
        http: reqwest::Client::new(),
    };
    let phases = Phases::default();
    let (sent_tx, sent_rx) = watch::channel(0);
    let prefix = match fault {
        Fault::KillCompute => "kill9",
        Fault::RestartBroker => "rabbit",
        Fault::RestartApi => "api",
    };
    let (lives, injected) = tokio::join!(
        workload(api, prefix, sent_tx, phases.clone()),
        inject(fault, &mut stack, &mut host, sent_rx, phases)
    );

    // Every life went through: created once, Running, deleted, gone.
    let failures: Vec<&String> = lives.iter().filter_map(|l| l.failure.as_ref()).collect();
    if !failures.is_empty() {
        let failed: Vec<&str> = lives
            .iter()
            .filter(|l| l.failure.is_some())
            .filter_map(|l| l.uuid.as_deref())
            .collect();
        panic!(
            "{scene}: {} of {} capsules failed: {failures:#?}\n{}",
            failures.len(),
            lives.len(),
            agent_log(&host, &failed)
        );
    }
    assert!(injected, "{scene}: the fault was never brought");
    assert_eq!(lives.len(), CAPSULES, "{scene}: capsules gone through");
    let uuids: Vec<String> = lives.iter().filter_map(|l| l.uuid.clone()).collect();
    let distinct: HashSet<&String> = uuids.iter().collect();
    assert_eq!(
        distinct.len(),
        CAPSULES,
        "{scene}: one uuid per capsule: {uuids:?}"
    );
    let eventful: Vec<(&String, &Vec<String>)> = lives
        .iter()
        .filter(|l| !l.notes.is_empty())
        .map(|l| (&l.name, &l.notes))
        .collect();
    eprintln!(
        "{scene}: {} capsules ran and went; {} met the fault: {eventful:#?}",
        lives.len(),
        eventful.len()
    );

    // Nothing was made twice and nothing is left behind in the database: no row of any name
    // (a second copy of one would still be there, as nobody deleted it), no capsule at all.
    let (s, v) = stack
        .call(
            ADMIN,
            reqwest::Method::GET,
            "/v1/capsules?all_projects=1",
            None,
        )
        .await;
    assert_eq!(s, 200, "{scene}: list: {v}");
    let rows = v["capsules"].as_array().cloned().unwrap_or_default();
    assert!(
        rows.is_empty(),
        "{scene}: capsules left in the database (duplicates or lost deletes): {rows:#?}"
    );
    for l in &lives {
        let n = stack
            .state
            .db
            .capsules_by_name(&db::Scope::All, &l.name)
            .await
            .expect("database")
            .len();
        assert_eq!(
            n, 0,
            "{scene}: capsule {} ({:?}): rows left",
            l.name, l.uuid
        );
    }
    let deadline = Instant::now() + SETTLE;
    loop {
        let n = stack.state.db.outbox_len().await.expect("database");
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{scene}: {n} outbox entries never published"
        );
        tokio::time::sleep(PAUSE).await;
    }

    // Nothing is left on the host.
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = host_leftovers(&host, &uuids);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{scene}: left on the host {} s after the last capsule went: {left:#?}",
            SETTLE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(host);
    stack.stop().await;
    eprintln!("{scene}: done in {:.1} s", started.elapsed().as_secs_f64());
}
