//! Volume metadata changes at once lose nothing: `POST /volumes/{id}/metadata` (merge),
//! `PUT /volumes/{id}/metadata/{key}` and `DELETE /volumes/{id}/metadata/{key}` from many
//! clients together each take effect, on SQLite and on PostgreSQL.

use crate::common::{TestApi, DEMO};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use zun_api::AppState;

/// How many clients change the metadata at once.
const CLIENTS: usize = 24;

/// `method` on `/v3/demo<path>` of the block-storage API as demo; the status and the body.
async fn call(
    state: &AppState,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("/v3/{}{path}", DEMO.project))
        .header("host", "vol.test:8776")
        .header("x-user-id", DEMO.user)
        .header("x-project-id", DEMO.project)
        .header("x-roles", DEMO.roles);
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
    let resp = zun_api::cinder::router(state.clone())
        .oneshot(b.body(body).expect("request"))
        .await
        .expect("answer");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Runs the race on `api`: every client adds its own key (half by merge, half by key), and
/// deletes one key set before; nothing may be lost.
async fn race(api: &TestApi) {
    let state = &api.state;
    let (status, v) = call(
        state,
        Method::POST,
        "/volumes",
        Some(json!({"volume": {"size": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let id = v["volume"]["id"].as_str().expect("id").to_owned();
    let meta = format!("/volumes/{id}/metadata");
    let old: serde_json::Map<String, Value> = (0..CLIENTS)
        .map(|i| (format!("old{i}"), json!("x")))
        .collect();
    let (status, _) = call(state, Method::PUT, &meta, Some(json!({ "metadata": old }))).await;
    assert_eq!(status, StatusCode::OK);

    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let state = state.clone();
        let meta = meta.clone();
        tasks.push(tokio::spawn(async move {
            let (key, value) = (format!("k{i}"), format!("v{i}"));
            let added = if i % 2 == 0 {
                call(
                    &state,
                    Method::POST,
                    &meta,
                    Some(json!({"metadata": {&key: &value}})),
                )
                .await
            } else {
                let body = json!({"meta": {&key: &value}});
                call(&state, Method::PUT, &format!("{meta}/{key}"), Some(body)).await
            };
            let removed = call(&state, Method::DELETE, &format!("{meta}/old{i}"), None).await;
            (added.0, removed.0)
        }));
    }
    for t in tasks {
        let (added, removed) = t.await.expect("client");
        assert_eq!((added, removed), (StatusCode::OK, StatusCode::OK));
    }
    let (_, v) = call(state, Method::GET, &meta, None).await;
    let want: serde_json::Map<String, Value> = (0..CLIENTS)
        .map(|i| (format!("k{i}"), json!(format!("v{i}"))))
        .collect();
    assert_eq!(v["metadata"], Value::Object(want), "changes were lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_metadata_changes_all_take_effect_on_sqlite() {
    race(&TestApi::on_sqlite("").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_metadata_changes_all_take_effect_on_postgres() {
    race(&TestApi::on_postgres("").await).await;
}
