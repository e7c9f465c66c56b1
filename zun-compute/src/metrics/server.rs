//! The agent's own small HTTP listener (`[metrics] listen`; loopback by default, and it asks
//! for no credentials): `GET /metrics` (OpenMetrics text, the host's figures read at the
//! scrape) and `GET /healthz` (200 while heartbeats reach the broker, 503 saying why not).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rpc::Bus;
use tokio::sync::watch;

use super::{metrics, Snapshot, CONTENT_TYPE};
use crate::config::MetricsConfig;
use crate::runtime::RuntimeDriver;

/// Heartbeats missed before the agent calls itself unhealthy.
const MISSED_HEARTBEATS: u32 = 3;

/// Whether the agent's heartbeats reach the broker.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    every: Duration,
    last: Mutex<(Option<Instant>, Option<String>)>,
}

impl Health {
    /// The health of an agent that sends a heartbeat `every` so often, starting now.
    pub fn new(every: Duration) -> Self {
        Self {
            started: Instant::now(),
            every,
            last: Mutex::new((None, None)),
        }
    }

    /// Notes a heartbeat sent, or why it was not.
    pub fn heartbeat(&self, result: Result<(), String>) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => *last = (Some(Instant::now()), None),
            Err(why) => last.1 = Some(why),
        }
    }

    /// Healthy (with the seconds since the last heartbeat, if any) or why not, at `now`.
    pub fn check(&self, now: Instant) -> Result<Option<f64>, String> {
        let (ok_at, error) = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let patience = self.every * MISSED_HEARTBEATS;
        let since = now.saturating_duration_since(ok_at.unwrap_or(self.started));
        if since <= patience {
            return Ok(ok_at.map(|_| since.as_secs_f64()));
        }
        let what = match ok_at {
            Some(_) => format!("no heartbeat reached the broker for {}s", since.as_secs()),
            None => format!(
                "no heartbeat reached the broker in the {}s since the agent started",
                since.as_secs()
            ),
        };
        Err(match error {
            Some(e) => format!("{what}: {e}"),
            None => what,
        })
    }
}

/// What the listener reads from.
#[derive(Clone, Debug)]
pub struct Source {
    /// The capsules' runtime.
    pub runtime: Arc<dyn RuntimeDriver>,
    /// The broker connection.
    pub bus: Bus,
    /// The heartbeats' health.
    pub health: Arc<Health>,
}

/// Binds `cfg.listen`; `None` when it is empty.
pub fn bind(cfg: &MetricsConfig) -> std::io::Result<Option<std::net::TcpListener>> {
    let listen = cfg.listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Serves `listener` until `stop` turns true.
pub async fn serve(
    listener: std::net::TcpListener,
    source: Source,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .with_state(source);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}

async fn scrape(State(source): State<Source>) -> Response {
    let snapshot = Snapshot {
        capsules: source.runtime.usage().await,
        bus: match &source.bus {
            Bus::Amqp(b) => Some(b.stats()),
            Bus::Memory(_) => None,
        },
    };
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        metrics().render(snapshot),
    )
        .into_response()
}

async fn healthz(State(source): State<Source>) -> Response {
    match source.health.check(Instant::now()) {
        Ok(age) => Json(serde_json::json!({
            "status": "ok",
            "last_heartbeat_seconds_ago": age,
        }))
        .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "unhealthy", "reason": reason })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_while_heartbeats_go_out() {
        let every = Duration::from_secs(10);
        let h = Health::new(every);
        let t0 = h.started;
        assert_eq!(h.check(t0 + Duration::from_secs(29)), Ok(None), "starting");
        let late = h.check(t0 + Duration::from_secs(31)).unwrap_err();
        assert!(late.contains("since the agent started"), "{late}");
        h.heartbeat(Err("broker unreachable".into()));
        let now = Instant::now();
        assert!(h
            .check(now + Duration::from_secs(40))
            .unwrap_err()
            .ends_with(": broker unreachable"));
        h.heartbeat(Ok(()));
        let age = h.check(Instant::now()).unwrap().unwrap();
        assert!(age < 5.0, "{age}");
        let stale = h
            .check(Instant::now() + Duration::from_secs(31))
            .unwrap_err();
        assert!(
            stale.starts_with("no heartbeat reached the broker for 3"),
            "{stale}"
        );
    }
}
