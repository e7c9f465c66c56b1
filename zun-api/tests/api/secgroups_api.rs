//! The network API's security groups and rules, through the whole service stack (noauth
//! identities): Neutron's shapes and errors, each project's default group, project scoping,
//! bad input refused with nothing changed, and groups bound to capsules at create.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{self, minimal, TestApi, Who, ADMIN, ALT, DEMO};

const READER: Who = Who {
    user: "reader-user",
    project: "demo",
    roles: "reader",
};

async fn groups(api: &TestApi, who: Who, query: &str) -> Vec<Value> {
    let r = api
        .net(
            Method::GET,
            &format!("/v2.0/security-groups{query}"),
            who,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    r.json["security_groups"].as_array().unwrap().clone()
}

async fn rule_count(api: &TestApi, who: Who) -> usize {
    let r = api
        .net(Method::GET, "/v2.0/security-group-rules", who, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json["security_group_rules"].as_array().unwrap().len()
}

async fn add_rule(api: &TestApi, who: Who, rule: Value) -> common::Resp {
    api.net(
        Method::POST,
        "/v2.0/security-group-rules",
        who,
        Some(&json!({ "security_group_rule": rule })),
    )
    .await
}

fn neutron_error(r: &common::Resp) -> (&str, &str) {
    (
        r.json["NeutronError"]["type"].as_str().unwrap_or(""),
        r.json["NeutronError"]["message"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn each_project_gets_a_default_group_with_neutrons_default_rules() {
    let api = TestApi::new("").await;
    let list = groups(&api, DEMO, "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    // A trailing slash names the same collection (clients add one).
    let slashed = api
        .net(Method::GET, "/v2.0/security-groups/", DEMO, None)
        .await;
    assert_eq!(slashed.status, StatusCode::OK, "{:?}", slashed.json);
    assert_eq!(slashed.json["security_groups"].as_array().unwrap(), &list);
    let g = &list[0];
    assert_eq!(g["name"], "default");
    assert_eq!(g["project_id"], "demo");
    assert_eq!(g["tenant_id"], "demo");
    assert_eq!(g["stateful"], true);
    let rules = g["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    let ingress: Vec<&Value> = rules
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .collect();
    assert_eq!(ingress.len(), 2);
    for r in &ingress {
        assert_eq!(r["remote_group_id"], g["id"], "ingress only from members");
        assert_eq!(r["belongs_to_default_sg"], true);
    }
    for r in rules.iter().filter(|r| r["direction"] == "egress") {
        assert_eq!(r["remote_group_id"], Value::Null);
        assert_eq!(r["remote_ip_prefix"], Value::Null);
    }
    // The same group again, not a second one; the other project has its own.
    assert_eq!(groups(&api, DEMO, "").await[0]["id"], g["id"]);
    let alt = groups(&api, ALT, "").await;
    assert_eq!(alt.len(), 1);
    assert_ne!(alt[0]["id"], g["id"]);
    // The admin sees every project's; the project filter narrows it.
    assert_eq!(groups(&api, ADMIN, "").await.len(), 3);
    assert_eq!(groups(&api, ADMIN, "?project_id=demo").await.len(), 1);
    // fields picks attributes; an unknown filter is refused.
    let picked = groups(&api, DEMO, "?fields=id&fields=name").await;
    assert_eq!(picked[0].as_object().unwrap().len(), 2);
    let r = api
        .net(Method::GET, "/v2.0/security-groups?colour=red", DEMO, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn groups_are_created_changed_and_deleted_within_their_project() {
    let api = TestApi::new("").await;
    let r = api
        .net(
            Method::POST,
            "/v2.0/security-groups",
            DEMO,
            Some(&json!({"security_group": {"name": "web", "description": "web tier"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let g = r.json["security_group"].clone();
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["description"], "web tier");
    // A new group lets everything out and nothing in (Neutron's defaults for new groups).
    let rules = g["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules.iter().all(|r| r["direction"] == "egress"));
    assert_eq!(groups(&api, DEMO, "?name=web").await.len(), 1);

    // Other projects do not see it, cannot change or delete it.
    let uri = format!("/v2.0/security-groups/{id}");
    let r = api.net(Method::GET, &uri, ALT, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(neutron_error(&r).0, "SecurityGroupNotFound");
    let r = api.net(Method::DELETE, &uri, ALT, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A reader reads but does not change.
    assert_eq!(
        api.net(Method::GET, &uri, READER, None).await.status,
        StatusCode::OK
    );
    let r = api.net(Method::DELETE, &uri, READER, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(neutron_error(&r).0, "PolicyNotAuthorized");
    // A non-admin may not create in another project.
    let r = api
        .net(
            Method::POST,
            "/v2.0/security-groups",
            DEMO,
            Some(&json!({"security_group": {"name": "x", "project_id": "alt"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Rename, then the default group: neither renamed nor deleted by its project.
    let r = api
        .net(
            Method::PUT,
            &uri,
            DEMO,
            Some(&json!({"security_group": {"name": "www"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_eq!(r.json["security_group"]["name"], "www");
    let default = groups(&api, DEMO, "?name=default").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let duri = format!("/v2.0/security-groups/{default}");
    let r = api
        .net(
            Method::PUT,
            &duri,
            DEMO,
            Some(&json!({"security_group": {"name": "x"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = api.net(Method::DELETE, &duri, DEMO, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(neutron_error(&r).0, "SecurityGroupCannotRemoveDefault");

    let r = api.net(Method::DELETE, &uri, DEMO, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.net(Method::GET, &uri, DEMO, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.net(Method::DELETE, &uri, DEMO, None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_and_duplicate_rules_are_refused_and_change_nothing() {
    let api = TestApi::new("").await;
    let default = groups(&api, DEMO, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = json!({"security_group_id": default, "direction": "ingress", "protocol": "tcp",
                      "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"});
    let r = add_rule(&api, DEMO, http.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json);
    let rule_id = r.json["security_group_rule"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.json["security_group_rule"]["ethertype"], "IPv4");
    let before = rule_count(&api, DEMO).await;

    let r = add_rule(&api, DEMO, http.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_error(&r),
        (
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {rule_id}.").as_str()
        )
    );
    let mut bad = Vec::new();
    for (change, kind) in [
        (
            json!({"port_range_min": 0}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"port_range_max": 65536}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"port_range_min": 90, "port_range_max": 80}),
            "SecurityGroupInvalidPortRange",
        ),
        (
            json!({"protocol": "300"}),
            "SecurityGroupRuleInvalidProtocol",
        ),
        (
            json!({"protocol": "bogus"}),
            "SecurityGroupRuleInvalidProtocol",
        ),
        (json!({"remote_ip_prefix": "10.0.0.0/33"}), "InvalidCIDR"),
        (json!({"remote_ip_prefix": "not-a-cidr"}), "InvalidCIDR"),
        (json!({"direction": "sideways"}), "HTTPBadRequest"),
    ] {
        let mut rule = http.clone();
        for (k, v) in change.as_object().unwrap() {
            rule[k] = v.clone();
        }
        let r = add_rule(&api, DEMO, rule.clone()).await;
        if r.status != StatusCode::BAD_REQUEST || neutron_error(&r).0 != kind {
            bad.push(format!("{rule}: {} {:?}", r.status, r.json));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    // A group the caller cannot see, as the rule's group or its remote group.
    let alt_default = groups(&api, ALT, "").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = add_rule(
        &api,
        DEMO,
        json!({"security_group_id": alt_default, "direction": "ingress"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = add_rule(
        &api,
        DEMO,
        json!({"security_group_id": default, "direction": "ingress", "remote_group_id": alt_default}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = add_rule(
        &api,
        READER,
        json!({"security_group_id": default, "direction": "egress", "protocol": "udp"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(rule_count(&api, DEMO).await, before, "nothing changed");

    // Show, filter, delete.
    let uri = format!("/v2.0/security-group-rules/{rule_id}");
    let r = api.net(Method::GET, &uri, DEMO, None).await;
    assert_eq!(r.json["security_group_rule"]["port_range_min"], 80);
    assert_eq!(
        api.net(Method::GET, &uri, ALT, None).await.status,
        StatusCode::NOT_FOUND
    );
    let r = api
        .net(
            Method::GET,
            &format!("/v2.0/security-group-rules?security_group_id={default}&direction=ingress&protocol=tcp"),
            DEMO,
            None,
        )
        .await;
    assert_eq!(r.json["security_group_rules"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.net(Method::DELETE, &uri, ALT, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.net(Method::DELETE, &uri, DEMO, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.net(Method::DELETE, &uri, DEMO, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(rule_count(&api, DEMO).await, before - 1);
}

#[tokio::test]
async fn capsules_name_their_groups_and_a_group_in_use_is_kept() {
    let api = TestApi::new("").await;
    let r = api
        .net(
            Method::POST,
            "/v2.0/security-groups",
            DEMO,
            Some(&json!({"security_group": {"name": "web"}})),
        )
        .await;
    let web = r.json["security_group"]["id"].as_str().unwrap().to_owned();

    let mut t = minimal("nogroup");
    t["spec"]["securityGroups"] = json!(["default", "nope"]);
    let r = api.create(DEMO, t).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json);
    assert!(
        r.detail().contains("spec.securityGroups[1]"),
        "{}",
        r.detail()
    );
    assert!(r.detail().contains("nope"), "{}", r.detail());
    assert_eq!(api.capsule_count().await, 0, "nothing made");
    // Another project's group is unknown here.
    let mut t = minimal("alts");
    t["spec"]["securityGroups"] = json!([web.clone()]);
    assert_eq!(api.create(ALT, t).await.status, StatusCode::BAD_REQUEST);

    let mut t = minimal("webcap");
    t["spec"]["securityGroups"] = json!(["web"]);
    let r = api.create(DEMO, t).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json);
    assert_eq!(r.json["security_groups"], json!(["web"]));
    let r = api.create(DEMO, minimal("plain")).await;
    assert_eq!(r.json["security_groups"], json!(["default"]));

    let uri = format!("/v2.0/security-groups/{web}");
    let r = api.net(Method::DELETE, &uri, DEMO, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        neutron_error(&r),
        (
            "SecurityGroupInUse",
            format!("Security Group {web} in use.").as_str()
        )
    );
    assert_eq!(
        api.net(Method::GET, &uri, DEMO, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn versions_are_public_and_everything_else_needs_a_caller() {
    let api = TestApi::new("").await;
    let r = api.send_net_anonymous("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["versions"][0]["id"], "v2.0");
    let r = api.send_net_anonymous("/v2.0/security-groups").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
