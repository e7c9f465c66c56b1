//! Every request counted and timed by its API, route template, method and status (a layer
//! each API's router adds after its routing, so the route is the router's template), and the
//! `/metrics` listener that serves them (`[metrics] listen`, no authentication: bind it where
//! only the scraper reaches).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::{ApiMetrics, CONTENT_TYPE};
use crate::state::AppState;

/// The layer's state: the metrics and the API's name (`container`, `network`, `volume`).
pub type Tracked = (ApiMetrics, &'static str);

/// Counts and times the request (as `unmatched` when no route took it).
pub async fn track(State((metrics, api)): State<Tracked>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics.request(api, &route, &method, resp.status(), started.elapsed());
    resp
}

/// `GET /metrics`: the metrics, with the database's figures read now.
async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render(&state.db).await {
        Ok(text) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "cannot read the metrics' figures");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable\n",
            )
                .into_response()
        }
    }
}

/// The metrics listener's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}
