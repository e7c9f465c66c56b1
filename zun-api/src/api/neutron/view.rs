//! Security groups and rules as Neutron shows them, and lists as Neutron answers them: the
//! parsed [`ListQuery`]'s filters, `fields`, and `limit` and `marker` paging with a `next`
//! link, applied to the rendered items.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use db::entity::security_group_rule;
use db::secgroups::SecurityGroupRecord;
use serde_json::{json, Map, Value};

use super::parse::ListQuery;

/// The attributes of a security group.
pub const GROUP_FIELDS: &[&str] = &[
    "id",
    "name",
    "stateful",
    "tenant_id",
    "project_id",
    "description",
    "security_group_rules",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "shared",
];

/// The attributes of a rule.
pub const RULE_FIELDS: &[&str] = &[
    "id",
    "tenant_id",
    "project_id",
    "security_group_id",
    "ethertype",
    "direction",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "normalized_cidr",
    "description",
    "tags",
    "created_at",
    "updated_at",
    "revision_number",
    "belongs_to_default_sg",
];

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A rule; `default_groups` are the ids of projects' default groups.
pub fn rule(r: &security_group_rule::Model, default_groups: &BTreeSet<String>) -> Value {
    json!({
        "id": r.id,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "security_group_id": r.security_group_id,
        "ethertype": r.ethertype,
        "direction": r.direction,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": null,
        "normalized_cidr": r.remote_ip_prefix,
        "description": r.description,
        "tags": [],
        "created_at": time(r.created_at),
        "updated_at": time(r.created_at),
        "revision_number": 0,
        "belongs_to_default_sg": default_groups.contains(&r.security_group_id),
    })
}

/// A group with its rules.
pub fn group(rec: &SecurityGroupRecord, default_groups: &BTreeSet<String>) -> Value {
    let g = &rec.group;
    json!({
        "id": g.id,
        "name": g.name,
        "stateful": true,
        "tenant_id": g.project_id,
        "project_id": g.project_id,
        "description": g.description,
        "security_group_rules": rec.rules.iter().map(|r| rule(r, default_groups)).collect::<Vec<_>>(),
        "tags": [],
        "created_at": time(g.created_at),
        "updated_at": time(g.updated_at),
        "revision_number": g.revision_number,
        "shared": false,
    })
}

impl ListQuery {
    /// Whether `item` passes every filter.
    fn matches(&self, item: &Value) -> bool {
        self.filters.iter().all(|(key, wanted)| {
            let have = item.get(key).map_or(String::new(), text);
            wanted.iter().any(|w| {
                if matches!(item.get(key), Some(Value::Bool(_))) {
                    w.eq_ignore_ascii_case(&have)
                } else {
                    *w == have
                }
            })
        })
    }

    /// Filters, pages and projects `items` into Neutron's list body under `collection`;
    /// `base` is the URL of the collection (for the next link).
    pub fn render(&self, collection: &str, items: Vec<Value>, base: &str) -> Value {
        let mut kept: Vec<Value> = items.into_iter().filter(|i| self.matches(i)).collect();
        if let Some(m) = &self.marker {
            if let Some(pos) = kept
                .iter()
                .position(|i| i.get("id").and_then(Value::as_str) == Some(m))
            {
                kept.drain(..=pos);
            }
        }
        let mut out = Map::new();
        let mut next = None;
        if let Some(limit) = self.limit {
            if kept.len() > limit {
                kept.truncate(limit);
                if let Some(last) = kept
                    .last()
                    .and_then(|i| i.get("id"))
                    .and_then(Value::as_str)
                {
                    let mut pairs: Vec<String> = self
                        .rest
                        .iter()
                        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                        .collect();
                    pairs.push(format!("marker={}", enc(last)));
                    next = Some(format!("{base}?{}", pairs.join("&")));
                }
            }
        }
        let kept: Vec<Value> = kept.into_iter().map(|i| self.project(i)).collect();
        out.insert(collection.to_owned(), Value::Array(kept));
        if let Some(href) = next {
            out.insert(
                format!("{collection}_links"),
                json!([{"rel": "next", "href": href}]),
            );
        }
        Value::Object(out)
    }

    /// `item` with only the asked-for `fields` (all when none were asked for).
    pub fn project(&self, item: Value) -> Value {
        project(item, &self.fields)
    }
}

/// `item` with only `fields` (all when empty).
pub fn project(item: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return item;
    }
    match item {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect(),
        ),
        other => other,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_fields_and_paging() {
        let items = vec![
            json!({"id": "a", "name": "default", "stateful": true}),
            json!({"id": "b", "name": "web", "stateful": true}),
            json!({"id": "c", "name": "web", "stateful": false}),
        ];
        let q = ListQuery::parse(Some("name=web&fields=id"), GROUP_FIELDS).unwrap();
        assert_eq!(
            q.render(
                "security_groups",
                items.clone(),
                "http://h/v2.0/security-groups"
            ),
            json!({"security_groups": [{"id": "b"}, {"id": "c"}]})
        );
        let q = ListQuery::parse(Some("stateful=False"), GROUP_FIELDS).unwrap();
        assert_eq!(
            q.render("security_groups", items.clone(), "u")["security_groups"],
            json!([{"id": "c", "name": "web", "stateful": false}])
        );
        let q = ListQuery::parse(Some("name=default&name=web&limit=2"), GROUP_FIELDS).unwrap();
        let page = q.render("security_groups", items.clone(), "http://h/x");
        assert_eq!(page["security_groups"].as_array().unwrap().len(), 2);
        assert_eq!(
            page["security_groups_links"][0]["href"],
            "http://h/x?name=default&name=web&limit=2&marker=b"
        );
        let q = ListQuery::parse(Some("limit=2&marker=b"), GROUP_FIELDS).unwrap();
        assert_eq!(
            q.render("security_groups", items, "u"),
            json!({"security_groups": [{"id": "c", "name": "web", "stateful": false}]})
        );
        let e = ListQuery::parse(Some("colour=red"), GROUP_FIELDS).unwrap_err();
        assert_eq!(
            e.into_response().status(),
            axum::http::StatusCode::BAD_REQUEST
        );
    }

    use axum::response::IntoResponse;
}
