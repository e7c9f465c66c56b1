//! OpenID Connect bearer tokens against the real provider devstack runs (node-oidc-provider,
//! `ZUN_TEST_OIDC_*`): its JWT access tokens drive identity and policy beside Keystone tokens
//! in the same app; tokens for another audience, expired, forged, unsigned, HMAC-signed or
//! signed by rotated-out keys get 401 with an `invalid_token` challenge; rotated keys are
//! picked up without a restart, and unknown key ids refetch the JWKS at most once per interval.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use openidconnect::core::{
    CoreHmacKey, CoreJsonWebKey, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey,
};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use serde_json::{json, Value};
use test_support::env;

use crate::common::{self, Resp, TestApi};

/// Tests that take tokens share the provider's keys; the rotation test changes them, alone.
static KEYS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn issuer() -> String {
    env("ZUN_TEST_OIDC_ISSUER")
}

fn audience() -> String {
    env("ZUN_TEST_OIDC_AUDIENCE")
}

/// The app's configuration: Keystone as the strategy (devstack's), plus the provider as an
/// `[oidc]` issuer with a project per client.
fn config(leeway: u64, refresh: u64) -> String {
    config_with(leeway, refresh, "")
}

/// [`config`] with more `[oidc]` keys.
fn config_with(leeway: u64, refresh: u64, oidc: &str) -> String {
    format!(
        "[auth]\nstrategy = \"keystone\"\n[keystone]\nauth_url = \"{ks}\"\n\
         www_authenticate_uri = \"http://127.0.0.1:5000\"\npassword = \"{pw}\"\n\
         [oidc]\nleeway_seconds = {leeway}\njwks_refresh_min_seconds = {refresh}\n{oidc}\
         [[oidc.issuers]]\nissuer = \"{iss}\"\naudiences = [\"{aud}\"]\n\
         [oidc.issuers.clients.capsule-ci]\nproject = \"p-oidc\"\nroles = [\"member\", \"reader\"]\n\
         [oidc.issuers.clients.capsule-es]\nproject = \"p-oidc-es\"\nroles = [\"member\"]\n\
         [oidc.issuers.clients.capsule-short]\nproject = \"p-oidc\"\nroles = [\"reader\"]\n",
        ks = env("ZUN_TEST_KEYSTONE_URL"),
        pw = env("ZUN_TEST_SERVICE_PASSWORD"),
        iss = issuer(),
        aud = audience(),
    )
}

/// The provider's discovery document.
async fn discovery() -> Value {
    let url = format!("{}/.well-known/openid-configuration", issuer());
    let resp = reqwest::get(&url).await.unwrap_or_else(|e| {
        panic!("the OIDC provider at {url} does not answer ({e}): start it with devstack/stack.sh")
    });
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    resp.json().await.unwrap()
}

/// A client-credentials access token of the client whose variables start with `prefix`
/// (`ZUN_TEST_OIDC_`, `ZUN_TEST_OIDC_SHORT_`, `ZUN_TEST_OIDC_ES_`) for `resource`.
async fn token(prefix: &str, resource: &str) -> String {
    let d = discovery().await;
    let enc = |s: String| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = STANDARD.encode(format!(
        "{}:{}",
        enc(env(&format!("{prefix}CLIENT_ID"))),
        enc(env(&format!("{prefix}CLIENT_SECRET")))
    ));
    let resp = reqwest::Client::new()
        .post(d["token_endpoint"].as_str().unwrap())
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "capsule"),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "token of {prefix}: {}", body["error"]);
    body["access_token"].as_str().unwrap().to_owned()
}

