//! A fake compute host for the container routes, answering as `types/src/rpc/container.rs`
//! says a host does: it takes capsules (and reports them running), does lifecycle actions and
//! reports them to the conductor (the containers' new states, then an event with the action's
//! request id), answers calls (exec, top, stats, archives, resize) from what the test sets,
//! and runs a stream listener that takes each grant it issued once, before it expires.
//! Everything it got is recorded. [`Stack`] is an API with its conductor and this host, and
//! a running two-container capsule of project `demo`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use capsule_types::rpc::{
    compute_queue, CapsuleState, ComputeRequest, ConductorEvent, ContainerAction, ContainerCall,
    ContainerEvent, ContainerEventKind, ContainerReply, ContainerState, Envelope, Heartbeat,
    NodeResources, StreamGrant, CONDUCTOR_QUEUE,
};
use capsule_types::CapsuleStatus;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::common::{Resp, TestApi, Who, DEMO};

/// The host's name.
pub const HOST: &str = "c1";
/// A reader of project `demo`.
pub const READER: Who = Who {
    user: "demo-reader",
    project: "demo",
    roles: "reader",
};

/// A grant the host issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Its session.
    pub exec_id: Uuid,
    /// Until when it opens the stream.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Whether it opened a stream already.
    pub used: bool,
}

/// What the host got and how it answers.
#[derive(Default)]
pub struct Books {
    /// Every request, in order, with its envelope's request id.
    pub got: Vec<(Option<String>, ComputeRequest)>,
    /// Container statuses by capsule, in the spec's order.
    pub capsules: HashMap<Uuid, Vec<(Uuid, CapsuleStatus)>>,
    /// The answer to the next calls (default: a fitting success).
    pub reply: Option<ContainerReply>,
    /// Archives put, by path.
    pub archives: HashMap<String, String>,
    /// Stream sessions: what each received, and whether its client went away without a close.
    pub streams: Vec<String>,
    /// The grants it issued.
    pub grants: HashMap<String, Issued>,
    /// Stream handshakes it refused.
    pub refused: usize,
}

/// The fake host.
#[derive(Clone)]
pub struct FakeHost {
    /// What it got.
    pub books: Arc<Mutex<Books>>,
    bus: rpc::Bus,
    seq: Arc<AtomicU64>,
    /// Its stream listener.
    pub stream_address: String,
}

