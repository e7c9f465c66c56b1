//! The API's Prometheus metrics: one registry per running API (`prometheus-client`), served as
//! OpenMetrics text on the `[metrics] listen` address. Requests by API, route template, method
//! and status, with their latency; token checks by kind and outcome, and the validators' cache
//! hits; list-cache hits; compute messages published; hosts' reports the conductor handled,
//! and how long they took to arrive; and, read from the database at each scrape, capsules by
//! host and status and the outbox's depth. No label holds a request id, a name, an id or any
//! other value a caller chooses: routes are the router's templates, and every other label has
//! a fixed set of values.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`ApiMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of a handled request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `container` (Zun's), `network` (Neutron's) or `volume` (Cinder's).
    pub api: &'static str,
    /// The route's template (`/v1/capsules/{ident}`), `unmatched` for none.
    pub route: String,
    /// The HTTP method, `other` for a non-standard one.
    pub method: &'static str,
    /// The answer's status code.
    pub status: String,
}

/// Labels of a request's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// As in [`RequestLabels`].
    pub api: &'static str,
    /// As in [`RequestLabels`].
    pub route: String,
    /// As in [`RequestLabels`].
    pub method: &'static str,
}

/// Labels of a token check.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `keystone`, `oidc` or `noauth`.
    pub kind: &'static str,
    /// `valid`, `refused` (401) or `unavailable` (503).
    pub outcome: &'static str,
}

/// Labels of something that went one of a few ways.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// How it went (`hit`/`miss`, `confirmed`/`failed`).
    pub outcome: &'static str,
}

/// Labels of a host's report.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    /// `capsule_state`, `capsule_deleted`, `volume_state`, `container_event` or `heartbeat`.
    pub kind: &'static str,
    /// `applied`, or `retried` (the database refused it for now).
    pub outcome: &'static str,
}

/// Labels of the capsule count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CapsuleLabels {
    /// The compute host, empty when not placed.
    pub host: String,
    /// Zun's status.
    pub status: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn lag_histogram() -> Histogram {
    // 1 ms .. ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The API's metrics. Cheap to clone: every clone records into the same registry.
#[derive(Clone)]
pub struct ApiMetrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    list_cache: Family<OutcomeLabels, Counter>,
    published: Family<OutcomeLabels, Counter>,
    reports: Family<ReportLabels, Counter>,
    report_lag: Family<ReportLabels, Histogram, fn() -> Histogram>,
    capsules: Family<CapsuleLabels, Gauge>,
    outbox: Gauge,
}

impl std::fmt::Debug for ApiMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiMetrics").finish_non_exhaustive()
    }
}

impl ApiMetrics {
    /// A registry with every metric of the API, and `auth`'s own (its token checks and its
    /// validators' cache hits).
    pub fn new(auth: &crate::auth::Authenticator) -> Self {
        let m = Self {
            registry: Arc::new(Mutex::new(Registry::with_prefix("zun_api"))),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            list_cache: Family::default(),
            published: Family::default(),
            reports: Family::default(),
            report_lag: Family::new_with_constructor(lag_histogram),
            capsules: Family::default(),
            outbox: Gauge::default(),
        };
        let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.register(
            "requests",
            "HTTP requests answered, by API, route template, method and status",
            m.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to answer an HTTP request, by API, route template and method",
            m.latency.clone(),
        );
        r.register(
            "token_checks",
            "Callers' credentials checked, by kind and outcome",
            auth.checks().clone(),
        );
        for (kind, hits) in auth.cache_hits() {
            r.register(
                format!("{kind}_token_cache_hits"),
                format!("{kind} tokens answered from the validator's cache"),
                hits,
            );
        }
        r.register(
            "list_cache",
            "Capsule list pages served from the list cache (hit) or rendered (miss)",
            m.list_cache.clone(),
        );
        r.register(
            "rpc_published",
            "Outbox messages published to compute hosts: confirmed by the broker, or failed \
             (kept in the outbox for another try)",
            m.published.clone(),
        );
        r.register(
            "conductor_reports",
            "Compute hosts' reports handled by the conductor, by kind and outcome",
            m.reports.clone(),
        );
        r.register(
            "conductor_report_lag_seconds",
            "From a host sending a report to the conductor handling it",
            m.report_lag.clone(),
        );
        r.register(
            "capsules",
            "Capsules by compute host and status (read from the database when scraped)",
            m.capsules.clone(),
        );
        r.register(
            "outbox_depth",
            "Messages in the outbox not yet confirmed by the broker (read when scraped)",
            m.outbox.clone(),
        );
        drop(r);
        m
    }

    /// Counts a request `api` answered on `route` with `status`, in `elapsed`.
    pub fn request(
        &self,
        api: &'static str,
        route: &str,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                api,
                route: route.to_owned(),
                method,
                status: status.as_u16().to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                api,
                route: route.to_owned(),
                method,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a list page served from the cache (`hit`) or rendered.
    pub fn list_cache(&self, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.list_cache
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The counter of outbox publications, for the dispatcher.
    pub fn published(&self) -> Family<OutcomeLabels, Counter> {
        self.published.clone()
    }

    /// Counts a report of `kind` handled (`applied`) or left for a retry, `lag` after it was
    /// sent.
    pub fn report(&self, kind: &'static str, applied: bool, lag: Duration) {
        let labels = ReportLabels {
            kind,
            outcome: if applied { "applied" } else { "retried" },
        };
        self.reports.get_or_create(&labels).inc();
        self.report_lag
            .get_or_create(&labels)
            .observe(lag.as_secs_f64());
    }

    /// The metrics as OpenMetrics text, with the database's figures read now.
    pub async fn render(&self, db: &db::Database) -> Result<String, db::DbError> {
        let counts = db.capsule_counts().await?;
        let depth = db.outbox_depth().await?;
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Only the series that exist now: a host that is gone, or a status no capsule has
        // any more, is not exported at its last value.
        self.capsules.clear();
        for c in counts {
            self.capsules
                .get_or_create(&CapsuleLabels {
                    host: c.host.unwrap_or_default(),
                    status: c.status,
                })
                .set(c.count);
        }
        self.outbox.set(i64::try_from(depth).unwrap_or(i64::MAX));
        let mut text = String::new();
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        Ok(text)
    }
}

/// The method as a label value: the standard ones by name, anything else `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
