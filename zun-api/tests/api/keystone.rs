//! Authentication against the real Keystone that devstack runs: tokens of real users drive
//! identity and policy; bad, revoked and missing tokens get keystonemiddleware's 401; an
//! unreachable Keystone gets 503.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use test_support::env;

use crate::common::{self, TestApi};

/// Keystone's URL, from devstack's test environment.
fn keystone_url() -> String {
    env("ZUN_TEST_KEYSTONE_URL")
}

/// The app's configuration with Keystone as the authentication strategy, plus `extra`.
pub(crate) fn config(extra: &str) -> String {
    format!(
        "[auth]\nstrategy = \"keystone\"\n[keystone]\nauth_url = \"{}\"\n\
         www_authenticate_uri = \"http://127.0.0.1:5000\"\npassword = \"{}\"\n{extra}",
        keystone_url(),
        env("ZUN_TEST_SERVICE_PASSWORD")
    )
}

/// A project-scoped token of `user` in `project`, and the project's id.
pub(crate) async fn token(user: &str, password: &str, project: &str) -> (String, String) {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
    let resp = reqwest::Client::new()
        .post(format!("{}/auth/tokens?nocatalog", keystone_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "token for {user}");
    let tok = resp.headers()["x-subject-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let v: Value = resp.json().await.unwrap();
    (
        tok,
        v["token"]["project"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn demo() -> (String, String) {
    token("demo", &env("ZUN_TEST_DEMO_PASSWORD"), "demo").await
}

async fn admin() -> (String, String) {
    token("admin", &env("ZUN_TEST_ADMIN_PASSWORD"), "admin").await
}

async fn call(
    api: &TestApi,
    method: Method,
    uri: &str,
    tok: Option<&str>,
    body: Option<Value>,
) -> common::Resp {
    let mut h = vec![("openstack-api-version", "container 1.40")];
    if let Some(t) = tok {
        h.push(("x-auth-token", t));
    }
    api.call(method, uri, None, body.as_ref(), &h).await
}

#[tokio::test]
async fn missing_and_bad_tokens_get_401() {
    let api = TestApi::new(&config("")).await;
    for tok in [None, Some("not-a-token"), Some("gAAAAABinvalid")] {
        let r = call(&api, Method::GET, "/v1/capsules", tok, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{tok:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Keystone uri=\"http://127.0.0.1:5000\"")
        );
        assert_eq!(
            r.json,
            json!({"error": {"code": 401, "title": "Unauthorized",
                   "message": "The request you have made requires authentication."}})
        );
    }
    // The public routes need none.
    assert_eq!(
        call(&api, Method::GET, "/", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&api, Method::GET, "/v1", None, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn tokens_carry_project_roles_and_policy() {
    let api = TestApi::new(&config("")).await;
    let (demo_tok, demo_project) = demo().await;
    let (admin_tok, _) = admin().await;
    let body = json!({"template": common::minimal("kst")});
    let r = call(
        &api,
        Method::POST,
        "/v1/capsules",
        Some(&admin_tok),
        Some(body.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let admin_uuid = r.json["uuid"].as_str().unwrap().to_owned();
    let r = call(
        &api,
        Method::POST,
        "/v1/capsules",
        Some(&demo_tok),
        Some(body),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json["project_id"], demo_project.as_str());
    // demo sees only its own; cannot see, describe or delete admin's.
    let r = call(&api, Method::GET, "/v1/capsules", Some(&demo_tok), None).await;
    assert_eq!(r.json["capsules"].as_array().unwrap().len(), 1);
    for m in [Method::GET, Method::DELETE] {
        let r = call(
            &api,
            m.clone(),
            &format!("/v1/capsules/{admin_uuid}"),
            Some(&demo_tok),
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m}");
    }
    let r = call(
        &api,
        Method::GET,
        "/v1/capsules?all_projects=1",
        Some(&demo_tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // admin (role admin) sees both, and the admin-only host field.
    let r = call(
        &api,
        Method::GET,
        "/v1/capsules?all_projects=1",
        Some(&admin_tok),
        None,
    )
    .await;
    assert_eq!(r.json["capsules"].as_array().unwrap().len(), 2);
    assert!(r.json["capsules"][0]
        .as_object()
        .unwrap()
        .contains_key("host"));
    assert_eq!(api.capsule_count().await, 2);
}

#[tokio::test]
async fn revoked_token_stops_working_within_the_cache_bound() {
    let api = TestApi::new(&config("token_cache_seconds = 1\n")).await;
    let (tok, _) = demo().await;
    assert_eq!(
        call(&api, Method::GET, "/v1/capsules", Some(&tok), None)
            .await
            .status,
        StatusCode::OK
    );
    // Revoke it with the user's own token (a user may revoke their own tokens).
    let resp = reqwest::Client::new()
        .delete(format!("{}/auth/tokens", keystone_url()))
        .header("X-Auth-Token", &tok)
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = call(&api, Method::GET, "/v1/capsules", Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unreachable_keystone_is_503_not_401() {
    // Port 9 (discard) on loopback: nothing listens, so the connection is refused.
    let toml = format!(
        "[auth]\nstrategy = \"keystone\"\n[keystone]\nauth_url = \"http://127.0.0.1:9/v3\"\n\
         password = \"{}\"\ntimeout_seconds = 2\n",
        env("ZUN_TEST_SERVICE_PASSWORD")
    );
    let api = TestApi::new(&toml).await;
    let r = call(&api, Method::GET, "/v1/capsules", Some("whatever"), None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.detail(),
        "The Keystone service is temporarily unavailable."
    );
}