impl FakeHost {
    /// Starts consuming `zun-compute.c1` on `bus` and its stream listener.
    pub async fn start(bus: &rpc::Bus) -> (Self, rpc::ConsumerHandle) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = Self {
            books: Arc::default(),
            bus: bus.clone(),
            seq: Arc::new(AtomicU64::new(1)),
            stream_address: listener.local_addr().unwrap().to_string(),
        };
        tokio::spawn(serve_streams(listener, host.books.clone()));
        let queue = rpc::QueueSpec::named(&compute_queue(HOST), 8);
        let consumer = bus.consume(queue, host.clone());
        (host, consumer)
    }

    /// Its heartbeat (registers the host, with its stream listener).
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            host: HOST.into(),
            binary: "zun-compute".into(),
            availability_zone: "nova".into(),
            resources: NodeResources {
                cpus: 4.0,
                memory_mib: 8192,
                disk_gib: 50,
                ..Default::default()
            },
            capsules: vec![],
            seq: 0,
            firewall_epoch: None,
            firewall_incarnation: None,
            stream_address: Some(self.stream_address.clone()),
        }
    }

    /// The container requests it got (capsule and firewall requests left out).
    pub fn container_requests(&self) -> Vec<(Option<String>, ComputeRequest)> {
        let books = self.books.lock().unwrap();
        books
            .got
            .iter()
            .filter(|(_, r)| {
                matches!(
                    r,
                    ComputeRequest::ContainerAction { .. } | ComputeRequest::ContainerCall { .. }
                )
            })
            .cloned()
            .collect()
    }

    /// Waits (60 s at most: a bound for a busy machine) until it got `n` container requests;
    /// returns them.
    pub async fn wait_requests(&self, n: usize) -> Vec<(Option<String>, ComputeRequest)> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            let got = self.container_requests();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the host never got {n} container requests: {:?}",
            self.container_requests()
        );
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// Sends `event` to the conductor.
    pub async fn report(&self, event: ConductorEvent) {
        let env = Envelope::new(event, None);
        let bytes = rpc::encode(&env).unwrap();
        let patience = Duration::from_secs(10);
        self.bus
            .publish(CONDUCTOR_QUEUE, &bytes, patience)
            .await
            .unwrap();
    }

    /// A lifecycle action: the new states, then an event per container.
    async fn act(
        &self,
        capsule: Uuid,
        container: Option<Uuid>,
        action: &ContainerAction,
        rid: Option<String>,
    ) {
        use ContainerAction as A;
        let (status, kind) = match action {
            A::Stop { .. } => (CapsuleStatus::Stopped, ContainerEventKind::Stopped),
            A::Kill { .. } => (CapsuleStatus::Stopped, ContainerEventKind::Killed),
            A::Start | A::Restart { .. } => (CapsuleStatus::Running, ContainerEventKind::Started),
            A::Pause => (CapsuleStatus::Paused, ContainerEventKind::Paused),
            A::Unpause => (CapsuleStatus::Running, ContainerEventKind::Unpaused),
        };
        let touched = {
            let mut books = self.books.lock().unwrap();
            let list = books.capsules.entry(capsule).or_default();
            let mut touched = Vec::new();
            for (id, st) in list.iter_mut() {
                if container.is_none_or(|c| c == *id) {
                    *st = status;
                    touched.push(*id);
                }
            }
            touched
        };
        self.report_states(capsule).await;
        for c in touched {
            let happened = ContainerEvent {
                capsule,
                container: c,
                kind,
                started_at: chrono::Utc::now(),
                finished_at: chrono::Utc::now(),
                request_id: rid.clone(),
                exit_code: None,
                error: None,
            };
            let seq = self.next_seq();
            self.report(ConductorEvent::ContainerEvent {
                host: HOST.into(),
                seq,
                happened,
            })
            .await;
        }
    }

    /// Reports the capsule's containers as the books have them.
    async fn report_states(&self, capsule: Uuid) {
        self.report_readiness(capsule, None).await;
    }

    /// Reports the capsule's containers as the books have them, each with readiness `ready`.
    pub async fn report_readiness(&self, capsule: Uuid, ready: Option<bool>) {
        let states: Vec<ContainerState> = {
            let books = self.books.lock().unwrap();
            books.capsules[&capsule]
                .iter()
                .map(|(id, st)| ContainerState {
                    uuid: *id,
                    status: *st,
                    status_reason: None,
                    exit_code: None,
                    restart_count: 0,
                    container_id: None,
                    ready,
                })
                .collect()
        };
        let state = CapsuleState {
            capsule,
            status: CapsuleStatus::Running,
            status_reason: None,
            containers: states,
            addresses: json!({}),
            volumes_released: false,
        };
        let seq = self.next_seq();
        self.report(ConductorEvent::CapsuleState {
            host: HOST.into(),
            seq,
            state,
        })
        .await;
    }

    /// Reports `happened` to the conductor, as the runtime does by itself.
    pub async fn report_event(&self, happened: ContainerEvent) {
        let seq = self.next_seq();
        self.report(ConductorEvent::ContainerEvent {
            host: HOST.into(),
            seq,
            happened,
        })
        .await;
    }

    fn answer(&self, call: &ContainerCall) -> ContainerReply {
        let mut books = self.books.lock().unwrap();
        if let Some(r) = books.reply.clone() {
            return r;
        }
        match call {
            ContainerCall::Exec {
                command,
                interactive: false,
                ..
            } => ContainerReply::Exec {
                output: format!("ran {}\n", command.join(" ")),
                exit_code: 3,
            },
            ContainerCall::Exec { .. } => {
                let exec_id = Uuid::new_v4();
                let grant = format!("g-{}", Uuid::new_v4().simple());
                let expires_at = chrono::Utc::now() + chrono::Duration::seconds(60);
                let issued = Issued {
                    exec_id,
                    expires_at,
                    used: false,
                };
                books.grants.insert(grant.clone(), issued);
                ContainerReply::ExecSession {
                    exec_id,
                    // Not where the API connects: it trusts the heartbeat only.
                    stream: StreamGrant {
                        address: "198.51.100.7:1".into(),
                        grant,
                        expires_at,
                    },
                }
            }
            ContainerCall::Top { .. } => ContainerReply::Top {
                titles: vec!["PID".into(), "CMD".into()],
                processes: vec![vec!["1".into(), "sleep 3600".into()]],
            },
            ContainerCall::Stats => ContainerReply::Stats {
                stats: capsule_types::rpc::ContainerStats {
                    cpu_percent: 2.5,
                    memory_usage_bytes: 32 << 20,
                    memory_limit_bytes: 128 << 20,
                    ..Default::default()
                },
            },
            ContainerCall::GetArchive { path } => match books.archives.get(path) {
                Some(data) => ContainerReply::Archive {
                    data: data.clone(),
                    stat: capsule_types::rpc::ArchiveStat {
                        name: path.rsplit('/').next().unwrap_or_default().into(),
                        size: 3,
                        mode: 0o644,
                        mtime: "2026-01-01T00:00:00Z".into(),
                        link_target: String::new(),
                    },
                },
                None => ContainerReply::NotFound {
                    message: format!("{path}: no such file or directory"),
                },
            },
            ContainerCall::PutArchive { path, data } => {
                books.archives.insert(path.clone(), data.clone());
                ContainerReply::Done
            }
            ContainerCall::ExecResize { .. } => ContainerReply::Done,
        }
    }
}