/// The header and claims of `jwt`, not verified.
fn parts(jwt: &str) -> (Value, Value) {
    let mut p = jwt.split('.');
    let mut next =
        || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p.next().unwrap()).unwrap()).unwrap();
    (next(), next())
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A token of `header` and `claims` signed by `key` with `alg`.
fn signed(
    header: &Value,
    claims: &Value,
    key: &impl PrivateSigningKey<VerificationKey = CoreJsonWebKey>,
    alg: &CoreJwsSigningAlgorithm,
) -> String {
    let input = format!("{}.{}", b64json(header), b64json(claims));
    let sig = key.sign(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Claims as the provider's, valid for ten minutes.
fn claims_like_the_providers() -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({"iss": issuer(), "sub": "capsule-ci", "client_id": "capsule-ci", "aud": audience(),
           "iat": now, "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string(), "scope": "capsule"})
}

/// The provider's current kids of `alg`.
async fn provider_kids(alg: &str) -> Vec<String> {
    let d = discovery().await;
    let jwks: Value = reqwest::get(d["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn call(
    api: &TestApi,
    method: Method,
    uri: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut h = vec![("openstack-api-version", "container 1.40")];
    if let Some(a) = &auth {
        h.push(("authorization", a.as_str()));
    }
    api.call(method, uri, None, body.as_ref(), &h).await
}

async fn list(api: &TestApi, bearer: &str) -> Resp {
    call(api, Method::GET, "/v1/capsules/", Some(bearer), None).await
}

/// The `WWW-Authenticate` values of `r`.
fn challenges(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// `r` is the 401 of a refused bearer token, for `why`, with Keystone's challenge beside it.
#[track_caller]
fn assert_invalid_token(r: &Resp, why: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {:?}", r.json);
    assert_eq!(
        challenges(r),
        [
            format!("Bearer error=\"invalid_token\", error_description=\"{why}\""),
            "Keystone uri=\"http://127.0.0.1:5000\"".to_owned()
        ]
    );
    assert_eq!(
        r.json,
        json!({"error": {"code": 401, "title": "Unauthorized",
               "message": "The request you have made requires authentication."}})
    );
}

#[tokio::test]
async fn ci_token_lists_creates_and_deletes_in_the_mapped_project() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(30, 10)).await;
    let tok = token("ZUN_TEST_OIDC_", &audience()).await;
    let (header, _) = parts(&tok);
    assert_eq!(header["typ"], "at+jwt");
    let r = call(
        &api,
        Method::POST,
        "/v1/capsules",
        Some(&tok),
        Some(json!({"template": common::minimal("oidc-web")})),
    )
    .await;
    // No compute host: 202 with the capsule in Error, in the client's mapped project.
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert_eq!(r.json["project_id"], "p-oidc");
    assert_eq!(r.json["user_id"], "capsule-ci");
    let uuid = r.json["uuid"].as_str().unwrap().to_owned();
    let l = list(&api, &tok).await;
    assert_eq!(l.status, StatusCode::OK, "{:?}", l.json);
    let listed: Vec<&str> = l.json["capsules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [uuid.as_str()]);
    let d = call(
        &api,
        Method::DELETE,
        &format!("/v1/capsules/{uuid}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT, "{:?}", d.json);
    let g = call(
        &api,
        Method::GET,
        &format!("/v1/capsules/{uuid}"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn es256_tokens_are_accepted() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(30, 10)).await;
    let tok = token("ZUN_TEST_OIDC_ES_", &audience()).await;
    assert_eq!(parts(&tok).0["alg"], "ES256");
    let r = call(
        &api,
        Method::POST,
        "/v1/capsules",
        Some(&tok),
        Some(json!({"template": common::minimal("oidc-es")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert_eq!(r.json["project_id"], "p-oidc-es");
    assert_eq!(
        list(&api, &tok).await.json["capsules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn tokens_for_another_audience_are_refused() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(30, 10)).await;
    let tok = token("ZUN_TEST_OIDC_", &env("ZUN_TEST_OIDC_OTHER_AUDIENCE")).await;
    assert_eq!(
        parts(&tok).1["aud"],
        env("ZUN_TEST_OIDC_OTHER_AUDIENCE").as_str()
    );
    assert_invalid_token(&list(&api, &tok).await, "audience not accepted");
}

#[tokio::test]
async fn short_tokens_are_refused_once_expired_beyond_the_leeway() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(1, 10)).await;
    let tok = token("ZUN_TEST_OIDC_SHORT_", &audience()).await;
    let exp = parts(&tok).1["exp"].as_u64().unwrap();
    // Valid now (and cached)...
    assert_eq!(list(&api, &tok).await.status, StatusCode::OK);
    // ...refused once exp + 1 s of leeway has passed, cache or not.
    let until = UNIX_EPOCH + Duration::from_secs(exp + 1) + Duration::from_millis(200);
    if let Ok(wait) = until.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    assert_invalid_token(&list(&api, &tok).await, "token expired");
}

#[tokio::test]
async fn tokens_signed_by_a_key_the_provider_never_had_are_refused() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(30, 10)).await;
    // A valid token first: the app has the provider's keys.
    assert_eq!(
        list(&api, &token("ZUN_TEST_OIDC_", &audience()).await)
            .await
            .status,
        StatusCode::OK
    );
    let pem = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
        .unwrap()
        .to_pkcs1_pem(LineEnding::LF)
        .unwrap();
    let kid = provider_kids("RS256").await.remove(0);
    let key =
        CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new(kid.clone()))).unwrap();
    let rs256 = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let claims = claims_like_the_providers();
    // The provider's kid, our key.
    let forged = signed(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}),
        &claims,
        &key,
        &rs256,
    );
    assert_invalid_token(&list(&api, &forged).await, "invalid signature");
    // No kid: every RS256 key of the provider is tried, none verifies.
    let forged = signed(
        &json!({"alg": "RS256", "typ": "at+jwt"}),
        &claims,
        &key,
        &rs256,
    );
    assert_invalid_token(&list(&api, &forged).await, "invalid signature");
    // A kid of its own.
    let forged = signed(
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "forged-1"}),
        &claims,
        &key,
        &rs256,
    );
    assert_invalid_token(&list(&api, &forged).await, "unknown signing key");
    // A real token with its signature replaced by ours.
    let real = token("ZUN_TEST_OIDC_", &audience()).await;
    let (h, c) = parts(&real);
    let spliced = signed(&h, &c, &key, &rs256);
    assert_invalid_token(&list(&api, &spliced).await, "invalid signature");
}

#[tokio::test]
async fn unsigned_and_hmac_tokens_are_refused() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(30, 10)).await;
    let claims = claims_like_the_providers();
    let kid = provider_kids("RS256").await.remove(0);
    let none = format!(
        "{}.{}.",
        b64json(&json!({"alg": "none", "typ": "at+jwt"})),
        b64json(&claims)
    );
    assert_invalid_token(&list(&api, &none).await, "signing algorithm not accepted");
    let none = format!(
        "{}.{}.",
        b64json(&json!({"alg": "none", "kid": kid})),
        b64json(&claims)
    );
    assert_invalid_token(&list(&api, &none).await, "signing algorithm not accepted");
    // HS256 with the client's secret, as a confused verifier would check it.
    let hmac = CoreHmacKey::new(env("ZUN_TEST_OIDC_CLIENT_SECRET").into_bytes());
    let hs = signed(
        &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
        &claims,
        &hmac,
        &CoreJwsSigningAlgorithm::HmacSha256,
    );
    assert_invalid_token(&list(&api, &hs).await, "signing algorithm not accepted");
}

#[tokio::test]
async fn garbage_and_missing_credentials_get_401() {
    let api = TestApi::new(&config(30, 10)).await;
    for garbage in ["not-a-token", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"] {
        assert_invalid_token(&list(&api, garbage).await, "malformed token");
    }
    let r = call(&api, Method::GET, "/v1/capsules/", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&r),
        [
            "Keystone uri=\"http://127.0.0.1:5000\"",
            "Bearer realm=\"capsule\""
        ]
    );
    // A token of an issuer that is not configured.
    let mut claims = claims_like_the_providers();
    claims["iss"] = json!("http://127.0.0.1:1/elsewhere");
    let t = format!(
        "{}.{}.c2ln",
        b64json(&json!({"alg": "RS256", "kid": "x"})),
        b64json(&claims)
    );
    assert_invalid_token(&list(&api, &t).await, "unknown issuer");
}

/// [`config`] with `discovery_url` set on the issuer.
fn config_discovering_at(url: &str) -> String {
    config(30, 10).replacen(
        "audiences = [",
        &format!("discovery_url = \"{url}\"\naudiences = ["),
        1,
    )
}

#[tokio::test]
async fn an_explicit_discovery_url_is_followed() {
    let _keys = KEYS.read().await;
    let tok = token("ZUN_TEST_OIDC_ES_", &audience()).await;
    // The provider's own document, served at a path the default would never ask: tokens verify.
    let real = discovery().await;
    let served = DocServer::start(vec![("/elsewhere/discovery", real.clone())]).await;
    let api = TestApi::new(&config_discovering_at(&served.url("/elsewhere/discovery"))).await;
    assert_eq!(list(&api, &tok).await.status, StatusCode::OK);
    assert!(
        served.hits("/elsewhere/discovery") >= 1,
        "the configured URL was never asked"
    );
    // The same document naming a JWKS without the provider's keys: the same token is refused.
    // Were the setting ignored, the default URL (the real provider) would verify it.
    let mut keyless = real;
    let other = DocServer::start(vec![("/jwks", json!({"keys": []}))]).await;
    keyless["jwks_uri"] = Value::String(other.url("/jwks"));
    let served = DocServer::start(vec![("/keyless/discovery", keyless)]).await;
    let api = TestApi::new(&config_discovering_at(&served.url("/keyless/discovery"))).await;
    assert_invalid_token(&list(&api, &tok).await, "unknown signing key");
    assert!(
        served.hits("/keyless/discovery") >= 1,
        "the configured URL was never asked"
    );
    assert!(
        other.hits("/jwks") >= 1,
        "the configured document's JWKS was never asked"
    );
}

/// A tiny HTTP server on loopback answering GETs of fixed paths with fixed JSON, counting hits.
struct DocServer {
    addr: std::net::SocketAddr,
    hits: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DocServer {
    async fn start(docs: Vec<(&str, Value)>) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let docs: std::collections::HashMap<String, String> = docs
            .into_iter()
            .map(|(p, v)| (p.to_owned(), v.to_string()))
            .collect();
        let hits = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let counted = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                *counted.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                let resp = match docs.get(&path) {
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\
                             connection: close\r\n\r\n"
                        .to_owned(),
                };
                let _ = conn.write_all(resp.as_bytes()).await;
            }
        });
        Self { addr, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for DocServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn an_unreachable_provider_gets_503_and_the_app_still_serves() {
    let _keys = KEYS.read().await;
    // Nothing listens on port 1: discovery fails at start and again on use.
    let api = TestApi::new(&config_discovering_at(
        "http://127.0.0.1:1/.well-known/openid-configuration",
    ))
    .await;
    let tok = token("ZUN_TEST_OIDC_", &audience()).await;
    let r = list(&api, &tok).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.json);
    assert_eq!(
        r.detail(),
        "The identity provider is temporarily unavailable."
    );
    // Keystone tokens are not affected.
    let (ks, _) = keystone_demo_token().await;
    let h = [("x-auth-token", ks.as_str())];
    let r = api.call(Method::GET, "/v1/capsules/", None, None, &h).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// A project-scoped Keystone token of `demo`, and its project id.
async fn keystone_demo_token() -> (String, String) {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"name": "Default"}, "password": env("ZUN_TEST_DEMO_PASSWORD")}}},
        "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}}}});
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/auth/tokens?nocatalog",
            env("ZUN_TEST_KEYSTONE_URL")
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "Keystone token of demo");
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

