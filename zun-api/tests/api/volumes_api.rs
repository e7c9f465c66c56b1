//! The block-storage (Cinder v3) API through its whole service stack (noauth identities and
//! real Keystone tokens, SQLite): version discovery and microversions, Cinder's shapes and
//! errors, strict bodies that create nothing when refused, quotas, paging, project scoping and
//! roles, and volumes placed on a compute host (an in-process bus and a fake agent answering
//! as one), attached to a capsule and deleted.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use capsule_types::rpc::{compute_queue, ComputeRequest, Envelope, VolumeHostState};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use test_support::env;
use tokio::sync::mpsc;
use tower::ServiceExt;

use crate::common::{heartbeat, Resp, TestApi, Who, ADMIN, ALT, DEMO};

/// A volume id nobody has.
const UNKNOWN: &str = "5a0b4d4c-1d0b-4d4e-8e59-3b6cfa1b1f2a";
/// The base of links (the `Host` of test requests).
const BASE: &str = "http://vol.test:8776";

const READER: Who = Who {
    user: "reader-user",
    project: "demo",
    roles: "reader",
};

/// A request to the block-storage API (`who` none: anonymous), answered in full.
async fn send(
    api: &TestApi,
    method: Method,
    uri: &str,
    who: Option<Who>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "vol.test:8776");
    if let Some(w) = who {
        b = b
            .header("x-user-id", w.user)
            .header("x-project-id", w.project)
            .header("x-roles", w.roles);
    }
    let typed = headers.iter().any(|(k, _)| *k == "content-type");
    if body.is_some() && !typed {
        b = b.header("content-type", "application/json");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = body.map_or_else(Body::empty, |v| Body::from(v.to_string()));
    raw(api, b.body(body).unwrap()).await
}

async fn raw(api: &TestApi, req: Request<Body>) -> Resp {
    let router = zun_api::cinder::router(api.state.clone());
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap();
    let raw = body.to_bytes().to_vec();
    let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        json,
        raw,
    }
}

/// `/v3/<who's project><path>`.
fn url(who: Who, path: &str) -> String {
    format!("/v3/{}{path}", who.project)
}

/// `method` on `/v3/<who's project><path>` as `who`.
async fn call(api: &TestApi, who: Who, method: Method, path: &str, body: Option<Value>) -> Resp {
    send(api, method, &url(who, path), Some(who), body.as_ref(), &[]).await
}

async fn get(api: &TestApi, who: Who, path: &str) -> Resp {
    call(api, who, Method::GET, path, None).await
}

async fn put(api: &TestApi, who: Who, path: &str, body: Value) -> Resp {
    call(api, who, Method::PUT, path, Some(body)).await
}

async fn post(api: &TestApi, who: Who, path: &str, body: Value) -> Resp {
    call(api, who, Method::POST, path, Some(body)).await
}

async fn del(api: &TestApi, who: Who, path: &str) -> Resp {
    call(api, who, Method::DELETE, path, None).await
}

/// A GET at microversion `version` (`3.45`).
async fn get_at(api: &TestApi, who: Who, path: &str, version: &str) -> Resp {
    let h = format!("volume {version}");
    let headers = [("OpenStack-API-Version", h.as_str())];
    send(api, Method::GET, &url(who, path), Some(who), None, &headers).await
}

async fn create(api: &TestApi, who: Who, volume: Value) -> Resp {
    post(api, who, "/volumes", json!({ "volume": volume })).await
}

/// Creates a volume that must be accepted; returns it.
async fn created(api: &TestApi, who: Who, volume: Value) -> Value {
    let r = create(api, who, volume).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    r.json["volume"].clone()
}