impl rpc::Handler for FakeHost {
    fn handle(&self, d: rpc::Delivery) -> impl std::future::Future<Output = rpc::Disposition> {
        let host = self.clone();
        async move {
            let env: Envelope<ComputeRequest> = rpc::decode(&d.payload).unwrap();
            host.books
                .lock()
                .unwrap()
                .got
                .push((env.request_id.clone(), env.body.clone()));
            match env.body {
                ComputeRequest::CreateCapsule { capsule } => {
                    let list = capsule
                        .containers
                        .iter()
                        .filter(|c| !c.is_init)
                        .map(|c| (c.uuid, CapsuleStatus::Running))
                        .collect();
                    host.books
                        .lock()
                        .unwrap()
                        .capsules
                        .insert(capsule.uuid, list);
                    host.report_states(capsule.uuid).await;
                    rpc::Disposition::Ack
                }
                ComputeRequest::ContainerAction {
                    capsule,
                    container,
                    action,
                } => {
                    host.act(capsule, container, &action, env.request_id).await;
                    rpc::Disposition::Ack
                }
                ComputeRequest::ContainerCall { call, .. } => {
                    let reply = host.answer(&call);
                    let bytes = rpc::encode(&Envelope::new(reply, None)).unwrap();
                    rpc::Disposition::Reply(bytes)
                }
                _ => rpc::Disposition::Ack,
            }
        }
    }
}

/// Whether `grant` opens the stream at `path` now (and it is used up if so).
fn admit(books: &Mutex<Books>, path: &str, grant: Option<&str>) -> bool {
    let mut books = books.lock().unwrap();
    let id = path
        .strip_prefix("/exec/")
        .and_then(|i| Uuid::try_parse(i).ok());
    let ok = match (id, grant.and_then(|g| books.grants.get_mut(g))) {
        (Some(id), Some(g)) if g.exec_id == id && !g.used && g.expires_at > chrono::Utc::now() => {
            g.used = true;
            true
        }
        _ => false,
    };
    if !ok {
        books.refused += 1;
    }
    ok
}

/// The stream listener: takes `Authorization: Bearer <grant>` on `/exec/<id>` for a grant it
/// issued for that session, once and before it expires; echoes what it gets prefixed with
/// `out:`, and on `exit` closes with `exit 3`. What each session got (and `<gone>` when its
/// client left without closing) goes in the books.
async fn serve_streams(listener: TcpListener, books: Arc<Mutex<Books>>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let books = books.clone();
        tokio::spawn(async move {
            // The callback's type is tungstenite's.
            #[allow(clippy::result_large_err)]
            let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok());
                let grant = auth.and_then(|a| a.strip_prefix("Bearer "));
                if admit(&books, req.uri().path(), grant) {
                    Ok(resp)
                } else {
                    let mut refused = ErrorResponse::new(Some("refused".into()));
                    *refused.status_mut() = http::StatusCode::UNAUTHORIZED;
                    Err(refused)
                }
            };
            let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, check).await else {
                return;
            };
            let mut seen = String::new();
            loop {
                match ws.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        let text = String::from_utf8_lossy(&b).into_owned();
                        seen.push_str(&text);
                        if text.trim() == "exit" {
                            let frame = CloseFrame {
                                code: CloseCode::Normal,
                                reason: "exit 3".into(),
                            };
                            let _ = ws.close(Some(frame)).await;
                            break;
                        }
                        let out = format!("out:{text}");
                        let _ = ws.send(Message::Binary(out.into_bytes().into())).await;
                    }
                    Some(Ok(Message::Close(_))) => {
                        seen.push_str("<closed>");
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        seen.push_str("<gone>");
                        break;
                    }
                }
            }
            books.lock().unwrap().streams.push(seen);
        });
    }
}

