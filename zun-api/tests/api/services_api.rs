//! Zun's operator APIs in-process: `/v1/services` (list with liveness, enable, disable, force
//! down, delete) and `/v1/hosts` (>= 1.4: list, paging, show), their policy and validation, and
//! the fields python-zunclient prints from them.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode};
use capsule_types::rpc::{Heartbeat, NodeResources};
use chrono::Utc;
use serde_json::{json, Value};

use crate::common::{Resp, TestApi, Who, ADMIN, DEMO};

/// Services are down after this long without a heartbeat.
const CONFIG: &str = "[conductor]\nservice_down_seconds = 30\n";

fn heartbeat(host: &str, az: &str, mem: u64, cpus: f64) -> Heartbeat {
    Heartbeat {
        host: host.to_owned(),
        binary: "zun-compute".to_owned(),
        availability_zone: az.to_owned(),
        resources: NodeResources {
            cpus,
            memory_mib: mem,
            disk_gib: 100,
            architecture: "x86_64".to_owned(),
            os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            kernel_version: "6.1.0-18-amd64".to_owned(),
            labels: BTreeMap::from([("ssd".to_owned(), "true".to_owned())]),
        },
        capsules: vec![],
        seq: 0,
        firewall_epoch: None,
        firewall_incarnation: None,
        stream_address: None,
    }
}

/// An API with hosts `c1` (az1), `c2` (silent for two minutes) and `c3` (no zone).
async fn api_with_hosts() -> TestApi {
    let api = TestApi::new(CONFIG).await;
    let db = &api.state.db;
    db.record_heartbeat(&heartbeat("c1", "az1", 8192, 4.0))
        .await
        .unwrap();
    let stale = Utc::now() - chrono::Duration::seconds(120);
    db.record_heartbeat_at(&heartbeat("c2", "az1", 4096, 2.5), stale)
        .await
        .unwrap();
    db.record_heartbeat(&heartbeat("c3", "", 2048, 2.0))
        .await
        .unwrap();
    api
}

/// `PUT` as python-zunclient sends it: parameters in the query string, empty JSON body.
async fn put_query(api: &TestApi, uri: &str, who: Who) -> Resp {
    api.call(
        Method::PUT,
        uri,
        Some(who),
        None,
        &[
            ("content-type", "application/json"),
            ("content-length", "0"),
        ],
    )
    .await
}

/// `PUT` with a JSON body.
async fn put_body(api: &TestApi, uri: &str, who: Who, body: Value) -> Resp {
    api.call(Method::PUT, uri, Some(who), Some(&body), &[])
        .await
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn is_service_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
        && s.len() == "2017-02-01T03:25:07.000000".len()
}

async fn services(api: &TestApi) -> Vec<Value> {
    let r = api.get("/v1/services", ADMIN, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["services"].as_array().unwrap().clone()
}

fn find<'a>(list: &'a [Value], host: &str) -> &'a Value {
    list.iter()
        .find(|s| s["host"] == host)
        .unwrap_or_else(|| panic!("{host} listed"))
}

