//! A whole control plane on loopback for one test: a private RabbitMQ, a zun-api (noauth,
//! SQLite, conductor running) serving its three HTTP APIs (Zun, network, block storage), and
//! `zun-compute` agents run as real processes with the fake runtime. Everything is stopped and
//! removed when the stack is dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use test_support::wait::until_async;
use test_support::{PrivateBroker, TempDir};
use zun_api::conductor::Conductor;
use zun_api::{AppState, Config};

use crate::Compute;

/// The control plane.
pub struct Stack {
    /// The broker (a test may take it out to restart it, and put it back).
    pub broker: Option<PrivateBroker>,
    broker_url: String,
    /// API base URL.
    pub api: String,
    /// Network (security-group) API base URL.
    pub net: String,
    /// Block-storage (volume) API base URL.
    pub volume: String,
    /// API state (direct database checks).
    pub state: AppState,
    conductor: Option<Conductor>,
    server: tokio::task::JoinHandle<()>,
    net_server: tokio::task::JoinHandle<()>,
    volume_server: tokio::task::JoinHandle<()>,
    dir: TempDir,
    http: reqwest::Client,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
        self.net_server.abort();
        self.volume_server.abort();
        // The directory goes with `self.dir`, after this.
    }
}

/// Who calls (noauth headers): `(user, project, roles)`.
pub const DEMO: (&str, &str, &str) = ("demo-user", "demo", "member,reader");
/// An admin.
pub const ADMIN: (&str, &str, &str) = ("admin-user", "admin", "admin,member,reader");
/// A member of another project.
pub const ALT: (&str, &str, &str) = ("alt-user", "alt", "member,reader");

impl Stack {
    /// Starts broker, API and conductor; hosts are down after 3 s of silence.
    pub async fn start() -> Self {
        Self::start_with(3).await
    }