/// An API with its conductor on an in-process bus, the fake host, and a running capsule of
/// project `demo` with two containers (`web`, `side`).
pub struct Stack {
    /// The API.
    pub api: TestApi,
    /// The host.
    pub host: FakeHost,
    /// The capsule's uuid.
    pub capsule: String,
    /// Its containers' uuids, in the template's order.
    pub containers: Vec<String>,
    conductor: Option<zun_api::conductor::Conductor>,
    consumer: Option<rpc::ConsumerHandle>,
    /// The RabbitMQ node of [`Stack::on_rabbitmq`], stopped last.
    _broker: Option<test_support::PrivateBroker>,
}

impl Stack {
    /// Starts it all and waits until the capsule runs.
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// The same with `extra` in the API's configuration.
    pub async fn start_with(extra: &str) -> Self {
        let mut api = TestApi::new(extra).await;
        let bus = rpc::Bus::Memory(rpc::MemoryBus::new());
        api.state = api.state.clone().with_bus(bus.clone());
        Self::started(api, bus, None).await
    }

    /// The same over a RabbitMQ node of its own: the API's bus is the one its `[rpc] url`
    /// configures, the host another connection to the same node.
    pub async fn on_rabbitmq() -> Self {
        let broker = tokio::task::spawn_blocking(test_support::PrivateBroker::start)
            .await
            .expect("broker");
        let api = TestApi::new(&format!("[rpc]\nurl = \"{}\"\n", broker.url())).await;
        let bus = rpc::Bus::Amqp(rpc::AmqpBus::new(&broker.url(), "fake-host"));
        Self::started(api, bus, Some(broker)).await
    }

    async fn started(
        api: TestApi,
        bus: rpc::Bus,
        broker: Option<test_support::PrivateBroker>,
    ) -> Self {
        let dispatcher = api.state.dispatcher.clone().expect("a dispatcher");
        let conductor = zun_api::conductor::Conductor::start(&api.state, &dispatcher);
        let (host, consumer) = FakeHost::start(&bus).await;
        host.report(ConductorEvent::Heartbeat(host.heartbeat()))
            .await;
        let mut stack = Self {
            api,
            host,
            capsule: String::new(),
            containers: vec![],
            conductor: Some(conductor),
            consumer: Some(consumer),
            _broker: broker,
        };
        stack
            .until("the host is registered", |s| async move {
                let svc = s.api.state.db.service(HOST, "zun-compute").await.unwrap();
                svc.is_some_and(|s| s.stream_address.is_some())
            })
            .await;
        let template = json!({
            "kind": "capsule",
            "metadata": {"name": "ops"},
            "spec": {"containers": [
                {"name": "web", "image": "busybox", "command": ["sleep", "3600"]},
                {"name": "side", "image": "busybox", "command": ["sleep", "3600"]},
            ]},
        });
        let r = stack.api.create(DEMO, template).await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        stack.capsule = r.json["uuid"].as_str().unwrap().to_owned();
        stack
            .until("the capsule runs", |s| async move {
                s.statuses().await == ["Running", "Running"]
            })
            .await;
        let c = stack.show().await;
        stack.containers = c["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["uuid"].as_str().unwrap().to_owned())
            .collect();
        stack
    }

    /// The capsule as its owner sees it.
    pub async fn show(&self) -> Value {
        let path = format!("/v1/capsules/{}", self.capsule);
        let r = self.api.get(&path, DEMO, Some("1.40")).await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        r.json
    }

    /// The statuses of the capsule's containers.
    pub async fn statuses(&self) -> Vec<String> {
        let c = self.show().await;
        c["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `check` holds: 60 s at most, a bound for a machine busy with the whole
    /// suite (the 110 events of the history test took over 5 s there), not a timing.
    pub async fn until<'a, F, Fut>(&'a self, what: &str, check: F)
    where
        F: Fn(&'a Self) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if check(self).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}: not within 60 s");
    }

    /// `/v1/containers/<uuid of container i>/<action>`.
    pub fn path(&self, i: usize, action: &str) -> String {
        format!("/v1/containers/{}/{action}", self.containers[i])
    }

    /// `method` on `path` as `who`, at microversion 1.40 (python-zunclient's own), with an
    /// optional JSON body.
    pub async fn send(&self, method: &str, path: &str, who: Who, body: Option<&Value>) -> Resp {
        let method = method.parse().unwrap();
        let v = [("openstack-api-version", "container 1.40")];
        self.api.call(method, path, Some(who), body, &v).await
    }

    /// The container requests the host got so far.
    pub fn sent(&self) -> usize {
        self.host.container_requests().len()
    }

    /// Stops the conductor and the host.
    pub async fn stop(mut self) {
        if let Some(c) = self.consumer.take() {
            c.stop().await;
        }
        if let Some(c) = self.conductor.take() {
            c.stop().await;
        }
    }
}