#[tokio::test]
async fn keystone_tokens_still_work_beside_bearer_tokens() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(30, 10)).await;
    let bearer = token("ZUN_TEST_OIDC_", &audience()).await;
    let (ks, demo_project) = keystone_demo_token().await;
    let ks_call = |method: Method, uri: String, body: Option<Value>| {
        let api = &api;
        let ks = ks.clone();
        async move {
            let h = [
                ("openstack-api-version", "container 1.40"),
                ("x-auth-token", ks.as_str()),
            ];
            api.call(method, &uri, None, body.as_ref(), &h).await
        }
    };
    let r = ks_call(
        Method::POST,
        "/v1/capsules".into(),
        Some(json!({"template": common::minimal("ks")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert_eq!(r.json["project_id"], demo_project.as_str());
    let r = call(
        &api,
        Method::POST,
        "/v1/capsules",
        Some(&bearer),
        Some(json!({"template": common::minimal("oidc")})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert_eq!(r.json["project_id"], "p-oidc");
    // Each sees its own project's capsule only.
    let names = |r: &Resp| -> Vec<String> {
        r.json["capsules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&ks_call(Method::GET, "/v1/capsules/".into(), None).await),
        ["ks"]
    );
    assert_eq!(names(&list(&api, &bearer).await), ["oidc"]);
    // A bad Keystone token is Keystone's 401, with the bearer challenge beside it.
    let h = [("x-auth-token", "not-a-token")];
    let r = api.call(Method::GET, "/v1/capsules/", None, None, &h).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&r),
        [
            "Keystone uri=\"http://127.0.0.1:5000\"",
            "Bearer realm=\"capsule\""
        ]
    );
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_the_old_ones_refused() {
    let _keys = KEYS.write().await;
    let api = TestApi::new(&config(30, 10)).await;
    let iss = issuer();
    let old = token("ZUN_TEST_OIDC_", &audience()).await;
    let old_es = token("ZUN_TEST_OIDC_ES_", &audience()).await;
    assert_eq!(list(&api, &old).await.status, StatusCode::OK);
    assert_eq!(list(&api, &old_es).await.status, StatusCode::OK);
    let fetches = api.state.auth.oidc().unwrap().jwks_fetches(&iss).unwrap();

    let out = tokio::process::Command::new(env("ZUN_TEST_OIDC_ROTATE"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "rotate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_kids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    assert_eq!(new_kids.len(), 2, "{new_kids:?}");

    // A new token has a new kid: the app refetches the JWKS once and accepts it.
    let new = token("ZUN_TEST_OIDC_", &audience()).await;
    let kid = parts(&new).0["kid"].as_str().unwrap().to_owned();
    assert!(new_kids.contains(&kid), "{kid} not in {new_kids:?}");
    assert_eq!(list(&api, &new).await.status, StatusCode::OK);
    assert_eq!(
        api.state.auth.oidc().unwrap().jwks_fetches(&iss),
        Some(fetches + 1)
    );
    let new_es = token("ZUN_TEST_OIDC_ES_", &audience()).await;
    assert_eq!(list(&api, &new_es).await.status, StatusCode::OK);
    // The tokens of before: their keys are gone, even though they were cached.
    assert_invalid_token(&list(&api, &old).await, "unknown signing key");
    assert_invalid_token(&list(&api, &old_es).await, "unknown signing key");
    // Within the interval no further refetch happened for them.
    assert_eq!(
        api.state.auth.oidc().unwrap().jwks_fetches(&iss),
        Some(fetches + 1)
    );
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    let _keys = KEYS.read().await;
    let api = TestApi::new(&config(30, 2)).await;
    let iss = issuer();
    // A valid token first: discovery is done.
    assert_eq!(
        list(&api, &token("ZUN_TEST_OIDC_", &audience()).await)
            .await
            .status,
        StatusCode::OK
    );
    let oidc = || api.state.auth.oidc().unwrap();
    let before = oidc().jwks_fetches(&iss).unwrap();
    // Unknown kids never reach a signature check: no need to sign them.
    let unknown = |n: usize| {
        format!(
            "{}.{}.c2ln",
            b64json(
                &json!({"alg": "RS256", "typ": "at+jwt", "kid": format!("unknown-{n}-{}", uuid::Uuid::new_v4())})
            ),
            b64json(&claims_like_the_providers())
        )
    };
    let t0 = std::time::Instant::now();
    // 20 at once: one refetch, the others wait for it and use its result.
    let mut set = tokio::task::JoinSet::new();
    for n in 0..20 {
        let state = api.state.clone();
        let t = unknown(n);
        set.spawn(async move { state.auth.oidc().unwrap().validate(&t).await.is_err() });
    }
    while let Some(refused) = set.join_next().await {
        assert!(refused.unwrap());
    }
    // Then 10 one after the other: too soon for another.
    for n in 20..30 {
        assert_invalid_token(&list(&api, &unknown(n)).await, "unknown signing key");
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the burst took {:?}",
        t0.elapsed()
    );
    assert_eq!(oidc().jwks_fetches(&iss), Some(before + 1));
    // Once the interval has passed, one more.
    tokio::time::sleep(
        Duration::from_secs(2).saturating_sub(t0.elapsed()) + Duration::from_millis(100),
    )
    .await;
    for n in 30..35 {
        assert_invalid_token(&list(&api, &unknown(n)).await, "unknown signing key");
    }
    assert_eq!(oidc().jwks_fetches(&iss), Some(before + 2));
}
