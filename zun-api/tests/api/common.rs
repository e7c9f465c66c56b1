//! An in-process API over a fresh SQLite database, driven through the whole service stack
//! (normalization, request ids, authentication, microversions, handlers).

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;
use tower::ServiceExt;
use zun_api::{AppState, Config};

/// Who a request comes from (noauth headers).
#[derive(Clone, Copy, Debug)]
pub struct Who {
    /// User id.
    pub user: &'static str,
    /// Project id.
    pub project: &'static str,
    /// Comma-separated roles.
    pub roles: &'static str,
}

/// Admin of project `admin`.
pub const ADMIN: Who = Who {
    user: "admin-user",
    project: "admin",
    roles: "admin,member,reader",
};
/// Member of project `demo`.
pub const DEMO: Who = Who {
    user: "demo-user",
    project: "demo",
    roles: "member,reader",
};
/// Member of project `alt`.
pub const ALT: Who = Who {
    user: "alt-user",
    project: "alt",
    roles: "member,reader",
};

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (`Value::Null` when empty or not JSON).
    pub json: Value,
    /// Raw body.
    pub raw: Vec<u8>,
}

/// Which of the three APIs a request goes to.
#[derive(Clone, Copy, Debug)]
pub enum Api {
    /// Zun's `/v1` (capsules, containers, services, hosts).
    Capsule,
    /// The Neutron-like security-group API.
    Network,
    /// The Cinder-like volume API.
    Volume,
}

impl Resp {
    /// Reads a whole answer.
    pub async fn read(resp: axum::response::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            json,
            raw,
        }
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `errors[0].detail` of a Zun error body.
    pub fn detail(&self) -> &str {
        self.json["errors"][0]["detail"].as_str().unwrap_or("")
    }
}

/// A test API with its own database.
pub struct TestApi {
    /// The state (for direct database checks).
    pub state: AppState,
    dir: PathBuf,
    /// On PostgreSQL: the server's URL and the test's own schema, dropped with the API.
    schema: Option<(String, String)>,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((url, schema)) = self.schema.take() {
            // Drop cannot await: a thread of its own runs the statement to its end.
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(async {
                        // The API's own connections end first. The test's runtime is blocked
                        // in this drop, so a rollback its pool still owes (an abandoned
                        // transaction's, sent when the connection goes back to the pool, by
                        // a task on that runtime) would hold its locks against the drop.
                        postgres_exec(
                            &url,
                            &format!(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                                 WHERE application_name = '{schema}'"
                            ),
                        )
                        .await;
                        postgres_exec(&url, &format!("DROP SCHEMA {schema} CASCADE")).await;
                    })
            })
            .join();
            if dropped.is_err() && !std::thread::panicking() {
                panic!("the test schema {:?} was not dropped", self.schema);
            }
        }
    }
}

