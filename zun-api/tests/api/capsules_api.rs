//! The capsule API end to end in-process: views per microversion, lookups, paging, tenancy,
//! error shapes and status codes, against a real SQLite database.

use axum::http::{Method, StatusCode};
use capsule_types::views::{Capsule, CapsuleList};
use serde_json::json;

use crate::common::{self, minimal, TestApi, ADMIN, ALT, DEMO};

#[tokio::test]
async fn create_show_list_delete_at_current_version() {
    let api = TestApi::new("").await;
    let r = api.create(DEMO, minimal("web")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    let uuid = r.json["uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        r.header("location"),
        Some(format!("http://zun.test:9517/v1/capsules/{uuid}").as_str())
    );
    assert!(r
        .header("x-openstack-request-id")
        .unwrap()
        .starts_with("req-"));
    assert_eq!(r.header("openstack-api-version"), Some("container 1.40"));
    // No compute host exists: Zun's answer is 202 with the capsule in Error.
    assert_eq!(r.json["status"], "Error");
    assert_eq!(
        r.json["status_reason"],
        "There are not enough hosts available."
    );
    assert_eq!(r.json["name"], "web");
    assert_eq!(r.json["labels"], json!({"app": "web"}));
    assert_eq!(
        r.json["restart_policy"],
        json!({"MaximumRetryCount": "0", "Name": "always"})
    );
    // No requests: Zun's default_memory and default_cpu.
    assert_eq!(r.json["memory"], "512");
    assert_eq!(r.json["cpu"], 1.0);
    assert_eq!(r.json["project_id"], "demo");
    assert_eq!(r.json["user_id"], "demo-user");
    assert!(r.json.get("host").is_none(), "host is admin-only");
    assert_eq!(
        r.json["links"][0]["href"],
        format!("http://zun.test:9517/v1/capsules/{uuid}")
    );
    assert_eq!(
        r.json["links"][1]["href"],
        format!("http://zun.test:9517/capsules/{uuid}")
    );
    let c0 = &r.json["containers"][0];
    assert!(c0["name"].as_str().unwrap().starts_with("capsule-web-"));
    assert_eq!(c0["command"], json!(["sleep", "3600"]));
    assert_eq!(c0["status"], "Creating");
    assert!(c0.get("image_pull_policy").is_none(), "admin-only field");
    assert_eq!(r.json["init_containers"], json!([]));
    // The typed client view reads it.
    let typed: Capsule = serde_json::from_value(r.json.clone()).unwrap();
    assert_eq!(typed.name.as_deref(), Some("web"));

    for ident in [uuid.as_str(), "web"] {
        let g = api
            .get(&format!("/v1/capsules/{ident}"), DEMO, Some("1.40"))
            .await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.json["uuid"], uuid.as_str());
        assert_eq!(g.json["containers"], r.json["containers"]);
    }
    let l = api.get("/v1/capsules/", DEMO, Some("1.40")).await;
    assert_eq!(l.status, StatusCode::OK);
    let list: CapsuleList = serde_json::from_value(l.json.clone()).unwrap();
    assert_eq!(list.capsules.len(), 1);
    assert_eq!(list.next, None);

    let d = api.delete(&format!("/capsules/{uuid}"), DEMO).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert!(d.raw.is_empty());
    let g = api.get(&format!("/v1/capsules/{uuid}"), DEMO, None).await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    assert_eq!(g.detail(), format!("Container {uuid} could not be found."));
    assert_eq!(g.json["errors"][0]["code"], "container.container-not-found");
    assert_eq!(api.capsule_count().await, 0);
}

#[tokio::test]
async fn legacy_view_is_the_default_version() {
    let api = TestApi::new("").await;
    let r = api.create(DEMO, minimal("old")).await;
    let uuid = r.json["uuid"].as_str().unwrap();
    let g = api.get(&format!("/v1/capsules/{uuid}"), DEMO, None).await;
    assert_eq!(g.header("openstack-api-version"), Some("container 1.1"));
    assert_eq!(g.json["meta_name"], "old");
    assert_eq!(g.json["meta_labels"], json!({"app": "web"}));
    assert_eq!(g.json["restart_policy"], "always");
    assert_eq!(g.json["capsule_version"], "");
    assert_eq!(g.json["volumes_info"], json!({}));
    assert!(g.json.get("name").is_none());
    let g = api
        .get(&format!("/v1/capsules/{uuid}"), DEMO, Some("1.31"))
        .await;
    assert_eq!(g.json["meta_name"], "old");
    let g = api
        .get(&format!("/v1/capsules/{uuid}"), DEMO, Some("1.32"))
        .await;
    assert_eq!(g.json["name"], "old");
    let typed: Capsule = serde_json::from_value(
        api.get(&format!("/v1/capsules/{uuid}"), DEMO, None)
            .await
            .json,
    )
    .unwrap();
    assert_eq!(typed.name.as_deref(), Some("old"));
    assert_eq!(typed.restart_policy.unwrap().name(), "always");
}

