//! Security groups and their rules as Neutron's API takes them (`/v2.0/security-groups`,
//! `/v2.0/security-group-rules`): the request bodies parsed and checked with Neutron's rules
//! and error types, so the unchanged `openstack security group ...` commands work and bad
//! input gets a clear 400 (or 409) before anything changes. No I/O.

mod cidr;
mod firewall;
mod rule;

pub use cidr::Cidr;
pub use firewall::{FirewallRule, HostFirewall};
pub use rule::{parse_rule_create, Direction, Ethertype, NewRule, RuleProtocol};

use serde_json::Value;

/// A refusal in Neutron's terms: `{"NeutronError": {"type", "message", "detail"}}` with
/// `status`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NeutronError {
    /// HTTP status (400 bad input, 409 conflict).
    pub status: u16,
    /// Neutron's exception name, e.g. `SecurityGroupInvalidPortValue`.
    pub kind: &'static str,
    /// What is wrong, in Neutron's words.
    pub message: String,
}

impl NeutronError {
    /// A 400 of type `kind`.
    pub fn bad(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind,
            message: message.into(),
        }
    }

    /// Neutron's JSON body for it.
    pub fn body(&self) -> Value {
        serde_json::json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}})
    }
}

/// A security group's name and description, as created or updated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupFields {
    /// New name, if given.
    pub name: Option<String>,
    /// New description, if given.
    pub description: Option<String>,
}

/// Longest name and description Neutron takes.
pub const MAX_NAME: usize = 255;
/// Longest description Neutron takes.
pub const MAX_DESCRIPTION: usize = 255;

/// `POST /v2.0/security-groups` body: `{"security_group": {"name", "description"}}`. A group
/// may not be named `default` (each project's own is made for it).
pub fn parse_group_create(body: &Value) -> Result<GroupFields, NeutronError> {
    let f = group_fields(
        body,
        &["name", "description", "tenant_id", "project_id", "stateful"],
    )?;
    if f.name.as_deref() == Some("default") {
        return Err(NeutronError {
            status: 409,
            kind: "SecurityGroupDefaultAlreadyExists",
            message: "Default security group already exists.".into(),
        });
    }
    Ok(f)
}

/// `PUT /v2.0/security-groups/{id}` body: only `name` and `description` change.
pub fn parse_group_update(body: &Value) -> Result<GroupFields, NeutronError> {
    let f = group_fields(body, &["name", "description"])?;
    if f.name.is_none() && f.description.is_none() {
        return Err(NeutronError::bad(
            "HTTPBadRequest",
            "Resource body required: give name or description to update.",
        ));
    }
    Ok(f)
}

fn group_fields(body: &Value, allowed: &[&str]) -> Result<GroupFields, NeutronError> {
    let obj = resource(body, "security_group")?;
    let mut f = GroupFields::default();
    for (k, v) in obj {
        if !allowed.contains(&k.as_str()) {
            return Err(unrecognized(k));
        }
        match k.as_str() {
            "name" => f.name = Some(text(v, "name", MAX_NAME)?),
            "description" => f.description = Some(text(v, "description", MAX_DESCRIPTION)?),
            _ => {}
        }
    }
    Ok(f)
}

/// The object under `key` of a Neutron request body.
pub(crate) fn resource<'a>(
    body: &'a Value,
    key: &str,
) -> Result<&'a serde_json::Map<String, Value>, NeutronError> {
    let Some(top) = body.as_object() else {
        return Err(NeutronError::bad(
            "HTTPBadRequest",
            "Resource body required",
        ));
    };
    match top.get(key) {
        Some(Value::Object(o)) if top.len() == 1 => Ok(o),
        Some(Value::Object(_)) => Err(NeutronError::bad(
            "HTTPBadRequest",
            format!("Only one resource, {key}, may be given"),
        )),
        _ => Err(NeutronError::bad(
            "HTTPBadRequest",
            format!("Unable to find '{key}' in request body"),
        )),
    }
}

pub(crate) fn unrecognized(key: &str) -> NeutronError {
    NeutronError::bad(
        "HTTPBadRequest",
        format!(
            "Unrecognized attribute(s) '{}'",
            key.chars().take(64).collect::<String>()
        ),
    )
}

fn text(v: &Value, field: &str, max: usize) -> Result<String, NeutronError> {
    match v {
        Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
        Value::String(_) => Err(NeutronError::bad(
            "HTTPBadRequest",
            format!("Invalid input for {field}. Reason: longer than {max} characters."),
        )),
        Value::Null => Ok(String::new()),
        _ => Err(NeutronError::bad(
            "HTTPBadRequest",
            format!("Invalid input for {field}. Reason: not a string."),
        )),
    }
}

#[cfg(test)]
mod tests;
