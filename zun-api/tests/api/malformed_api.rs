//! Every malformed template of the shared corpus (`types/tests/fixtures/malformed.json`), sent
//! over HTTP, gets a 400 whose message names the field, and creates nothing.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::common::{self, TestApi, DEMO};

#[tokio::test]
async fn malformed_templates_get_400_naming_the_field_and_create_nothing() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../types/tests/fixtures/malformed.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(cases.len() >= 100, "the corpus has {} cases", cases.len());
    let api = TestApi::new("").await;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let want = case["path"].as_str().unwrap();
        let r = api
            .call(
                Method::POST,
                "/v1/capsules",
                Some(DEMO),
                Some(&case["body"]),
                &[("openstack-api-version", "container 1.40")],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {:?}", r.json);
        let detail = r.detail();
        assert!(
            detail.contains(want),
            "{name}: {detail:?} does not name {want:?}"
        );
        assert_eq!(
            r.json["errors"][0]["code"], "container.schema-validation-error",
            "{name}"
        );
    }
    assert_eq!(
        api.capsule_count().await,
        0,
        "no malformed template made a row"
    );
    // And the API still answers normally afterwards.
    let r = api.create(DEMO, common::minimal("after")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}