#[tokio::test]
async fn microversion_negotiation_and_headers() {
    let api = TestApi::new("").await;
    let g = api.get("/v1/capsules", DEMO, Some("latest")).await;
    assert_eq!(g.header("openstack-api-version"), Some("container 1.40"));
    assert_eq!(
        g.header("openstack-api-minimum-version"),
        Some("container 1.1")
    );
    assert_eq!(
        g.header("openstack-api-maximum-version"),
        Some("container 1.40")
    );
    assert_eq!(g.header("vary"), Some("OpenStack-API-Version"));
    for (h, msg) in [
        (
            "container 1.41",
            "Version 1.41 was requested but the minor version is not supported",
        ),
        ("container 2.0", "Mutually exclusive versions requested"),
        (
            "compute 2.1",
            "Invalid service type for OpenStack-API-Version header",
        ),
        (
            "container one",
            "Invalid value for OpenStack-API-Version header",
        ),
    ] {
        let r = api
            .call(
                Method::GET,
                "/v1/capsules",
                Some(DEMO),
                None,
                &[("openstack-api-version", h)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE, "{h}");
        assert!(r.detail().starts_with(msg), "{h}: {}", r.detail());
    }
    let r = api
        .call(
            Method::GET,
            "/v1/capsules",
            Some(DEMO),
            None,
            &[("x-openstack-zun-api-version", "1.35")],
        )
        .await;
    assert_eq!(r.header("openstack-api-version"), Some("container 1.35"));
}

#[tokio::test]
async fn root_documents_need_no_token_and_the_rest_does() {
    let api = TestApi::new("").await;
    let r = api.call(Method::GET, "/", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["versions"][0]["max_version"], "1.40");
    assert_eq!(r.json["versions"][0]["min_version"], "1.1");
    assert_eq!(r.json["versions"][0]["status"], "CURRENT");
    assert_eq!(
        r.json["default_version"]["links"][0]["href"],
        "http://zun.test:9517/v1/"
    );
    assert!(r.header("openstack-api-version").is_none());
    for path in ["/v1", "/v1/"] {
        let r = api.call(Method::GET, path, None, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(
            r.json["capsules"][0]["href"],
            "http://zun.test:9517/v1/capsules/"
        );
        assert_eq!(r.header("openstack-api-version"), Some("container 1.1"));
    }
    let r = api.call(Method::GET, "/v1/capsules", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["code"], 401);
    assert_eq!(r.json["error"]["title"], "Unauthorized");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .starts_with("Keystone uri="));
    let r = api.call(Method::GET, "/healthcheck", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.raw, b"OK");
}

#[tokio::test]
async fn projects_are_isolated_and_admins_see_all() {
    let api = TestApi::new("").await;
    let a = api.create(ADMIN, minimal("secret")).await;
    let a_uuid = a.json["uuid"].as_str().unwrap().to_owned();
    api.create(DEMO, minimal("mine")).await;

    for ident in [a_uuid.as_str(), "secret"] {
        let r = api
            .get(&format!("/v1/capsules/{ident}"), DEMO, Some("1.40"))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{ident}");
        let r = api.delete(&format!("/v1/capsules/{ident}"), DEMO).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{ident}");
    }
    let l = api.get("/v1/capsules", DEMO, Some("1.40")).await;
    let names: Vec<&str> = l.json["capsules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine"]);
    // Zun ignores a non-admin's all_projects silently; we refuse it.
    let r = api
        .get("/v1/capsules?all_projects=1", DEMO, Some("1.40"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.detail(),
        "Policy doesn't allow capsule:get_all_all_projects to be performed."
    );
    let r = api
        .delete(&format!("/v1/capsules/{a_uuid}?all_projects=true"), DEMO)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Admins: all projects on request, and any capsule by id.
    let r = api
        .get("/v1/capsules?all_projects=True", ADMIN, Some("1.40"))
        .await;
    assert_eq!(r.json["capsules"].as_array().unwrap().len(), 2);
    let r = api.get("/v1/capsules/mine", ADMIN, Some("1.40")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json.as_object().unwrap().contains_key("host"));
    assert_eq!(
        r.json["containers"][0]["image_pull_policy"], "always",
        "admin sees admin-only container fields"
    );
    // Nothing changed for the refused calls.
    assert_eq!(api.capsule_count().await, 2);
}

#[tokio::test]
async fn duplicate_names_conflict_on_lookup() {
    let api = TestApi::new("").await;
    api.create(DEMO, minimal("twin")).await;
    api.create(DEMO, minimal("twin")).await;
    let r = api.get("/v1/capsules/twin", DEMO, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.detail(),
        "Multiple containers exist with same name. Please use the container uuid instead."
    );
    // The same name in another project does not count.
    api.create(ALT, minimal("solo")).await;
    api.create(DEMO, minimal("solo")).await;
    assert_eq!(
        api.get("/v1/capsules/solo", DEMO, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn paging_follows_next_links() {
    let api = TestApi::new("").await;
    let mut created = Vec::new();
    for i in 0..5 {
        let r = api.create(DEMO, minimal(&format!("c{i}"))).await;
        created.push(r.json["uuid"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut url = "/v1/capsules?limit=2&sort_key=name&sort_dir=desc".to_owned();
    loop {
        let r = api.get(&url, DEMO, Some("1.40")).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {:?}", r.json);
        for c in r.json["capsules"].as_array().unwrap() {
            seen.push(c["name"].as_str().unwrap().to_owned());
        }
        match r.json["next"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with("http://zun.test:9517/v1/capsules?sort_key=name&sort_dir=desc&limit=2&marker="),
                    "{next}"
                );
                url = next.trim_start_matches("http://zun.test:9517").to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, ["c4", "c3", "c2", "c1", "c0"]);

    for (q, status, detail) in [
        ("limit=0", 400, "Limit must be positive integer"),
        (
            "sort_dir=sideways",
            400,
            "Invalid sort direction: sideways. Acceptable values are 'asc' or 'desc'",
        ),
        (
            "sort_key=command",
            400,
            "The sort_key value \"command\" is an invalid field for sorting",
        ),
        (
            "marker=3f5c1a6e-7b1d-4c2a-9a51-2b0d6f1e8c11",
            404,
            "Container 3f5c1a6e-7b1d-4c2a-9a51-2b0d6f1e8c11 could not be found.",
        ),
        (
            "all_projects=perhaps",
            400,
            "Valid all_projects values are: 1, t, true, on, y, yes, 0, f, false, off, n, no",
        ),
    ] {
        let r = api.get(&format!("/v1/capsules?{q}"), DEMO, None).await;
        assert_eq!(r.status.as_u16(), status, "{q}");
        assert_eq!(r.detail(), detail, "{q}");
    }
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let api = TestApi::new("[api]\nmax_body_bytes = 4096\n").await;
    let body = json!({"template": minimal("ok")});
    // Wrong content type.
    let r = api
        .call(
            Method::POST,
            "/v1/capsules",
            Some(DEMO),
            Some(&body),
            &[("content-type", "text/plain")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Charset parameters are fine.
    let r = api
        .call(
            Method::POST,
            "/v1/capsules",
            Some(DEMO),
            Some(&body),
            &[("content-type", "application/json; charset=UTF-8")],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    // Too large.
    let mut big = minimal("big");
    big["metadata"]["annotations"] = json!({"blob": "x".repeat(10_000)});
    let r = api.create(DEMO, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Not JSON.
    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/v1/capsules")
        .header("content-type", "application/json")
        .header("x-user-id", "u")
        .header("x-project-id", "demo")
        .body(axum::body::Body::from("{\"template\": "))
        .unwrap();
    let r = api.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json["errors"][0]["code"],
        "container.schema-validation-error"
    );
    // Query parameters are part of the body, as in pecan, so they are refused.
    let r = api
        .call(
            Method::POST,
            "/v1/capsules?nets=x",
            Some(DEMO),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.detail().contains("nets"), "{}", r.detail());
    // Unknown route and method.
    let r = api.get("/v1/nothing-here", DEMO, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api
        .call(Method::PUT, "/v1/capsules/x", Some(DEMO), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json["errors"][0]["status"], 405);
    // The error body carries the request id of the response.
    assert_eq!(
        r.json["errors"][0]["request_id"].as_str(),
        r.header("x-openstack-request-id")
    );
    assert_eq!(
        api.capsule_count().await,
        1,
        "only the valid create made a row"
    );
}

#[tokio::test]
async fn policy_file_overrides_defaults() {
    let dir = std::env::temp_dir().join(format!("zun-policy-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("policy.yaml");
    std::fs::write(
        &file,
        "\"capsule:create\": \"role:admin\"\n\"capsule:get:labels\": \"!\"\n",
    )
    .unwrap();
    let api = TestApi::new(&format!("[policy]\nfile = \"{}\"\n", file.display())).await;
    let r = api.create(DEMO, minimal("nope")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json["errors"][0]["code"],
        "container.policy-not-authorized"
    );
    let r = api.create(ADMIN, minimal("yes")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(
        r.json.get("labels").is_none(),
        "hidden by capsule:get:labels"
    );
    assert_eq!(api.capsule_count().await, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_example_is_accepted() {
    let api = TestApi::new("").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let template: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let r = api.create(DEMO, template.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::ACCEPTED,
            "{}: {:?}",
            path.display(),
            r.json
        );
        assert_eq!(
            r.json["name"],
            template["metadata"]["name"],
            "{}",
            path.display()
        );
        assert_eq!(
            r.json["containers"].as_array().unwrap().len(),
            template["spec"]["containers"].as_array().unwrap().len()
        );
        n += 1;
    }
    assert!(
        n >= 2,
        "examples/ holds at least the minimal and the guide capsule"
    );
}

#[tokio::test]
async fn cached_list_pages_follow_every_change() {
    use std::io::Read;
    let api = TestApi::new("").await;
    let names = |r: &common::Resp| -> Vec<String> {
        r.json["capsules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let a = api.create(DEMO, minimal("aa")).await;
    assert_eq!(
        names(&api.get("/v1/capsules", DEMO, Some("1.40")).await),
        ["aa"]
    );
    // A second, identical request is served from the cache with the same body.
    let first = api.get("/v1/capsules", DEMO, Some("1.40")).await;
    assert_eq!(
        first.raw,
        api.get("/v1/capsules", DEMO, Some("1.40")).await.raw
    );
    // Another project's change does not matter; this project's changes show at once.
    api.create(ALT, minimal("zz")).await;
    assert_eq!(
        names(&api.get("/v1/capsules", DEMO, Some("1.40")).await),
        ["aa"]
    );
    api.create(DEMO, minimal("bb")).await;
    assert_eq!(
        names(&api.get("/v1/capsules", DEMO, Some("1.40")).await),
        ["aa", "bb"]
    );
    let uuid = a.json["uuid"].as_str().unwrap();
    let id = api
        .state
        .db
        .capsule_by_uuid(&db::Scope::All, uuid)
        .await
        .unwrap()
        .unwrap()
        .capsule
        .id;
    api.state
        .db
        .set_capsule_status(id, "Running", None)
        .await
        .unwrap();
    let r = api.get("/v1/capsules", DEMO, Some("1.40")).await;
    assert_eq!(r.json["capsules"][0]["status"], "Running");
    api.delete(&format!("/v1/capsules/{uuid}"), DEMO).await;
    assert_eq!(
        names(&api.get("/v1/capsules", DEMO, Some("1.40")).await),
        ["bb"]
    );
    // The view still follows the microversion and the caller's policy.
    let legacy = api.get("/v1/capsules", DEMO, None).await;
    assert_eq!(legacy.json["capsules"][0]["meta_name"], "bb");
    // gzip when asked for, identical once decompressed.
    let plain = api.get("/v1/capsules", DEMO, Some("1.40")).await;
    let gz = api
        .call(
            Method::GET,
            "/v1/capsules",
            Some(DEMO),
            None,
            &[
                ("openstack-api-version", "container 1.40"),
                ("accept-encoding", "gzip, deflate"),
            ],
        )
        .await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(&gz.raw[..])
        .read_to_end(&mut body)
        .unwrap();
    assert_eq!(body, plain.raw);
    let refused = api
        .call(
            Method::GET,
            "/v1/capsules",
            Some(DEMO),
            None,
            &[("accept-encoding", "gzip;q=0")],
        )
        .await;
    assert_eq!(refused.header("content-encoding"), None);
}