/// Runs `sql` on the PostgreSQL at `url`.
async fn postgres_exec(url: &str, sql: &str) {
    let admin = db::Database::connect(url).await.expect("connect postgres");
    let conn = admin.connection();
    conn.execute(Statement::from_string(
        conn.get_database_backend(),
        sql.to_owned(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl TestApi {
    /// A fresh API on the database `ZUN_TEST_API_DB` names: `sqlite` (the default) or
    /// `postgres` (devstack's, in a schema of its own; devstack/run-tests.sh runs this suite on
    /// both); `extra` is appended to the TOML configuration.
    pub async fn new(extra: &str) -> Self {
        match std::env::var("ZUN_TEST_API_DB").as_deref() {
            Ok("postgres") => Self::on_postgres(extra).await,
            Ok("sqlite") | Err(_) => Self::on_sqlite(extra).await,
            Ok(other) => panic!("ZUN_TEST_API_DB={other:?}: sqlite or postgres"),
        }
    }

    /// A fresh API on SQLite, in a directory of its own.
    pub async fn on_sqlite(extra: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("zun-api-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        // noauth unless the caller configures authentication itself.
        let auth = if extra.contains("[auth]") {
            ""
        } else {
            "[auth]\nstrategy = \"noauth\"\n"
        };
        let toml = format!(
            "{auth}[database]\nurl = \"sqlite://{}/zun.db\"\n{extra}",
            dir.display()
        );
        // The error's Display names the line only; the text may hold a password.
        let config = Config::parse(&toml).unwrap_or_else(|e| panic!("test config: {e}"));
        let state = AppState::from_config(config).await.unwrap();
        state.db.migrate().await.unwrap();
        Self {
            state,
            dir,
            schema: None,
        }
    }

    /// The same on PostgreSQL (devstack's, `ZUN_TEST_POSTGRES_URL`), in a schema of its own
    /// that is dropped with the API. Missing PostgreSQL is a failure, not a skip.
    pub async fn on_postgres(extra: &str) -> Self {
        let base = std::env::var("ZUN_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "ZUN_TEST_POSTGRES_URL is not set: run the tests with devstack/run-tests.sh \
                 (it starts PostgreSQL), or source $STACK_DIR/etc/test-env"
            )
        });
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        postgres_exec(&base, &format!("CREATE SCHEMA {schema}")).await;
        let sep = if base.contains('?') { '&' } else { '?' };
        // Its connections carry the schema's name, so that the drop can end them.
        let url =
            format!("{base}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
        let auth = if extra.contains("[auth]") {
            ""
        } else {
            "[auth]\nstrategy = \"noauth\"\n"
        };
        let toml = format!("{auth}[database]\nurl = \"{url}\"\n{extra}");
        let config = Config::parse(&toml).unwrap_or_else(|_| panic!("test config"));
        let built = AppState::from_config(config).await;
        let state = match built {
            Ok(state) => state,
            Err(e) => {
                postgres_exec(&base, &format!("DROP SCHEMA {schema} CASCADE")).await;
                panic!("state on postgres: {e}");
            }
        };
        let dir = std::env::temp_dir().join(format!("zun-api-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        // From here on the schema goes with the API, whatever happens.
        let api = Self {
            state,
            dir,
            schema: Some((base, schema)),
        };
        api.state.db.migrate().await.expect("migrate postgres");
        api
    }

    /// Sends a request with optional identity, JSON body and extra headers.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        who: Option<Who>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "zun.test:9517");
        if let Some(w) = who {
            b = b
                .header("x-user-id", w.user)
                .header("x-project-id", w.project)
                .header("x-roles", w.roles);
        }
        let has_ctype = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some(v) => {
                if !has_ctype {
                    b = b.header("content-type", "application/json");
                }
                Body::from(serde_json::to_vec(v).unwrap())
            }
            None => Body::empty(),
        };
        self.send(b.body(body).unwrap()).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = zun_api::service(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        Resp::read(resp).await
    }

    /// Sends `req` to `api` (one of the three APIs' routers, or the capsule API's service).
    pub async fn send_to(&self, api: Api, req: Request<Body>) -> Resp {
        let state = self.state.clone();
        let resp = match api {
            Api::Capsule => zun_api::service(state).oneshot(req).await,
            Api::Network => zun_api::neutron::router(state).oneshot(req).await,
            Api::Volume => zun_api::cinder::router(state).oneshot(req).await,
        };
        Resp::read(resp.unwrap()).await
    }

    /// A request to the network (security-group) API as `who`, with an optional JSON body.
    pub async fn net(&self, method: Method, uri: &str, who: Who, body: Option<&Value>) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "net.test:9696")
            .header("x-user-id", who.user)
            .header("x-project-id", who.project)
            .header("x-roles", who.roles);
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(serde_json::to_vec(v).unwrap())
            }
            None => Body::empty(),
        };
        self.send_to(Api::Network, b.body(body).unwrap()).await
    }

    /// A GET to the network API without any identity.
    pub async fn send_net_anonymous(&self, uri: &str) -> Resp {
        let req = Request::builder()
            .uri(uri)
            .header("host", "net.test:9696")
            .body(Body::empty())
            .unwrap();
        self.send_to(Api::Network, req).await
    }

    /// GET as `who` at microversion `ver` (None: no header).
    pub async fn get(&self, uri: &str, who: Who, ver: Option<&str>) -> Resp {
        let h: Vec<(&str, String)> = ver
            .map(|v| vec![("openstack-api-version", format!("container {v}"))])
            .unwrap_or_default();
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.call(Method::GET, uri, Some(who), None, &h).await
    }

    /// POST a template as `who` at 1.40.
    pub async fn create(&self, who: Who, template: Value) -> Resp {
        self.call(
            Method::POST,
            "/v1/capsules",
            Some(who),
            Some(&serde_json::json!({ "template": template })),
            &[("openstack-api-version", "container 1.40")],
        )
        .await
    }

    /// DELETE as `who`.
    pub async fn delete(&self, uri: &str, who: Who) -> Resp {
        self.call(Method::DELETE, uri, Some(who), None, &[]).await
    }

    /// Rows in the capsules table.
    pub async fn capsule_count(&self) -> u64 {
        self.state.db.count_capsules(&db::Scope::All).await.unwrap()
    }
}

/// A minimal valid template named `name`.
pub fn minimal(name: &str) -> Value {
    serde_json::json!({
        "kind": "capsule",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"image": "busybox", "command": ["sleep", "3600"]}]}
    })
}

/// Registers compute host `host` (4 CPUs, 8 GiB, 50 GiB, zone `nova`) by a heartbeat.
pub async fn heartbeat(db: &db::Database, host: &str) {
    let hb = capsule_types::rpc::Heartbeat {
        host: host.to_owned(),
        binary: "zun-compute".to_owned(),
        availability_zone: "nova".to_owned(),
        resources: capsule_types::rpc::NodeResources {
            cpus: 4.0,
            memory_mib: 8192,
            disk_gib: 50,
            architecture: "x86_64".to_owned(),
            os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            kernel_version: "6.1.0".to_owned(),
            labels: Default::default(),
        },
        capsules: vec![],
        seq: 0,
        firewall_epoch: None,
        firewall_incarnation: None,
        stream_address: None,
    };
    db.record_heartbeat(&hb).await.unwrap();
}