    /// Starts broker, API and conductor; hosts are down after `service_down_seconds`.
    pub async fn start_with(service_down_seconds: u64) -> Self {
        let broker = tokio::task::spawn_blocking(PrivateBroker::start)
            .await
            .expect("broker");
        let dir = TempDir::new("zc-stack");
        let toml = format!(
            "[auth]\nstrategy = \"noauth\"\n[database]\nurl = \"sqlite://{}/zun.db\"\n\
             [rpc]\nurl = \"{}\"\n[conductor]\nservice_down_seconds = {service_down_seconds}\n\
             check_seconds = 1\n",
            dir.display(),
            broker.url()
        );
        let config = Config::parse(&toml).unwrap_or_else(|e| panic!("config: {e}"));
        let state = AppState::from_config(config).await.unwrap();
        state.db.migrate().await.unwrap();
        let conductor = state
            .dispatcher
            .as_ref()
            .map(|d| Conductor::start(&state, d));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let svc = axum::ServiceExt::<axum::extract::Request>::into_make_service(zun_api::service(
            state.clone(),
        ));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, svc).await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let net = format!("http://{}", listener.local_addr().unwrap());
        let net_state = state.clone();
        let net_server = tokio::spawn(async move {
            let _ = zun_api::neutron::serve(net_state, listener, std::future::pending()).await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let volume = format!("http://{}", listener.local_addr().unwrap());
        let volume_server = serve_volumes(state.clone(), listener);
        Self {
            broker_url: broker.url(),
            broker: Some(broker),
            api,
            net,
            volume,
            state,
            conductor,
            server,
            net_server,
            volume_server,
            dir,
            http: reqwest::Client::new(),
        }
    }

    /// The broker's AMQP URL (for a test's own bus).
    pub fn broker_url(&self) -> &str {
        &self.broker_url
    }

    /// How many messages the broker's `queue` holds (ready or unacknowledged); `None` if there
    /// is no such queue. Panics if the broker was taken out.
    pub async fn queue_messages(&self, queue: &str) -> Option<u64> {
        let broker = self.broker.as_ref().expect("the stack's broker");
        // rabbitmqctl takes about a second: off the runtime's workers.
        tokio::task::block_in_place(|| broker.queue_messages(queue))
    }

    /// Empties the broker's `queue`, as if its messages were lost; how many it held.
    pub async fn purge_queue(&self, queue: &str) -> u64 {
        let broker = self.broker.as_ref().expect("the stack's broker");
        tokio::task::block_in_place(|| broker.purge_queue(queue))
    }

    /// Waits until every queue of `queues` is empty at once: whatever was sent to them was
    /// handled and acknowledged (a consumer acknowledges only after its effect).
    pub async fn wait_drained(&self, queues: &[&str], within: Duration) {
        until_async(within, Duration::from_millis(100), async || {
            let mut held = Vec::new();
            for q in queues {
                match self.queue_messages(q).await {
                    Some(0) | None => {}
                    Some(n) => held.push(format!("{q}: {n}")),
                }
            }
            if held.is_empty() {
                Ok(())
            } else {
                Err(format!("queues never drained: {}", held.join(", ")))
            }
        })
        .await
    }

    /// Starts a compute agent for `host` offering `memory_mib` and 2 CPUs; each create takes
    /// `create_ms`. Waits until the API sees it up.
    pub async fn compute(&self, host: &str, memory_mib: u64, create_ms: u64) -> Compute {
        self.compute_with(
            host,
            memory_mib,
            &format!("[runtime]\nfake_create_ms = {create_ms}\n"),
        )
        .await
    }

    /// The state directory a compute agent for `host` gets.
    pub fn compute_dir(&self, host: &str) -> PathBuf {
        self.dir.join(format!("compute-{host}"))
    }

    /// Starts a compute agent for `host` offering `memory_mib` and 2 CPUs, with `runtime_toml`
    /// (its `[runtime]` and driver sections) in its config. Waits until the API sees it up.
    pub async fn compute_with(&self, host: &str, memory_mib: u64, runtime_toml: &str) -> Compute {
        let state_dir = self.compute_dir(host);
        std::fs::create_dir_all(&state_dir).unwrap();
        let config = state_dir.join("zun-compute.toml");
        std::fs::write(
            &config,
            format!(
                "[compute]\nhost = \"{host}\"\nstate_dir = \"{}\"\nheartbeat_seconds = 1\n\
                 reconcile_seconds = 2\n[rpc]\nurl = \"{}\"\n{runtime_toml}\n\
                 [resources]\ncpus = 2.0\nmemory_mib = {memory_mib}\n\
                 [metrics]\nlisten = \"127.0.0.1:0\"\n",
                state_dir.display(),
                self.broker_url
            ),
        )
        .unwrap();
        let c = Compute::spawn(host, config, state_dir);
        self.wait_service(host, true, Duration::from_secs(30)).await;
        c
    }

    /// Waits until `host`'s compute service is up (or down).
    pub async fn wait_service(&self, host: &str, up: bool, within: Duration) {
        until_async(within, Duration::from_millis(200), async || {
            let r = self
                .call(ADMIN, reqwest::Method::GET, "/v1/services", None)
                .await;
            let is_up = r.1["services"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["host"] == host && s["state"] == "up");
            if is_up == up {
                Ok(())
            } else {
                Err(format!(
                    "service {host} never went {}",
                    if up { "up" } else { "down" }
                ))
            }
        })
        .await
    }

    /// A call to the network (security-group) API.
    pub async fn net_call(
        &self,
        who: (&str, &str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let req = self.request(&self.net, who, method, path, body);
        answer(req, "network API").await
    }

    /// The id of `who`'s project's `default` security group.
    pub async fn default_group(&self, who: (&str, &str, &str)) -> String {
        let path = "/v2.0/security-groups?name=default";
        let (status, groups) = self.net_call(who, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{groups}");
        groups["security_groups"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no default group: {groups}"))
            .to_owned()
    }

    /// A call to the block-storage (volume) API; `path` starts after `/v3`.
    pub async fn volume_call(
        &self,
        who: (&str, &str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let path = format!("/v3/{}{path}", who.1);
        let req = self.request(&self.volume, who, method, &path, body);
        answer(req, "block-storage API").await
    }

    /// An HTTP call at microversion 1.40.
    pub async fn call(
        &self,
        who: (&str, &str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let req = self
            .request(&self.api, who, method, path, body)
            .header("openstack-api-version", "container 1.40");
        answer(req, "API").await
    }

    /// A request to `base` as `who` (noauth headers), with `body` as JSON.
    fn request(
        &self,
        base: &str,
        who: (&str, &str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method, format!("{base}{path}"))
            .header("x-user-id", who.0)
            .header("x-project-id", who.1)
            .header("x-roles", who.2);
        match body {
            Some(b) => req.json(b),
            None => req,
        }
    }

    /// Creates a capsule from `template` (the body's `template`) as `who`; its uuid.
    pub async fn create_template(&self, who: (&str, &str, &str), template: &Value) -> String {
        let (status, body) = self
            .call(
                who,
                reqwest::Method::POST,
                "/v1/capsules",
                Some(&json!({ "template": template })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body["uuid"].as_str().unwrap().to_owned()
    }

    /// Creates a capsule with one busybox container, `memory` MiB and 0.1 CPU (not the API's
    /// default of a whole CPU, so that hundreds fit on a test host); its uuid.
    pub async fn create(&self, name: &str, memory: u64) -> String {
        let t = json!({"template": {"kind": "capsule", "metadata": {"name": name},
            "spec": {"containers": [{"image": "busybox", "command": ["sleep", "3600"],
                "resources": {"requests": {"memory": memory, "cpu": 0.1}}}]}}});
        let (status, body) = self
            .call(DEMO, reqwest::Method::POST, "/v1/capsules", Some(&t))
            .await;
        assert_eq!(status, 202, "{body}");
        body["uuid"].as_str().unwrap().to_owned()
    }

    /// The capsule as an admin sees it (with `host`); `None` once it is gone.
    pub async fn show(&self, uuid: &str) -> Option<Value> {
        let (status, body) = self
            .call(
                ADMIN,
                reqwest::Method::GET,
                &format!("/v1/capsules/{uuid}"),
                None,
            )
            .await;
        match status {
            200 => Some(body),
            404 => None,
            other => panic!("GET {uuid}: {other} {body}"),
        }
    }

    /// Waits until the capsule's status is `want`; returns it.
    pub async fn wait_status(&self, uuid: &str, want: &str, within: Duration) -> Value {
        self.wait_for(uuid, &format!("reached {want}"), within, |c| {
            c["status"] == want
        })
        .await
    }

    /// Waits until `pred` holds for the capsule as an admin sees it; `what` names it in the
    /// failure.
    pub async fn wait_for(
        &self,
        uuid: &str,
        what: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        until_async(within, Duration::from_millis(100), async || {
            match self.show(uuid).await {
                Some(c) if pred(&c) => Ok(c),
                c => Err(format!("capsule {uuid} never {what}; last: {c:?}")),
            }
        })
        .await
    }

    /// The logs of container `uuid` (Zun's logs API, as demo).
    pub async fn container_logs(&self, uuid: &str) -> String {
        let (status, body) = self
            .call(
                DEMO,
                reqwest::Method::GET,
                &format!("/v1/containers/{uuid}/logs"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_str()
            .unwrap_or_else(|| panic!("logs: {body}"))
            .to_owned()
    }

    /// Waits until the capsule is gone.
    pub async fn wait_gone(&self, uuid: &str, within: Duration) {
        until_async(within, Duration::from_millis(100), async || {
            match self.show(uuid).await {
                None => Ok(()),
                Some(c) => Err(format!("capsule {uuid} never went away: {c}")),
            }
        })
        .await
    }

    /// DELETE as demo (or admin with `force`).
    pub async fn delete(&self, uuid: &str, force: bool) -> u16 {
        if force {
            let path = format!("/v1/capsules/{uuid}?force=true");
            self.call(ADMIN, reqwest::Method::DELETE, &path, None)
                .await
                .0
        } else {
            self.delete_as(DEMO, uuid).await
        }
    }

    /// `DELETE /v1/capsules/{uuid}` as `who` (its owner: the benchmarks create as admin).
    pub async fn delete_as(&self, who: (&str, &str, &str), uuid: &str) -> u16 {
        let path = format!("/v1/capsules/{uuid}");
        self.call(who, reqwest::Method::DELETE, &path, None).await.0
    }

    /// Restarts the API as a crash and a fresh start of its process would: the HTTP servers
    /// stop accepting, every open connection to them is reset (a client in the middle of a
    /// request gets an error, not an answer) and the conductor stops; once nothing of the old
    /// state is running any more and a second has passed (clients get "connection refused"
    /// meanwhile), a fresh state is built from the same configuration and database and served
    /// on the same addresses, with a new conductor. Callers must not hold clones of `state`
    /// across the restart (clone `state.db` instead): the old state must go, as with a process.
    pub async fn restart_api(&mut self) {
        self.server.abort();
        self.net_server.abort();
        self.volume_server.abort();
        let _ = (&mut self.server).await;
        let _ = (&mut self.net_server).await;
        let _ = (&mut self.volume_server).await;
        if let Some(c) = self.conductor.take() {
            c.stop().await;
        }
        // axum serves each connection in a task of its own that outlives the accept loop: reset
        // the connections, as the kernel does when a process dies, and those tasks end too.
        let addrs = [self.api.clone(), self.net.clone(), self.volume.clone()].map(|u| {
            u.trim_start_matches("http://")
                .parse::<std::net::SocketAddr>()
                .unwrap_or_else(|e| panic!("restart_api: address of {u}: {e}"))
        });
        for a in &addrs {
            // Only this API's own loopback address and port: nobody else's connections.
            let filter = format!("( src {a} or dst {a} )");
            let out = Command::new("ss")
                .args(["-K", "-t", "-n", &filter])
                .output()
                .expect("restart_api: run ss -K");
            assert!(
                out.status.success(),
                "restart_api: ss -K {filter}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.http = reqwest::Client::new();
        let config = (*self.state.config).clone();
        let state = AppState::from_config(config)
            .await
            .unwrap_or_else(|e| panic!("restart_api: build the new state: {e}"));
        let old = std::mem::replace(&mut self.state, state);
        until_async(
            Duration::from_secs(30),
            Duration::from_millis(50),
            async || match std::sync::Arc::strong_count(&old.config) - 1 {
                0 => Ok(()),
                held => Err(format!(
                    "restart_api: 30 s after the restart the old API state is still held \
                     {held} times (requests of the old process still running, or a test holds \
                     a clone of `stack.state`)"
                )),
            },
        )
        .await;
        drop(old);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut listeners = Vec::new();
        for a in addrs {
            let l = until_async(
                Duration::from_secs(10),
                Duration::from_millis(100),
                async || {
                    tokio::net::TcpListener::bind(a)
                        .await
                        .map_err(|e| format!("restart_api: bind {a} again: {e}"))
                },
            )
            .await;
            listeners.push(l);
        }
        let volume_listener = listeners.pop().expect("three listeners");
        let net_listener = listeners.pop().expect("three listeners");
        let listener = listeners.pop().expect("three listeners");
        self.conductor = self
            .state
            .dispatcher
            .as_ref()
            .map(|d| Conductor::start(&self.state, d));
        let svc = axum::ServiceExt::<axum::extract::Request>::into_make_service(zun_api::service(
            self.state.clone(),
        ));
        self.server = tokio::spawn(async move {
            let _ = axum::serve(listener, svc).await;
        });
        let net_state = self.state.clone();
        self.net_server = tokio::spawn(async move {
            let _ = zun_api::neutron::serve(net_state, net_listener, std::future::pending()).await;
        });
        self.volume_server = serve_volumes(self.state.clone(), volume_listener);
    }

    /// Stops the conductor (end of test).
    pub async fn stop(mut self) {
        if let Some(c) = self.conductor.take() {
            c.stop().await;
        }
    }
}

/// Serves the block-storage API of `state` on `listener` until aborted.
fn serve_volumes(
    state: AppState,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = zun_api::cinder::serve(state, listener, std::future::pending()).await;
    })
}

/// Sends `req` and returns the status and the JSON body (`Null` if there is none).
async fn answer(req: reqwest::RequestBuilder, what: &str) -> (u16, Value) {
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("the {what} answers: {e}"));
    let status = resp.status().as_u16();
    let json = resp.json().await.unwrap_or(Value::Null);
    (status, json)
}
