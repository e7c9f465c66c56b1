//! A container's health probes, as Kubernetes writes them: `livenessProbe`, `readinessProbe`
//! and `startupProbe`, each one handler (`exec.command`, `httpGet` {path, port, httpHeaders}
//! or `tcpSocket.port`) and its timing. The probe always targets the capsule itself: a `host`
//! (which would make the compute host call any address for a tenant) and HTTPS are refused.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::container::string_list;
use super::errors::{index, join};
use super::scalars::{array, bounded, check_free_text, object, port, required, string, unexpected};
use super::validate::Ctx;

/// Most `httpGet.httpHeaders`.
const MAX_HEADERS: usize = 16;
/// Longest `httpGet.path`.
const MAX_PATH: usize = 2048;

/// Which probe it is: the rules differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
    /// `startupProbe`.
    Startup,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeAction {
    /// Runs `command` in the container: healthy when it exits 0.
    Exec {
        /// The command and its arguments.
        command: Vec<String>,
    },
    /// `GET path` on the capsule's `port` (plain HTTP): healthy on a 2xx or 3xx answer.
    HttpGet {
        /// The request path (with its query).
        path: String,
        /// The port, in the capsule's network namespace.
        port: u16,
        /// Extra request headers (name, value).
        #[serde(default)]
        headers: Vec<(String, String)>,
    },
    /// Connects to the capsule's `port`: healthy when the connection is accepted.
    TcpSocket {
        /// The port, in the capsule's network namespace.
        port: u16,
    },
}

/// One probe and its timing (Kubernetes' defaults where not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// What it does.
    pub action: ProbeAction,
    /// Seconds after the container starts before the first probe.
    pub initial_delay_seconds: u32,
    /// Seconds between probes.
    pub period_seconds: u32,
    /// Seconds a probe may take before it counts as failed.
    pub timeout_seconds: u32,
    /// Failures in a row that make the probe fail.
    pub failure_threshold: u32,
    /// Successes in a row that make it pass again (1 for liveness and startup).
    pub success_threshold: u32,
}

impl Probe {
    /// As Zun's `healthcheck` shows a check: `cmd`, `interval`, `retries`, `timeout` (and,
    /// ours, `start_period`); an HTTP or TCP probe's `cmd` says what it asks.
    pub fn zun_healthcheck(&self) -> Value {
        let cmd = match &self.action {
            ProbeAction::Exec { command } => command.join(" "),
            ProbeAction::HttpGet { path, port, .. } => format!("GET http://127.0.0.1:{port}{path}"),
            ProbeAction::TcpSocket { port } => format!("TCP 127.0.0.1:{port}"),
        };
        serde_json::json!({
            "cmd": cmd,
            "interval": self.period_seconds,
            "retries": self.failure_threshold,
            "timeout": self.timeout_seconds,
            "start_period": self.initial_delay_seconds,
        })
    }
}

/// Validates the probe at `path`; `None` when it had any error.
pub(crate) fn probe(v: &Value, path: &str, kind: Kind, ctx: &mut Ctx<'_>) -> Option<Probe> {
    let before = ctx.sink.count();
    let obj = object(v, path, &mut ctx.sink)?;
    let mut actions = Vec::new();
    let mut p = Probe {
        action: ProbeAction::TcpSocket { port: 1 },
        initial_delay_seconds: 0,
        period_seconds: 10,
        timeout_seconds: 1,
        failure_threshold: 3,
        success_threshold: 1,
    };
    let seconds = |v: &Value, key: &str, min: u64, ctx: &mut Ctx<'_>| {
        bounded(v, min, 3600, "seconds", &join(path, key), &mut ctx.sink)
            .and_then(|n| u32::try_from(n).ok())
    };
    for (key, val) in obj {
        let at = join(path, key);
        match key.as_str() {
            "exec" => actions.extend(exec(val, &at, ctx)),
            "httpGet" => actions.extend(http_get(val, &at, ctx)),
            "tcpSocket" => actions.extend(tcp_socket(val, &at, ctx)),
            "initialDelaySeconds" => {
                p.initial_delay_seconds = seconds(val, key, 0, ctx).unwrap_or(0);
            }
            "periodSeconds" => p.period_seconds = seconds(val, key, 1, ctx).unwrap_or(10),
            "timeoutSeconds" => p.timeout_seconds = seconds(val, key, 1, ctx).unwrap_or(1),
            "failureThreshold" => {
                p.failure_threshold = bounded(val, 1, 100, "", &at, &mut ctx.sink)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(3);
            }
            "successThreshold" => {
                let n = bounded(val, 1, 100, "", &at, &mut ctx.sink)
                    .and_then(|n| u32::try_from(n).ok());
                if kind != Kind::Readiness && n.is_some_and(|n| n != 1) {
                    ctx.sink
                        .add(&at, "must be 1 for a liveness or startup probe");
                }
                p.success_threshold = n.unwrap_or(1);
            }
            _ => unexpected(&at, &mut ctx.sink),
        }
    }
    let handlers = ["exec", "httpGet", "tcpSocket"];
    match handlers.iter().filter(|h| obj.contains_key(**h)).count() {
        0 => ctx
            .sink
            .add(path, "must have one of exec, httpGet or tcpSocket"),
        1 => {}
        _ => ctx
            .sink
            .add(path, "must have only one of exec, httpGet or tcpSocket"),
    }
    p.action = actions.pop()?;
    (ctx.sink.count() == before).then_some(p)
}