#[tokio::test]
async fn service_list_has_zuns_fields_and_liveness() {
    let api = api_with_hosts().await;
    let r = api.get("/services/", ADMIN, Some("1.40")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(keys(&r.json), BTreeSet::from(["services"]), "no next");
    let list = r.json["services"].as_array().unwrap();
    assert_eq!(
        list.iter().map(|s| s["host"].as_str()).collect::<Vec<_>>(),
        vec![Some("c1"), Some("c2"), Some("c3")],
        "ordered by id"
    );
    let zun_keys = BTreeSet::from([
        "availability_zone",
        "binary",
        "created_at",
        "disabled",
        "disabled_reason",
        "forced_down",
        "host",
        "id",
        "last_seen_up",
        "report_count",
        "state",
        "updated_at",
    ]);
    for s in list {
        assert_eq!(keys(s), zun_keys);
        assert!(is_service_time(&s["created_at"]), "{s}");
        assert!(is_service_time(&s["updated_at"]), "{s}");
        assert!(is_service_time(&s["last_seen_up"]), "{s}");
        assert_eq!(s["binary"], "zun-compute");
        assert_eq!(s["disabled"], false);
        assert_eq!(s["disabled_reason"], Value::Null);
        assert_eq!(s["forced_down"], false);
        assert_eq!(s["report_count"], 1);
        assert!(s["id"].is_i64());
    }
    let c1 = find(list, "c1");
    assert_eq!(c1["state"], "up");
    assert_eq!(c1["availability_zone"], "az1");
    assert_eq!(find(list, "c2")["state"], "down", "silent for 120 s > 30 s");
    let c3 = find(list, "c3");
    assert_eq!(c3["state"], "up");
    assert_eq!(
        c3["availability_zone"], "nova",
        "empty zone shows the default"
    );

    // A heartbeat brings c2 back and is counted.
    api.state
        .db
        .record_heartbeat(&heartbeat("c2", "az2", 4096, 2.5))
        .await
        .unwrap();
    let list = services(&api).await;
    let c2 = find(&list, "c2");
    assert_eq!(c2["state"], "up");
    assert_eq!(c2["report_count"], 2);
    assert_eq!(c2["availability_zone"], "az2");
}

#[tokio::test]
async fn disable_enable_and_force_down_round_trip() {
    let api = api_with_hosts().await;

    // As python-zunclient sends them: query string, empty body.
    let r = put_query(
        &api,
        "/v1/services/disable?host=c1&binary=zun-compute&disabled_reason=disk+failing",
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"service": {"host": "c1", "binary": "zun-compute", "disabled": true,
                           "disabled_reason": "disk failing"}})
    );
    let c1 = find(&services(&api).await, "c1").clone();
    assert_eq!(c1["disabled"], true);
    assert_eq!(c1["disabled_reason"], "disk failing");
    assert_eq!(c1["state"], "up", "disabled is not down");

    let r = put_query(
        &api,
        "/v1/services/enable?host=c1&binary=zun-compute",
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"service": {"host": "c1", "binary": "zun-compute", "disabled": false,
                           "disabled_reason": null}})
    );
    let c1 = find(&services(&api).await, "c1").clone();
    assert_eq!(c1["disabled"], false);
    assert_eq!(c1["disabled_reason"], Value::Null);

    // Disabling without a reason clears it too.
    let r = put_body(
        &api,
        "/v1/services/disable",
        ADMIN,
        json!({"host": "c1", "binary": "zun-compute"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["service"]["disabled_reason"], Value::Null);

    // zunclient sends `forced_down=True` / `False` (Python's str of a bool).
    let r = put_query(
        &api,
        "/v1/services/force_down?host=c3&binary=zun-compute&forced_down=True",
        ADMIN,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        r.json,
        json!({"service": {"host": "c3", "binary": "zun-compute", "forced_down": true}})
    );
    let c3 = find(&services(&api).await, "c3").clone();
    assert_eq!(c3["forced_down"], true);
    assert_eq!(c3["state"], "down", "forced down despite a fresh heartbeat");

    // A JSON body works as well, with a real boolean.
    let r = put_body(
        &api,
        "/v1/services/force_down",
        ADMIN,
        json!({"host": "c3", "binary": "zun-compute", "forced_down": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["service"]["forced_down"], false);
    assert_eq!(find(&services(&api).await, "c3")["state"], "up");
}

#[tokio::test]
async fn delete_removes_the_service_and_its_host() {
    let api = api_with_hosts().await;
    let r = api.get("/v1/hosts/c2", ADMIN, Some("1.4")).await;
    assert_eq!(r.status, StatusCode::OK);

    let r = api
        .delete("/v1/services?host=c2&binary=zun-compute", ADMIN)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.raw, b"null", "pecan renders the controller's None");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let list = services(&api).await;
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| s["host"] != "c2"));
    let r = api.get("/v1/hosts/c2", ADMIN, Some("1.4")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = api
        .delete("/v1/services?host=c2&binary=zun-compute", ADMIN)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.detail(),
        "Zun service zun-compute on host c2 could not be found."
    );
    let r = api.delete("/v1/services?host=c1", ADMIN).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "'binary' is a required property");
    let r = api.delete("/v1/services", ADMIN).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.detail(), "'host' is a required property");
}

