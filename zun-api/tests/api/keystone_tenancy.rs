//! Tenancy and policy with real Keystone tokens, on all three APIs: what a member of one
//! project makes, another project neither sees nor changes (404), a reader of the project sees
//! but cannot change (403), and an admin sees across projects when asking for it. Runs on
//! SQLite and, with `ZUN_TEST_API_DB=postgres`, on PostgreSQL.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use test_support::env;

use crate::common::{Api, Resp, TestApi};
use crate::keystone::{config, token};

/// A request to `api` with a Keystone token.
async fn call(
    t: &TestApi,
    api: Api,
    method: Method,
    uri: &str,
    tok: &str,
    body: Option<Value>,
) -> Resp {
    let host = match api {
        Api::Capsule => "zun.test:9517",
        Api::Network => "net.test:9696",
        Api::Volume => "vol.test:8776",
    };
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host)
        .header("x-auth-token", tok)
        .header("openstack-api-version", "container 1.40");
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
    t.send_to(api, b.body(body).unwrap()).await
}

#[tokio::test]
async fn projects_and_roles_hold_with_keystone_tokens_on_every_api() {
    let t = TestApi::new(&config("")).await;
    let (demo, demo_project) = token("demo", &env("ZUN_TEST_DEMO_PASSWORD"), "demo").await;
    let (alt, _) = token("alt_demo", &env("ZUN_TEST_ALT_DEMO_PASSWORD"), "alt_demo").await;
    let (reader, _) = token("demo-reader", &env("ZUN_TEST_READER_PASSWORD"), "demo").await;
    let (admin, _) = token("admin", &env("ZUN_TEST_ADMIN_PASSWORD"), "admin").await;

    // Capsules (no compute host here: a created capsule ends in Error, still demo's).
    let template = json!({"template": {"kind": "capsule", "capsuleVersion": "beta",
        "metadata": {"name": "kt"}, "spec": {"containers": [{"image": "busybox"}]}}});
    let r = call(
        &t,
        Api::Capsule,
        Method::POST,
        "/v1/capsules",
        &demo,
        Some(template.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let uuid = r.json["uuid"].as_str().unwrap().to_owned();
    let path = format!("/v1/capsules/{uuid}");
    let r = call(
        &t,
        Api::Capsule,
        Method::POST,
        "/v1/capsules",
        &reader,
        Some(template),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a reader creates: {:?}",
        r.json
    );
    let r = call(&t, Api::Capsule, Method::GET, &path, &reader, None).await;
    assert_eq!(r.status, StatusCode::OK, "a reader reads: {:?}", r.json);
    assert_eq!(r.json["project_id"], demo_project.as_str());
    let r = call(&t, Api::Capsule, Method::DELETE, &path, &reader, None).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a reader deletes: {:?}",
        r.json
    );
    for method in [Method::GET, Method::DELETE] {
        let r = call(&t, Api::Capsule, method.clone(), &path, &alt, None).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "another project {method}s: {:?}",
            r.json
        );
    }
    let r = call(&t, Api::Capsule, Method::GET, "/v1/capsules", &alt, None).await;
    assert_eq!(r.json["capsules"], json!([]), "another project lists");
    let r = call(
        &t,
        Api::Capsule,
        Method::GET,
        "/v1/capsules?all_projects=1",
        &alt,
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a member lists all projects"
    );
    let r = call(
        &t,
        Api::Capsule,
        Method::GET,
        "/v1/capsules?all_projects=1",
        &admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let listed: Vec<&str> = r.json["capsules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["uuid"].as_str())
        .collect();
    assert!(
        listed.contains(&uuid.as_str()),
        "the admin lists all: {listed:?}"
    );

    // Volumes (no compute host: a created volume ends in error, still demo's).
    let r = call(
        &t,
        Api::Volume,
        Method::POST,
        "/v3/volumes",
        &demo,
        Some(json!({"volume": {"size": 1, "name": "kt"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let vol = format!("/v3/volumes/{}", r.json["volume"]["id"].as_str().unwrap());
    let r = call(
        &t,
        Api::Volume,
        Method::POST,
        "/v3/volumes",
        &reader,
        Some(json!({"volume": {"size": 1}})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a reader creates a volume: {:?}",
        r.json
    );
    assert_eq!(
        call(&t, Api::Volume, Method::GET, &vol, &reader, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&t, Api::Volume, Method::GET, &vol, &alt, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&t, Api::Volume, Method::DELETE, &vol, &alt, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Security groups.
    let r = call(
        &t,
        Api::Network,
        Method::POST,
        "/v2.0/security-groups",
        &demo,
        Some(json!({"security_group": {"name": "kt"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let group = format!(
        "/v2.0/security-groups/{}",
        r.json["security_group"]["id"].as_str().unwrap()
    );
    let r = call(
        &t,
        Api::Network,
        Method::POST,
        "/v2.0/security-groups",
        &reader,
        Some(json!({"security_group": {"name": "no"}})),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a reader creates a group: {:?}",
        r.json
    );
    assert_eq!(
        call(&t, Api::Network, Method::GET, &group, &reader, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&t, Api::Network, Method::GET, &group, &alt, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&t, Api::Network, Method::DELETE, &group, &alt, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // demo cleans up what is demo's; the schema or directory goes with the API.
    assert_eq!(
        call(&t, Api::Network, Method::DELETE, &group, &demo, None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}