fn exec(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<ProbeAction> {
    let obj = object(v, path, &mut ctx.sink)?;
    let mut command = None;
    for (key, val) in obj {
        let at = join(path, key);
        match key.as_str() {
            "command" => {
                let c = string_list(val, &at, ctx);
                if c.is_empty() {
                    ctx.sink.add(&at, "must name a command");
                } else if c.len() > ctx.limits.max_command_items {
                    ctx.sink.add(
                        &at,
                        format!("must have at most {} items", ctx.limits.max_command_items),
                    );
                }
                command = Some(c);
            }
            _ => unexpected(&at, &mut ctx.sink),
        }
    }
    if command.is_none() {
        required(path, "command", &mut ctx.sink);
    }
    Some(ProbeAction::Exec { command: command? })
}

/// `host`: refused, the probe targets the capsule.
fn no_host(at: &str, ctx: &mut Ctx<'_>) {
    ctx.sink.add(
        at,
        "is not supported: a probe always targets its own capsule",
    );
}

fn http_get(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<ProbeAction> {
    let obj = object(v, path, &mut ctx.sink)?;
    let (mut probe_path, mut probe_port, mut headers) = ("/".to_owned(), None, Vec::new());
    for (key, val) in obj {
        let at = join(path, key);
        match key.as_str() {
            "path" => {
                if let Some(s) = string(val, &at, &mut ctx.sink) {
                    if !s.starts_with('/')
                        || s.len() > MAX_PATH
                        || s.chars().any(|c| c.is_control() || c == ' ')
                    {
                        ctx.sink.add(
                            &at,
                            format!("must start with '/', be at most {MAX_PATH} characters and hold no spaces or control characters"),
                        );
                    }
                    probe_path = s.to_owned();
                }
            }
            "port" => probe_port = port(val, &at, &mut ctx.sink),
            "scheme" => {
                if string(val, &at, &mut ctx.sink).is_some_and(|s| s != "HTTP") {
                    ctx.sink
                        .add(&at, "must be HTTP (HTTPS probes are not supported)");
                }
            }
            "httpHeaders" => headers = http_headers(val, &at, ctx),
            "host" => no_host(&at, ctx),
            _ => unexpected(&at, &mut ctx.sink),
        }
    }
    if !obj.contains_key("port") {
        required(path, "port", &mut ctx.sink);
    }
    Some(ProbeAction::HttpGet {
        path: probe_path,
        port: probe_port?,
        headers,
    })
}

fn http_headers(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Vec<(String, String)> {
    let Some(items) = array(v, path, &mut ctx.sink) else {
        return Vec::new();
    };
    if items.len() > MAX_HEADERS {
        ctx.sink
            .add(path, format!("must have at most {MAX_HEADERS} entries"));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(obj) = object(item, &p, &mut ctx.sink) else {
            continue;
        };
        let (mut name, mut value) = (None, None);
        for (key, val) in obj {
            let at = join(&p, key);
            match key.as_str() {
                "name" => {
                    name = string(val, &at, &mut ctx.sink).filter(|s| {
                        let ok = !s.is_empty()
                            && s.len() <= 128
                            && s.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                        if !ok {
                            ctx.sink
                                .add(&at, "must be a header name (letters, digits, '-', '_')");
                        }
                        ok
                    });
                }
                "value" => {
                    value = string(val, &at, &mut ctx.sink)
                        .filter(|s| check_free_text(s, 1024, &at, &mut ctx.sink));
                }
                _ => unexpected(&at, &mut ctx.sink),
            }
        }
        for key in ["name", "value"] {
            if !obj.contains_key(key) {
                required(&p, key, &mut ctx.sink);
            }
        }
        if let (Some(n), Some(v)) = (name, value) {
            out.push((n.to_owned(), v.to_owned()));
        }
    }
    out
}

fn tcp_socket(v: &Value, path: &str, ctx: &mut Ctx<'_>) -> Option<ProbeAction> {
    let obj = object(v, path, &mut ctx.sink)?;
    let mut probe_port = None;
    for (key, val) in obj {
        let at = join(path, key);
        match key.as_str() {
            "port" => probe_port = port(val, &at, &mut ctx.sink),
            "host" => no_host(&at, ctx),
            _ => unexpected(&at, &mut ctx.sink),
        }
    }
    if !obj.contains_key("port") {
        required(path, "port", &mut ctx.sink);
    }
    Some(ProbeAction::TcpSocket { port: probe_port? })
}
