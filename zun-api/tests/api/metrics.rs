//! The API's Prometheus metrics as a scraper reads them from the metrics listener's router:
//! every request counted under its API, route template, method and status (never an id or a
//! name from the path), token checks, list-cache hits, and the database's figures read at the
//! scrape; with a compute host, the outbox's publications and the conductor's reports.

use axum::body::Body;
use axum::http::{Method, Request};
use test_support::openmetrics::{samples, value, Sample};
use tower::ServiceExt;

use crate::common::{minimal, Api, TestApi, DEMO};
use crate::fake_host::{Stack, HOST};

/// `GET /metrics` on the metrics listener's router, as Prometheus asks it.
async fn scrape(api: &TestApi) -> (String, Vec<Sample>) {
    let req = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let resp = zun_api::http::metrics::router(api.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let s = samples(&text);
    (text, s)
}

fn request(api: &str, route: &str, method: &str, status: &str) -> Vec<(&'static str, String)> {
    vec![
        ("api", api.to_owned()),
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_owned()),
    ]
}

fn requests(s: &[Sample], labels: &[(&'static str, String)]) -> f64 {
    let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    value(s, "zun_api_requests_total", &l)
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_the_database_is_read_at_the_scrape() {
    let api = TestApi::new("").await;
    // No compute host: the capsule is made, and ends in Error.
    let created = api.create(DEMO, minimal("metered")).await;
    assert_eq!(created.status, 202, "{:?}", created.json);
    let uuid = created.json["uuid"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let r = api.get("/v1/capsules", DEMO, Some("1.40")).await;
        assert_eq!(r.status, 200);
    }
    let r = api
        .get(&format!("/v1/capsules/{uuid}"), DEMO, Some("1.40"))
        .await;
    assert_eq!(r.status, 200);
    let r = api.get("/v1/no-such-thing", DEMO, None).await;
    assert_eq!(r.status, 404);
    let r = api
        .net(Method::GET, "/v2.0/security-groups", DEMO, None)
        .await;
    assert_eq!(r.status, 200);
    let req = Request::builder()
        .uri("/v3/volumes")
        .header("x-user-id", DEMO.user)
        .header("x-project-id", DEMO.project)
        .header("x-roles", DEMO.roles)
        .body(Body::empty())
        .unwrap();
    assert_eq!(api.send_to(Api::Volume, req).await.status, 200);

    let (text, s) = scrape(&api).await;
    let c = "container";
    assert_eq!(
        requests(&s, &request(c, "/v1/capsules", "POST", "202")),
        1.0
    );
    assert_eq!(requests(&s, &request(c, "/v1/capsules", "GET", "200")), 2.0);
    let show = request(c, "/v1/capsules/{ident}", "GET", "200");
    assert_eq!(requests(&s, &show), 1.0);
    assert_eq!(requests(&s, &request(c, "unmatched", "GET", "404")), 1.0);
    let groups = request("network", "/v2.0/security-groups", "GET", "200");
    assert_eq!(requests(&s, &groups), 1.0);
    assert_eq!(
        requests(&s, &request("volume", "/v3/volumes", "GET", "200")),
        1.0
    );
    // Every answered request was timed.
    let timed = value(
        &s,
        "zun_api_request_duration_seconds_count",
        &[("api", c), ("route", "/v1/capsules"), ("method", "GET")],
    );
    assert_eq!(timed, 2.0);
    // The first list rendered the page, the second was the cache's.
    assert_eq!(
        value(&s, "zun_api_list_cache_total", &[("outcome", "miss")]),
        1.0
    );
    assert_eq!(
        value(&s, "zun_api_list_cache_total", &[("outcome", "hit")]),
        1.0
    );
    let checks = value(
        &s,
        "zun_api_token_checks_total",
        &[("kind", "noauth"), ("outcome", "valid")],
    );
    assert_eq!(checks, 7.0, "{text}");
    // The database, read now.
    let status = api
        .state
        .db
        .capsule_by_uuid(&db::Scope::All, &uuid)
        .await
        .unwrap();
    let status = status.unwrap().capsule.status;
    let count = value(&s, "zun_api_capsules", &[("host", ""), ("status", &status)]);
    assert_eq!(count, 1.0, "{text}");
    assert_eq!(value(&s, "zun_api_outbox_depth", &[]), 0.0);
    // Bounded labels: nothing a caller chose, nothing that grows with the capsules.
    assert!(!text.contains(&uuid) && !text.contains("metered"), "{text}");
    assert!(!text.contains(DEMO.project), "{text}");

    // A deleted capsule is no longer counted under its last status.
    let r = api.delete(&format!("/v1/capsules/{uuid}"), DEMO).await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    let (text, s) = scrape(&api).await;
    assert!(s.iter().all(|x| x.name != "zun_api_capsules"), "{text}");
}

#[tokio::test]
async fn publications_and_reports_of_a_compute_host_are_counted() {
    let s = Stack::start().await;
    let (text, m) = scrape(&s.api).await;
    assert!(
        value(
            &m,
            "zun_api_rpc_published_total",
            &[("outcome", "confirmed")]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&m, "zun_api_rpc_published_total", &[("outcome", "failed")]),
        0.0
    );
    let applied = |kind| {
        value(
            &m,
            "zun_api_conductor_reports_total",
            &[("kind", kind), ("outcome", "applied")],
        )
    };
    assert!(applied("heartbeat") >= 1.0, "{text}");
    assert!(applied("capsule_state") >= 1.0, "{text}");
    let lag = value(
        &m,
        "zun_api_conductor_report_lag_seconds_count",
        &[("kind", "capsule_state"), ("outcome", "applied")],
    );
    assert_eq!(lag, applied("capsule_state"));
    assert_eq!(
        value(
            &m,
            "zun_api_capsules",
            &[("host", HOST), ("status", "Running")]
        ),
        1.0,
        "{text}"
    );
    s.stop().await;
}