/// The ids of the volumes `who` lists with `query`, sorted.
async fn ids(api: &TestApi, who: Who, query: &str) -> Vec<String> {
    let r = get(api, who, &format!("/volumes{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.json);
    sorted(page(&r))
}

/// The ids of a list answer, in its order.
fn page(r: &Resp) -> Vec<String> {
    r.json["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// The `(fault name, message)` of a Cinder error body, checking that `code` is the status.
fn fault(r: &Resp) -> (String, String) {
    let obj = r.json.as_object();
    let obj = obj.unwrap_or_else(|| panic!("not a fault: {:?}", r.json));
    assert_eq!(obj.len(), 1, "{:?}", r.json);
    let (name, body) = obj.iter().next().unwrap();
    assert_eq!(body["code"], r.status.as_u16(), "{:?}", r.json);
    (name.clone(), body["message"].as_str().unwrap().to_owned())
}

/// Asserts `r` is a Cinder fault with this status and name; returns its message.
fn refused(r: &Resp, status: StatusCode, name: &str) -> String {
    assert_eq!(r.status, status, "{:?}", r.json);
    let (n, message) = fault(r);
    assert_eq!(n, name, "{message}");
    message
}

fn bad(r: &Resp) -> String {
    refused(r, StatusCode::BAD_REQUEST, "badRequest")
}

fn missing(r: &Resp) -> String {
    refused(r, StatusCode::NOT_FOUND, "itemNotFound")
}

fn forbidden(r: &Resp) -> String {
    refused(r, StatusCode::FORBIDDEN, "forbidden")
}

#[tokio::test]
async fn versions_microversions_and_fallbacks_as_cinder() {
    let api = TestApi::new("").await;
    let r = send(&api, Method::GET, "/", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
    let v = &r.json["versions"][0];
    assert_eq!(v["id"], "v3.0");
    assert_eq!(v["version"], "3.70");
    assert_eq!(v["min_version"], "3.0");
    let self_link = json!({"rel": "self", "href": format!("{BASE}/v3/")});
    assert_eq!(v["links"][1], self_link);
    // What keystoneauth reads for discovery, without a token.
    let r = send(&api, Method::GET, "/v3/", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["versions"][0]["status"], "CURRENT");
    // Everything else needs a token (keystonemiddleware's 401).
    let r = send(&api, Method::GET, "/v3/demo/volumes", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    let r = get(&api, DEMO, "").await;
    assert_eq!(r.json["versions"][0]["id"], "v3.0");

    // Microversions: echoed with Vary; 3.0 without the header; 406 and 400 as Cinder.
    let r = get(&api, DEMO, "/volumes").await;
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.0"));
    assert_eq!(r.header("vary"), Some("OpenStack-API-Version"));
    let rid = r.header("x-openstack-request-id").unwrap();
    assert!(rid.starts_with("req-"));
    let r = get_at(&api, DEMO, "/volumes", "3.42").await;
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.42"));
    let r = get_at(&api, DEMO, "/volumes", "latest").await;
    assert_eq!(r.header("openstack-api-version"), Some("volume 3.70"));
    let r = get_at(&api, DEMO, "/volumes", "3.71").await;
    let m = refused(&r, StatusCode::NOT_ACCEPTABLE, "computeFault");
    let want = "Version 3.71 is not supported by the API. Minimum is 3.0 and maximum is 3.70.";
    assert_eq!(m, want);
    bad(&get_at(&api, DEMO, "/volumes", "3.x").await);

    // Unknown paths and methods; trailing slashes.
    let m = missing(&get(&api, DEMO, "/snapshots").await);
    assert!(m.contains("no snapshots"), "{m}");
    let r = call(&api, DEMO, Method::PATCH, "/volumes", None).await;
    refused(&r, StatusCode::METHOD_NOT_ALLOWED, "badMethod");
    assert_eq!(get(&api, DEMO, "/volumes/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn create_without_a_compute_host_answers_202_with_an_error_volume() {
    let api = TestApi::new("").await;
    let meta = json!({"k": "v"});
    let body = json!({"size": 1, "name": "data1", "description": "first", "metadata": meta});
    let v = created(&api, DEMO, body).await;
    let vid = id(&v);
    // Cinder's answer when no backend can take it: accepted, then `error`.
    let want = json!({
        "id": vid, "status": "error", "size": 1, "name": "data1", "description": "first",
        "metadata": {"k": "v"}, "availability_zone": "nova", "volume_type": "__DEFAULT__",
        "bootable": "false", "encrypted": false, "multiattach": false, "attachments": [],
        "user_id": "demo-user", "os-vol-tenant-attr:tenant_id": "demo", "snapshot_id": null,
        "source_volid": null, "consistencygroup_id": null, "replication_status": null,
        "updated_at": null, "created_at": v["created_at"],
        "links": [
            {"href": format!("{BASE}/v3/demo/volumes/{vid}"), "rel": "self"},
            {"href": format!("{BASE}/demo/volumes/{vid}"), "rel": "bookmark"},
        ],
    });
    assert_eq!(v, want, "3.0 shape; no admin-only attributes");
    // `2026-11-24T20:28:00.510474`
    let at = v["created_at"].as_str().unwrap();
    assert_eq!(at.len(), 26, "{at}");
    assert_eq!(&at[10..11], "T");
    assert_eq!(&at[19..20], ".");
    // Fields of later microversions appear when asked for.
    let path = format!("/volumes/{vid}");
    let r = get_at(&api, DEMO, &path, "3.70").await;
    let v70 = &r.json["volume"];
    assert_eq!(v70["group_id"], Value::Null);
    assert_eq!(v70["consumes_quota"], true);
    assert_eq!(v70["volume_type_id"], zun_api::cinder::DEFAULT_TYPE_ID);
    assert_eq!(v70["shared_targets"], false);
    assert!(v70.get("cluster_name").is_none(), "admin only");
    // Show, then delete: it has no host, so it is gone at once.
    assert_eq!(get(&api, DEMO, &path).await.json["volume"], v);
    let r = del(&api, DEMO, &path).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert!(r.raw.is_empty());
    let m = missing(&get(&api, DEMO, &path).await);
    assert_eq!(m, format!("Volume {vid} could not be found."));
    // A name is not an id (clients look it up by name in the list next).
    let m = missing(&get(&api, DEMO, "/volumes/data1").await);
    assert_eq!(m, "Volume data1 could not be found.");
}

#[tokio::test]
async fn lists_filter_page_and_count() {
    let api = TestApi::new("").await;
    let a = id(&created(&api, DEMO, json!({"size": 1, "name": "a"})).await);
    let b1 = id(&created(&api, DEMO, json!({"size": "2", "name": "b"})).await);
    let b2 = id(&created(&api, DEMO, json!({"size": 3, "name": "b"})).await);

    let r = get(&api, DEMO, "/volumes").await;
    let first = r.json["volumes"][0].clone();
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name", "links"]);
    let href = format!("{BASE}/v3/demo/volumes/{}", id(&first));
    assert_eq!(first["links"][0]["href"], href);
    assert!(r.json.get("volumes_links").is_none());
    let r = get(&api, DEMO, "/volumes/detail").await;
    assert_eq!(page(&r).len(), 3);
    assert_eq!(r.json["volumes"][0]["status"], "error");

    let bs = sorted(vec![b1.clone(), b2.clone()]);
    assert_eq!(ids(&api, DEMO, "?name=b").await, bs);
    assert_eq!(ids(&api, DEMO, "/detail?name=a").await, [a.as_str()]);
    assert_eq!(ids(&api, DEMO, "?status=error").await.len(), 3);
    assert!(ids(&api, DEMO, "?status=available").await.is_empty());
    let q = "?sort=created_at:desc&all_tenants=0";
    assert_eq!(ids(&api, DEMO, q).await.len(), 3);

    // Paging: a full page carries a next link that keeps the query; the pages cover all,
    // each once.
    let r = get(&api, DEMO, "/volumes/detail?limit=2&status=error").await;
    let page1 = page(&r);
    assert_eq!(page1.len(), 2);
    let link = &r.json["volumes_links"][0];
    assert_eq!(link["rel"], "next");
    let next = link["href"].as_str().unwrap();
    let query = "limit=2&status=error&marker";
    let want = format!("{BASE}/v3/demo/volumes/detail?{query}={}", page1[1]);
    assert_eq!(next, want);
    let rest = next.trim_start_matches(BASE);
    let r = send(&api, Method::GET, rest, Some(DEMO), None, &[]).await;
    let page2 = page(&r);
    assert_eq!(page2.len(), 1);
    assert!(r.json.get("volumes_links").is_none());
    let all = sorted(page1.into_iter().chain(page2).collect());
    assert_eq!(all, sorted(vec![a, b1, b2]));

    // with_count from 3.45; the summary from 3.12.
    let q = "/volumes?with_count=true&limit=1";
    let r = get_at(&api, DEMO, q, "3.45").await;
    assert_eq!(r.json["count"], 3);
    assert_eq!(page(&r).len(), 1);
    let r = get_at(&api, DEMO, "/volumes/summary", "3.45").await;
    let want = json!({"total_count": 3, "total_size": 6, "metadata": {}});
    assert_eq!(r.json["volume-summary"], want);
    missing(&get(&api, DEMO, "/volumes/summary").await);

    // What is not implemented is refused, not ignored.
    let invalid = |key: &str| format!("Invalid filters {key} are found in query options.");
    let unsorted = "Volumes are listed newest first only: the sort may only be created_at:desc.";
    let not_bool = "Invalid value 'maybe' for all_tenants: it must be a boolean.";
    for (q, says) in [
        ("colour=red", invalid("colour")),
        ("with_count=true", invalid("with_count")),
        ("project_id=alt", invalid("project_id")),
        ("limit=x", "limit param must be an integer".into()),
        ("limit=-1", "limit param must be positive".into()),
        ("all_tenants=maybe", not_bool.into()),
        ("sort=name", unsorted.into()),
        ("sort=created_at:asc", unsorted.into()),
        ("sort_key=size", unsorted.into()),
        (
            "offset=1",
            "offset is not supported: page with marker and limit.".into(),
        ),
    ] {
        let r = get(&api, DEMO, &format!("/volumes?{q}")).await;
        assert_eq!(bad(&r), says, "{q}");
    }
    let r = get(&api, DEMO, &format!("/volumes?marker={UNKNOWN}")).await;
    assert_eq!(missing(&r), format!("Volume {UNKNOWN} could not be found."));
}

#[tokio::test]
async fn updates_change_name_description_and_metadata() {
    let api = TestApi::new("").await;
    let vid = id(&created(&api, DEMO, json!({"size": 1, "name": "data1"})).await);
    let path = format!("/volumes/{vid}");
    // What `openstack volume set --name x --description y data1` sends.
    let body = json!({"volume": {"name": "x", "description": "y"}});
    let r = put(&api, DEMO, &path, body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let v = &r.json["volume"];
    assert_eq!(v["name"], "x");
    assert_eq!(v["description"], "y");
    assert!(v["updated_at"].is_string());
    let body = json!({"volume": {"metadata": {"tier": "gold"}}});
    let r = put(&api, DEMO, &path, body).await;
    assert_eq!(r.json["volume"]["metadata"], json!({"tier": "gold"}));
    assert_eq!(r.json["volume"]["name"], "x", "what is not named is kept");
    let body = json!({"volume": {"description": null}});
    let r = put(&api, DEMO, &path, body).await;
    assert_eq!(r.json["volume"]["description"], Value::Null);
    for body in [
        json!({"volume": {"size": 2}}),
        json!({"volume": {"name": 1}}),
        json!({"volume": {"metadata": {"k": 1}}}),
        json!({"volume": {"name": "n".repeat(256)}}),
        json!({"name": "x"}),
    ] {
        bad(&put(&api, DEMO, &path, body).await);
    }
    assert_eq!(get(&api, DEMO, &path).await.json["volume"]["name"], "x");

    // The metadata sub-resource (`openstack volume set --property`, `unset --property`).
    let meta = format!("{path}/metadata");
    let r = post(&api, DEMO, &meta, json!({"metadata": {"a": "1"}})).await;
    assert_eq!(r.json, json!({"metadata": {"tier": "gold", "a": "1"}}));
    let body = json!({"meta": {"a": "2"}});
    let r = put(&api, DEMO, &format!("{meta}/a"), body.clone()).await;
    assert_eq!(r.json, body);
    let r = put(&api, DEMO, &format!("{meta}/b"), body).await;
    assert_eq!(bad(&r), "Request body and URI mismatch");
    let r = del(&api, DEMO, &format!("{meta}/tier")).await;
    assert_eq!(r.status, StatusCode::OK);
    let m = missing(&get(&api, DEMO, &format!("{meta}/tier")).await);
    assert_eq!(m, format!("Volume {vid} has no metadata with key tier."));
    let r = get(&api, DEMO, &meta).await;
    assert_eq!(r.json, json!({"metadata": {"a": "2"}}));
    let r = put(&api, DEMO, &meta, json!({"metadata": {}})).await;
    assert_eq!(r.json, json!({"metadata": {}}));
    // Actions (extend, bootable, ...) are refused by name.
    let body = json!({"os-extend": {"new_size": 2}});
    let r = post(&api, DEMO, &format!("{path}/action"), body).await;
    let want = "Volume action os-extend is not supported by this service.";
    assert_eq!(bad(&r), want);
}

#[tokio::test]
async fn bad_create_bodies_are_refused_and_create_nothing() {
    let api = TestApi::new("").await;
    let not_supported = |key: &str| format!("('{key}') is not supported");
    let cases = [
        (json!({"size": 0}), "size".to_owned()),
        (json!({"size": -1}), "size".into()),
        (json!({"size": "abc"}), "size".into()),
        (json!({"size": 1.5}), "size".into()),
        (json!({"size": 4_294_967_296_i64}), "size".into()),
        (json!({"name": "no size"}), "size".into()),
        (json!({"size": 1, "colour": "red"}), "'colour'".into()),
        (
            json!({"size": 1, "snapshot_id": UNKNOWN}),
            not_supported("snapshot_id"),
        ),
        (
            json!({"size": 1, "source_volid": UNKNOWN}),
            not_supported("source_volid"),
        ),
        (
            json!({"size": 1, "imageRef": "cirros"}),
            not_supported("imageRef"),
        ),
        (
            json!({"size": 1, "multiattach": true}),
            "multiattach".into(),
        ),
        (json!({"size": 1, "name": "n".repeat(256)}), "name".into()),
        (json!({"size": 1, "metadata": {"k": 1}}), "'k'".into()),
        (json!({"size": 1, "metadata": "k=v"}), "metadata".into()),
        (
            json!({"size": 1, "availability_zone": "mars"}),
            "'mars' is invalid".into(),
        ),
        (
            json!({"size": 101}),
            "the largest allowed volume size of 100G".into(),
        ),
    ];
    for (volume, says) in cases {
        let m = bad(&create(&api, DEMO, volume.clone()).await);
        assert!(m.contains(&says), "{volume}: {m}");
    }
    let r = create(&api, DEMO, json!({"size": 1, "volume_type": "gold"})).await;
    assert_eq!(
        missing(&r),
        "Volume type with name gold could not be found."
    );
    bad(&post(&api, DEMO, "/volumes", json!({"size": 1})).await);
    let text = [("content-type", "text/plain")];
    let body = json!({});
    let uri = url(DEMO, "/volumes");
    let r = send(&api, Method::POST, &uri, Some(DEMO), Some(&body), &text).await;
    refused(&r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "badMediaType");
    let req = Request::post(uri)
        .header("x-user-id", DEMO.user)
        .header("x-project-id", DEMO.project)
        .header("x-roles", DEMO.roles)
        .header("content-type", "application/json")
        .body(Body::from("{\"volume\": {"))
        .unwrap();
    assert_eq!(bad(&raw(&api, req).await), "Malformed request body");
    assert!(ids(&api, DEMO, "").await.is_empty(), "nothing was created");
    // What openstackclient sends for `volume create --size 1 data1` is fine.
    let osc = json!({
        "size": 1, "name": "data1", "description": null, "snapshot_id": null,
        "source_volid": null, "imageRef": null, "volume_type": null,
        "consistencygroup_id": null, "backup_id": null, "multiattach": false,
        "availability_zone": null, "metadata": null, "OS-SCH-HNT:scheduler_hints": null,
    });
    created(&api, DEMO, osc).await;
}

#[tokio::test]
async fn quotas_answer_413_and_show_in_limits() {
    let api = TestApi::new("").await;
    for i in 0..10 {
        created(&api, DEMO, json!({"size": 1, "name": format!("v{i}")})).await;
    }
    let r = create(&api, DEMO, json!({"size": 1})).await;
    let m = refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "overLimit");
    let want = "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded for \
                quota 'volumes'.";
    assert_eq!(m, want);
    assert_eq!(ids(&api, DEMO, "").await.len(), 10);
    // Another project has its own quota.
    created(&api, ALT, json!({"size": 1})).await;
    let r = get(&api, DEMO, "/limits").await;
    assert_eq!(r.status, StatusCode::OK);
    let abs = &r.json["limits"]["absolute"];
    assert_eq!(abs["maxTotalVolumes"], 10);
    assert_eq!(abs["totalVolumesUsed"], 10);
    assert_eq!(abs["maxTotalVolumeGigabytes"], 1000);
    assert_eq!(abs["totalGigabytesUsed"], 10);
    assert_eq!(r.json["limits"]["rate"], json!([]));
    let r = get(&api, DEMO, "/os-quota-sets/demo?usage=True").await;
    let q = &r.json["quota_set"];
    let volumes = json!({"limit": 10, "in_use": 10, "reserved": 0});
    assert_eq!(q["volumes"], volumes);
    assert_eq!(q["per_volume_gigabytes"]["limit"], 100);
    let r = get(&api, DEMO, "/os-quota-sets/demo/defaults").await;
    assert_eq!(r.json["quota_set"]["gigabytes"], 1000);
    forbidden(&get(&api, DEMO, "/os-quota-sets/alt").await);
    let r = get(&api, ADMIN, "/os-quota-sets/alt?usage=true").await;
    assert_eq!(r.json["quota_set"]["volumes"]["in_use"], 1);
    let body = json!({"quota_set": {"volumes": 5}});
    let r = put(&api, ADMIN, "/os-quota-sets/alt", body).await;
    assert!(bad(&r).contains("configuration"));

    // Gigabytes, with a configured quota.
    let api = TestApi::new("[volume]\nproject_gigabytes = 5\n").await;
    created(&api, DEMO, json!({"size": 3})).await;
    let r = create(&api, DEMO, json!({"size": 3})).await;
    let m = refused(&r, StatusCode::PAYLOAD_TOO_LARGE, "overLimit");
    let want = "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed \
                gigabytes quota. Requested 3G, quota is 5G and 3G has been consumed.";
    assert_eq!(m, want);
    created(&api, DEMO, json!({"size": 2})).await;
}

#[tokio::test]
async fn projects_see_only_their_volumes_and_readers_only_read() {
    let api = TestApi::new("").await;
    let mine = id(&created(&api, DEMO, json!({"size": 1, "name": "mine"})).await);
    let theirs = id(&created(&api, ALT, json!({"size": 1, "name": "theirs"})).await);
    let admins = id(&created(&api, ADMIN, json!({"size": 1})).await);

    // Another project's volume: absent from lists, 404 on show, update and delete.
    assert_eq!(ids(&api, ALT, "").await, [theirs.as_str()]);
    let ignored = ids(&api, ALT, "?all_tenants=1").await;
    assert_eq!(ignored, [theirs.as_str()], "all_tenants is for admins");
    let path = format!("/volumes/{mine}");
    let rename = json!({"volume": {"name": "stolen"}});
    missing(&get(&api, ALT, &path).await);
    missing(&put(&api, ALT, &path, rename.clone()).await);
    missing(&del(&api, ALT, &path).await);
    missing(&get(&api, ALT, &format!("{path}/metadata")).await);

    // A reader lists and shows, but neither creates, changes nor deletes.
    assert_eq!(ids(&api, READER, "").await, [mine.as_str()]);
    assert_eq!(get(&api, READER, &path).await.status, StatusCode::OK);
    let m = forbidden(&create(&api, READER, json!({"size": 1})).await);
    assert_eq!(m, "Policy doesn't allow volume:create to be performed.");
    forbidden(&put(&api, READER, &path, rename).await);
    forbidden(&del(&api, READER, &path).await);
    let meta = json!({"metadata": {"a": "b"}});
    forbidden(&post(&api, READER, &format!("{path}/metadata"), meta).await);
    assert_eq!(ids(&api, DEMO, "").await.len(), 1, "nothing was created");

    // The admin: its own project's by default, everyone's with all_tenants, one project's
    // with project_id; any volume by id, with the admin-only attributes.
    assert_eq!(ids(&api, ADMIN, "").await, [admins.as_str()]);
    let all = sorted(vec![mine.clone(), theirs.clone(), admins]);
    assert_eq!(ids(&api, ADMIN, "?all_tenants=1").await, all);
    let alts = ids(&api, ADMIN, "?all_tenants=True&project_id=alt").await;
    assert_eq!(alts, [theirs]);
    let v = get(&api, ADMIN, &path).await.json["volume"].clone();
    assert_eq!(v["os-vol-tenant-attr:tenant_id"], "demo");
    assert_eq!(v["os-vol-host-attr:host"], Value::Null);
    assert_eq!(v["migration_status"], Value::Null);

    // A project id in the URL must be the token's, for admins too (Cinder's 400).
    for who in [DEMO, ADMIN] {
        let r = send(&api, Method::GET, "/v3/alt/volumes", Some(who), None, &[]).await;
        assert_eq!(bad(&r), "Malformed request url");
    }
    // Without a project id in the URL (Cinder 3.67): the token's project, links without it.
    let uri = "/v3/volumes/detail";
    let r = send(&api, Method::GET, uri, Some(DEMO), None, &[]).await;
    let href = format!("{BASE}/v3/volumes/{mine}");
    assert_eq!(r.json["volumes"][0]["links"][0]["href"], href);
    let uri = format!("/v3/volumes/{mine}");
    let r = send(&api, Method::GET, &uri, Some(DEMO), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    // A project whose id starts like a collection name still reaches its project's routes.
    let odd = Who {
        user: "odd-user",
        project: "volumes0",
        roles: "member",
    };
    created(&api, odd, json!({"size": 1})).await;
    assert_eq!(ids(&api, odd, "").await.len(), 1);
}

#[tokio::test]
async fn types_and_zones() {
    let api = TestApi::new("").await;
    let r = get(&api, DEMO, "/types").await;
    let t = r.json["volume_types"][0].clone();
    assert_eq!(t["name"], "__DEFAULT__");
    assert_eq!(t["is_public"], true);
    assert_eq!(t["description"], "Default Volume Type");
    assert_eq!(t["extra_specs"], json!({}));
    for which in ["default", "__DEFAULT__", zun_api::cinder::DEFAULT_TYPE_ID] {
        let r = get(&api, DEMO, &format!("/types/{which}")).await;
        assert_eq!(r.json["volume_type"], t, "{which}");
    }
    missing(&get(&api, DEMO, "/types/gold").await);
    // No compute host: the default zone, not available; then one up.
    let r = get(&api, DEMO, "/os-availability-zone").await;
    let zone = json!({"zoneName": "nova", "zoneState": {"available": false}});
    assert_eq!(r.json, json!({ "availabilityZoneInfo": [zone] }));
    heartbeat(&api.state.db, "c1").await;
    let r = get(&api, DEMO, "/os-availability-zone").await;
    let zone = &r.json["availabilityZoneInfo"][0];
    assert_eq!(zone["zoneState"]["available"], true);
}

/// A fake compute agent: passes on what reaches the host's queue.
struct Agent(mpsc::UnboundedSender<Vec<u8>>);

impl rpc::Handler for Agent {
    fn handle(&self, d: rpc::Delivery) -> impl std::future::Future<Output = rpc::Disposition> {
        let _ = self.0.send(d.payload);
        async { rpc::Disposition::Ack }
    }
}

type Inbox = mpsc::UnboundedReceiver<Vec<u8>>;

/// The next volume request the host got (capsule and firewall requests skipped).
async fn next_volume_request(rx: &mut Inbox) -> Envelope<ComputeRequest> {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        let payload = got.expect("a request within 5 s").expect("the agent runs");
        let env: Envelope<ComputeRequest> = serde_json::from_slice(&payload).unwrap();
        if let ComputeRequest::CreateVolume { .. } | ComputeRequest::DeleteVolume { .. } = env.body
        {
            return env;
        }
    }
}

#[tokio::test]
async fn volumes_are_made_on_a_compute_host_attached_and_deleted() {
    let mut api = TestApi::new("").await;
    let bus = rpc::MemoryBus::new();
    api.state = api.state.clone().with_bus(rpc::Bus::Memory(bus.clone()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let queue = rpc::QueueSpec::named(&compute_queue("c1"), 8);
    let agent = bus.consume(queue, Agent(tx));
    heartbeat(&api.state.db, "c1").await;
    let db = api.state.db.clone();

    // Made on the host: `creating` until the host reports it made.
    let v = created(&api, DEMO, json!({"size": 2, "name": "data1"})).await;
    let vid = id(&v);
    assert_eq!(v["status"], "creating");
    let env = next_volume_request(&mut rx).await;
    let ComputeRequest::CreateVolume { volume, size_gib } = env.body else {
        panic!("not a create: {:?}", env.body);
    };
    assert_eq!(volume.to_string(), vid);
    assert_eq!(size_gib, 2);
    assert!(env.request_id.unwrap().starts_with("req-"));
    // Deleting it now is refused with Cinder's words.
    let path = format!("/volumes/{vid}");
    let want = "Invalid volume: Volume status must be available or error or error_restoring or \
                error_extending or error_managing and must not be migrating, attached, belong \
                to a group, have snapshots, awaiting a transfer, or be disassociated from \
                snapshots after volume transfer.";
    assert_eq!(bad(&del(&api, DEMO, &path).await), want);
    let made = db.apply_volume_state("c1", &vid, VolumeHostState::Available, None);
    assert!(made.await.unwrap());
    let v = get(&api, DEMO, &path).await.json["volume"].clone();
    assert_eq!(v["status"], "available");
    let v = get(&api, ADMIN, &path).await.json["volume"].clone();
    assert_eq!(v["os-vol-host-attr:host"], "c1");

    // A capsule takes it: `in-use`, one attachment per mount, and it cannot be deleted.
    let template = json!({
        "kind": "capsule",
        "metadata": {"name": "db"},
        "spec": {
            "containers": [{"image": "busybox", "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "cinder": {"volumeID": vid}}],
        },
    });
    let r = api.create(DEMO, template).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let capsule = r.json["uuid"].as_str().unwrap().to_owned();
    let v = get(&api, DEMO, &path).await.json["volume"].clone();
    assert_eq!(v["status"], "in-use");
    let att = v["attachments"].as_array().unwrap();
    assert_eq!(att.len(), 1, "{att:?}");
    assert_eq!(att[0]["server_id"], *capsule);
    assert_eq!(att[0]["device"], "/data");
    assert_eq!(att[0]["volume_id"], *vid);
    assert_eq!(att[0]["read_only"], false);
    assert!(att[0]["attached_at"].is_string());
    assert!(att[0]["container_uuid"].is_string());
    assert_eq!(att[0]["host_name"], Value::Null, "the host is admin-only");
    let v = get(&api, ADMIN, &path).await.json["volume"].clone();
    assert_eq!(v["attachments"][0]["host_name"], "c1");
    let m = bad(&del(&api, DEMO, &path).await);
    let tail = format!("volume transfer. It is attached to capsule {capsule}.");
    assert!(m.ends_with(&tail), "{m}");
    // Given back when the capsule is gone (its host reported it deleted).
    let r = api.delete(&format!("/v1/capsules/{capsule}"), DEMO).await;
    assert!(r.status.is_success(), "{:?}", r.json);
    let applied = db.apply_capsule_deleted("c1", 1, &capsule).await.unwrap();
    assert_eq!(applied, db::ReportOutcome::Applied);
    let v = get(&api, DEMO, &path).await.json["volume"].clone();
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));

    // Deleted: `deleting` until the host reports it gone.
    let r = del(&api, DEMO, &path).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let v = get(&api, DEMO, &path).await.json["volume"].clone();
    assert_eq!(v["status"], "deleting");
    let env = next_volume_request(&mut rx).await;
    let ComputeRequest::DeleteVolume { volume } = env.body else {
        panic!("not a delete: {:?}", env.body);
    };
    assert_eq!(volume.to_string(), vid);
    let gone = db.apply_volume_state("c1", &vid, VolumeHostState::Deleted, None);
    assert!(gone.await.unwrap());
    missing(&get(&api, DEMO, &path).await);
    agent.stop().await;
}

/// A project-scoped Keystone token of `user` (password in `password_var`) in `project`,
/// and the project's id.
async fn token(user: &str, password_var: &str, project: &str) -> (String, String) {
    crate::keystone::token(user, &env(password_var), project).await
}

/// `method` on `uri` with Keystone token `tok`.
async fn as_user(api: &TestApi, tok: &str, method: Method, uri: &str, body: Option<Value>) -> Resp {
    let h = [("x-auth-token", tok)];
    send(api, method, uri, None, body.as_ref(), &h).await
}

#[tokio::test]
async fn keystone_users_own_read_and_administer_volumes() {
    let api = TestApi::new(&crate::keystone::config("")).await;
    let (demo, demo_project) = token("demo", "ZUN_TEST_DEMO_PASSWORD", "demo").await;
    let (reader, _) = token("demo-reader", "ZUN_TEST_READER_PASSWORD", "demo").await;
    let (alt, alt_project) = token("alt_demo", "ZUN_TEST_ALT_DEMO_PASSWORD", "alt_demo").await;
    let (admin, admin_project) = token("admin", "ZUN_TEST_ADMIN_PASSWORD", "admin").await;
    let demo_volumes = format!("/v3/{demo_project}/volumes");
    let body = json!({"volume": {"size": 1, "name": "kv"}});
    let r = as_user(&api, &demo, Method::POST, &demo_volumes, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let vid = id(&r.json["volume"]);
    assert_eq!(
        r.json["volume"]["os-vol-tenant-attr:tenant_id"],
        *demo_project
    );

    // The reader (role reader on demo) reads, and may not create.
    let uri = format!("{demo_volumes}/{vid}");
    let r = as_user(&api, &reader, Method::GET, &uri, None).await;
    assert_eq!(r.status, StatusCode::OK);
    forbidden(&as_user(&api, &reader, Method::POST, &demo_volumes, Some(body)).await);
    // Another project neither sees it nor may name demo's project in its URLs.
    let uri = format!("/v3/{alt_project}/volumes/{vid}");
    missing(&as_user(&api, &alt, Method::GET, &uri, None).await);
    bad(&as_user(&api, &alt, Method::GET, &demo_volumes, None).await);
    // The admin finds it among all projects' and deletes it.
    let uri = format!("/v3/{admin_project}/volumes?all_tenants=1");
    let r = as_user(&api, &admin, Method::GET, &uri, None).await;
    assert!(page(&r).contains(&vid));
    let uri = format!("/v3/{admin_project}/volumes/{vid}");
    let r = as_user(&api, &admin, Method::DELETE, &uri, None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    missing(&as_user(&api, &admin, Method::GET, &uri, None).await);
    // No token: keystonemiddleware's 401, saying where to get one.
    let r = send(&api, Method::GET, &demo_volumes, None, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let www = r.header("www-authenticate");
    assert_eq!(www, Some("Keystone uri=\"http://127.0.0.1:5000\""));
}