#[tokio::test]
async fn bad_service_requests_are_400_unknown_services_404() {
    let api = api_with_hosts().await;
    let cases: &[(&str, Option<Value>, &str)] = &[
        (
            "/v1/services/enable?binary=zun-compute",
            None,
            "'host' is a required property",
        ),
        (
            "/v1/services/disable",
            Some(json!({"host": "c1"})),
            "'binary' is a required property",
        ),
        (
            "/v1/services/force_down?host=c1&binary=zun-compute",
            None,
            "'forced_down' is a required property",
        ),
        (
            "/v1/services/force_down?host=c1&binary=zun-compute&forced_down=maybe",
            None,
            "Valid forced_down values are: 1, t, true, on, y, yes, 0, f, false, off, n, no",
        ),
        (
            "/v1/services/force_down",
            Some(json!({"host": "c1", "binary": "zun-compute", "forced_down": [true]})),
            "Valid forced_down values are: 1, t, true, on, y, yes, 0, f, false, off, n, no",
        ),
        (
            // Zun's enable schema has no disabled_reason.
            "/v1/services/enable?host=c1&binary=zun-compute&disabled_reason=x",
            None,
            "Additional properties are not allowed ('disabled_reason' was unexpected)",
        ),
        (
            "/v1/services/disable?host=c%201&binary=zun-compute",
            None,
            "Invalid input for query parameters 'host'. Value: 'c 1'. 'c 1' does not match \
             '^[a-zA-Z0-9-._]*$'",
        ),
        (
            "/v1/services/disable?host=c1&binary=zun-compute&disabled_reason=",
            None,
            "Invalid input for query parameters 'disabled_reason'. Value: ''. '' is too short",
        ),
        (
            "/v1/services/enable",
            Some(json!({"host": 7, "binary": "zun-compute"})),
            "Invalid input for field 'host'. Value: '7'. 7 is not of type 'string'",
        ),
        (
            "/v1/services/enable",
            Some(json!(["c1", "zun-compute"])),
            "The request body must be a JSON object.",
        ),
    ];
    for (uri, body, detail) in cases {
        let r = match body {
            Some(b) => put_body(&api, uri, ADMIN, b.clone()).await,
            None => put_query(&api, uri, ADMIN).await,
        };
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.json);
        assert_eq!(r.detail(), *detail, "{uri}");
        assert!(r.json["errors"][0]["code"]
            .as_str()
            .unwrap()
            .starts_with("container."));
    }
    let long = "x".repeat(256);
    let r = put_body(
        &api,
        "/v1/services/disable",
        ADMIN,
        json!({"host": "c1", "binary": "zun-compute", "disabled_reason": long}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.detail().ends_with("is too long"), "{}", r.detail());

    for uri in [
        "/v1/services/enable?host=c9&binary=zun-compute",
        "/v1/services/disable?host=c9&binary=zun-compute",
        "/v1/services/force_down?host=c9&binary=zun-compute&forced_down=true",
    ] {
        let r = put_query(&api, uri, ADMIN).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(
            r.detail(),
            "Zun service zun-compute on host c9 could not be found."
        );
    }
    // Nothing was changed by any of these.
    for s in services(&api).await {
        assert_eq!(s["disabled"], false);
        assert_eq!(s["forced_down"], false);
    }
    // A GET on an action path is not routed to it.
    let r = api.get("/v1/services/enable", ADMIN, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn hosts_list_and_show_have_zuns_fields() {
    let api = api_with_hosts().await;
    let r = api.get("/v1/hosts/", ADMIN, Some("1.4")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.header("openstack-api-version"), Some("container 1.4"));
    assert_eq!(r.json["next"], Value::Null);
    let hosts = r.json["hosts"].as_array().unwrap();
    assert_eq!(
        hosts
            .iter()
            .map(|h| h["hostname"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["c1", "c2", "c3"],
        "sorted by hostname"
    );
    let zun_keys = BTreeSet::from([
        "uuid",
        "links",
        "hostname",
        "mem_total",
        "mem_used",
        "cpus",
        "cpu_used",
        "disk_total",
        "disk_used",
        "total_containers",
        "architecture",
        "os_type",
        "os",
        "kernel_version",
        "labels",
        "disk_quota_supported",
        "runtimes",
        "enable_cpu_pinning",
    ]);
    let c1 = &hosts[0];
    assert_eq!(keys(c1), zun_keys);
    let uuid = c1["uuid"].as_str().unwrap();
    assert_eq!(
        c1["links"],
        json!([
            {"href": format!("http://zun.test:9517/v1/hosts/{uuid}"), "rel": "self"},
            {"href": format!("http://zun.test:9517/hosts/{uuid}"), "rel": "bookmark"},
        ])
    );
    assert_eq!(c1["mem_total"], 8192);
    assert_eq!(
        c1["cpus"],
        json!(4),
        "a whole CPU count is an integer, as in Zun"
    );
    assert_eq!(hosts[1]["cpus"], json!(2.5));
    assert_eq!(c1["mem_used"], 0);
    assert_eq!(c1["cpu_used"], json!(0.0));
    assert_eq!(c1["disk_total"], 100);
    assert_eq!(c1["disk_used"], 0);
    assert_eq!(c1["total_containers"], 0);
    assert_eq!(c1["architecture"], "x86_64");
    assert_eq!(c1["os_type"], "linux");
    assert_eq!(c1["os"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(c1["kernel_version"], "6.1.0-18-amd64");
    assert_eq!(c1["labels"], json!({"ssd": "true"}));
    assert_eq!(c1["disk_quota_supported"], false);
    assert_eq!(c1["runtimes"], json!(["runc"]));
    assert_eq!(c1["enable_cpu_pinning"], false);

    for ident in [uuid, "c1", &uuid.to_uppercase()] {
        let r = api
            .get(&format!("/v1/hosts/{ident}"), ADMIN, Some("latest"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{ident}");
        assert_eq!(&r.json, c1, "show is the list entry");
    }
    for ident in ["c9", "0b8a2e44-5c1f-4a6e-9d55-2d1c3f1e2a77"] {
        let r = api
            .get(&format!("/v1/hosts/{ident}"), ADMIN, Some("1.40"))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            r.detail(),
            format!("Compute node {ident} could not be found.")
        );
    }
}

#[tokio::test]
async fn hosts_page_with_next_links_and_validate_params() {
    let api = TestApi::new(CONFIG).await;
    for i in 0..5 {
        api.state
            .db
            .record_heartbeat(&heartbeat(&format!("h{i}"), "", 1024, f64::from(i % 2)))
            .await
            .unwrap();
    }
    // Follow `next` as python-zunclient does (it keeps only the path and query).
    let mut url = Some("/v1/hosts/?limit=2&sort_dir=desc".to_owned());
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(u) = url {
        let r = api.get(&u, ADMIN, Some("1.4")).await;
        assert_eq!(r.status, StatusCode::OK, "{u}: {}", r.json);
        pages += 1;
        let hosts = r.json["hosts"].as_array().unwrap();
        seen.extend(
            hosts
                .iter()
                .map(|h| h["hostname"].as_str().unwrap().to_owned()),
        );
        url = r.json["next"].as_str().map(|n| {
            assert!(
                n.starts_with(
                    "http://zun.test:9517/v1/hosts?sort_key=hostname&sort_dir=desc&limit=2&marker="
                ),
                "{n}"
            );
            n.trim_start_matches("http://zun.test:9517").to_owned()
        });
    }
    assert_eq!(seen, vec!["h4", "h3", "h2", "h1", "h0"]);
    assert_eq!(pages, 3);

    let r = api
        .get("/v1/hosts?sort_key=cpus&limit=10", ADMIN, Some("1.4"))
        .await;
    let order: Vec<&str> = r.json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(
        &order[..3].iter().copied().collect::<BTreeSet<_>>(),
        &BTreeSet::from(["h0", "h2", "h4"])
    );
    assert_eq!(r.json["next"], Value::Null, "a short page has no next");

    for (q, status, detail) in [
        (
            "limit=0",
            StatusCode::BAD_REQUEST,
            "Limit must be positive integer".to_owned(),
        ),
        (
            "sort_dir=sideways",
            StatusCode::BAD_REQUEST,
            "Invalid sort direction: sideways. Acceptable values are 'asc' or 'desc'".to_owned(),
        ),
        (
            "sort_key=image",
            StatusCode::BAD_REQUEST,
            "The sort_key value \"image\" is an invalid field for sorting".to_owned(),
        ),
        (
            "marker=7c1f1f0e-0d1e-4d6f-8a55-1f2b3c4d5e6f",
            StatusCode::NOT_FOUND,
            "Compute node 7c1f1f0e-0d1e-4d6f-8a55-1f2b3c4d5e6f could not be found.".to_owned(),
        ),
    ] {
        let r = api.get(&format!("/v1/hosts?{q}"), ADMIN, Some("1.4")).await;
        assert_eq!(r.status, status, "{q}");
        assert_eq!(r.detail(), detail, "{q}");
    }
}

#[tokio::test]
async fn hosts_need_microversion_1_4() {
    let api = api_with_hosts().await;
    for (ver, shown) in [(None, "1.1"), (Some("1.3"), "1.3")] {
        for uri in ["/v1/hosts", "/v1/hosts/c1"] {
            // Zun checks the version before the policy: the same answer for everyone.
            for who in [ADMIN, DEMO] {
                let r = api.get(uri, who, ver).await;
                assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE, "{uri} {ver:?}");
                assert_eq!(
                    r.detail(),
                    format!(
                        "Version {shown} was requested but the requested API is not supported \
                         for this version."
                    )
                );
                assert_eq!(
                    r.header("openstack-api-version"),
                    Some(format!("container {shown}").as_str())
                );
            }
        }
    }
}

/// Extra request headers.
type Headers<'a> = [(&'a str, &'a str)];

#[tokio::test]
async fn every_route_is_admin_only() {
    let api = api_with_hosts().await;
    let v14 = [("openstack-api-version", "container 1.4")];
    let json_ct = [
        ("content-type", "application/json"),
        ("content-length", "0"),
    ];
    let cases: Vec<(Method, &str, &Headers<'_>, &str)> = vec![
        (Method::GET, "/v1/services", &[], "zun-service:get_all"),
        (
            Method::DELETE,
            "/v1/services?host=c1&binary=zun-compute",
            &[],
            "zun-service:delete",
        ),
        (
            Method::PUT,
            "/v1/services/enable?host=c1&binary=zun-compute",
            &json_ct,
            "zun-service:enable",
        ),
        (
            Method::PUT,
            "/v1/services/disable?host=c1&binary=zun-compute",
            &json_ct,
            "zun-service:disable",
        ),
        (
            Method::PUT,
            "/v1/services/force_down?host=c1&binary=zun-compute&forced_down=true",
            &json_ct,
            "zun-service:force_down",
        ),
        (Method::GET, "/v1/hosts", &v14, "host:get_all"),
        (Method::GET, "/v1/hosts/c1", &v14, "host:get"),
    ];
    for (method, uri, headers, rule) in cases {
        let r = api
            .call(method.clone(), uri, Some(DEMO), None, headers)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_eq!(
            r.detail(),
            format!("Policy doesn't allow {rule} to be performed.")
        );
        assert_eq!(
            r.json["errors"][0]["code"],
            "container.policy-not-authorized"
        );
    }
    // Nothing changed.
    let list = services(&api).await;
    assert_eq!(list.len(), 3);
    assert!(list
        .iter()
        .all(|s| s["disabled"] == false && s["forced_down"] == false));
}

/// The fields python-zunclient's commands print, read as the client reads them: `zun
/// service-list` and `openstack appcontainer service list` take `Id, Host, Binary, State,
/// Disabled, Disabled Reason, Updated At, Availability Zone` lowercased with `_`; `service
/// enable/disable` print `Host, Binary, Disabled, Disabled Reason` from `service`; `service
/// force down` prints `Host, Binary, Forced_down`; `host-list` prints `uuid, hostname,
/// mem_total, cpus, disk_total`; `host-show` prints every key (it fetches `/v1/hosts/<id>` and
/// takes the whole body as the host).
#[tokio::test]
async fn zunclient_columns_are_present() {
    let api = api_with_hosts().await;
    let column = |c: &str| c.to_lowercase().replace(' ', "_");
    let list = services(&api).await;
    for c in [
        "Id",
        "Host",
        "Binary",
        "State",
        "Disabled",
        "Disabled Reason",
        "Updated At",
        "Availability Zone",
    ] {
        assert!(list[0].get(column(c)).is_some(), "service-list column {c}");
    }
    let r = put_query(
        &api,
        "/v1/services/disable?host=c1&binary=zun-compute&disabled_reason=r",
        ADMIN,
    )
    .await;
    for c in ["Host", "Binary", "Disabled", "Disabled Reason"] {
        assert!(r.json["service"].get(column(c)).is_some(), "{c}");
    }
    let r = put_query(
        &api,
        "/v1/services/force_down?host=c1&binary=zun-compute&forced_down=False",
        ADMIN,
    )
    .await;
    for c in ["Host", "Binary", "Forced_down"] {
        assert!(r.json["service"].get(column(c)).is_some(), "{c}");
    }
    let r = api.get("/v1/hosts/", ADMIN, Some("1.40")).await;
    for h in r.json["hosts"].as_array().unwrap() {
        for c in ["uuid", "hostname", "mem_total", "cpus", "disk_total"] {
            assert!(h.get(c).is_some(), "host-list column {c}");
        }
    }
    let uuid = r.json["hosts"][0]["uuid"].as_str().unwrap().to_owned();
    let r = api
        .get(&format!("/v1/hosts/{uuid}"), ADMIN, Some("1.40"))
        .await;
    assert!(r.json.is_object() && r.json.get("hosts").is_none());
    assert_eq!(r.json["uuid"], uuid.as_str());
}
