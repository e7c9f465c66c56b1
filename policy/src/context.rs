//! The two inputs of every check: who is asking ([`Credentials`]) and what about ([`Target`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{json_kind, TargetError};

/// What oslo.context's `to_policy_values()` gives a policy check, plus Zun's `is_admin`.
///
/// Absent ids are `None`; like oslo, a check compares them as the string `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// Keystone user id (`X-User-Id`).
    pub user_id: Option<String>,
    /// Keystone project id of the token's scope (`X-Project-Id`).
    pub project_id: Option<String>,
    /// Domain of the user (`X-User-Domain-Id`).
    pub user_domain_id: Option<String>,
    /// Domain of the project (`X-Project-Domain-Id`).
    pub project_domain_id: Option<String>,
    /// Role names on the token's scope (`X-Roles`, comma-split).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Whether the caller is an admin: Zun computes this once per request by evaluating
    /// `context_is_admin` (see [`crate::Enforcer::credentials_from`]).
    #[serde(default)]
    pub is_admin: bool,
    /// Any other credential key a check may name (`domain_id`, `system_scope`,
    /// `is_admin_project`, `service_roles`, nested token data, ...). The named fields above win
    /// over a key of the same name here.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Credentials {
    /// Credentials for a project-scoped token.
    pub fn project_scoped(
        user_id: impl Into<String>,
        project_id: impl Into<String>,
        roles: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            user_id: Some(user_id.into()),
            project_id: Some(project_id.into()),
            roles: roles.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Whether the value at the dotted credential path `path` has the string form `want`.
    ///
    /// Follows oslo's `GenericCheck`: each path segment is a key lookup, a list along the way
    /// matches if any element matches the rest of the path, and a missing key never matches.
    pub(crate) fn path_matches(&self, path: &[String], want: &str) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        let field = match first.as_str() {
            "user_id" => Some(&self.user_id),
            "project_id" => Some(&self.project_id),
            "user_domain_id" => Some(&self.user_domain_id),
            "project_domain_id" => Some(&self.project_domain_id),
            _ => None,
        };
        if let Some(field) = field {
            return rest.is_empty() && field.as_deref().unwrap_or("None") == want;
        }
        match first.as_str() {
            "roles" => rest.is_empty() && self.roles.iter().any(|r| r == want),
            "is_admin" => rest.is_empty() && python_bool(self.is_admin) == want,
            _ => match self.extra.get(first) {
                Some(Value::Array(items)) => items.iter().any(|v| json_path_matches(v, rest, want)),
                Some(value) => json_path_matches(value, rest, want),
                None => false,
            },
        }
    }

    /// Whether one of the roles equals `role`, ignoring case (oslo's `RoleCheck`).
    pub(crate) fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| eq_ignore_case(r, role))
    }
}

/// oslo's `_find_in_dict`, on JSON values.
fn json_path_matches(value: &Value, path: &[String], want: &str) -> bool {
    let Some((key, rest)) = path.split_first() else {
        return string_form(value) == want;
    };
    match value.as_object().and_then(|o| o.get(key)) {
        Some(Value::Array(items)) => items.iter().any(|v| json_path_matches(v, rest, want)),
        Some(next) => json_path_matches(next, rest, want),
        None => false,
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

fn python_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The string a value compares as, like Python's `str()`: `True`/`False` for booleans, `None`
/// for null, the digits for numbers, the text for strings. Lists and mappings use their JSON
/// text (Python would use its own repr; no sane rule compares those).
pub(crate) fn string_form(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        Value::Bool(b) => Cow::Borrowed(python_bool(*b)),
        Value::Null => Cow::Borrowed("None"),
        Value::Number(n) => Cow::Owned(n.to_string()),
        other => Cow::Owned(other.to_string()),
    }
}

/// Attributes of the object acted on; check strings read them as `%(key)s`.
///
/// Keys are flat: `%(a.b)s` reads the key `a.b`, not a nested value. Values may be any JSON; they
/// compare by their string form (`True`, `None`, `42`, ...), as in oslo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Target(Map<String, Value>);

impl Target {
    /// An empty target (what Zun passes when computing `is_admin`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Zun's default target when a call site passes none:
    /// `{"project_id": creds.project_id, "user_id": creds.user_id}`.
    ///
    /// Owner rules checked against it pass for any project-scoped token.
    pub fn owned_by(creds: &Credentials) -> Self {
        let mut map = Map::new();
        map.insert("project_id".into(), opt_value(&creds.project_id));
        map.insert("user_id".into(), opt_value(&creds.user_id));
        Self(map)
    }

    /// A target for a resource of `project_id` (and nothing else).
    pub fn for_project(project_id: impl Into<String>) -> Self {
        Self::new().with("project_id", project_id.into())
    }

    /// Builds a target from any serializable resource (e.g. a capsule), like Zun passing the
    /// object's dict.
    pub fn from_serialize<T: Serialize + ?Sized>(resource: &T) -> Result<Self, TargetError> {
        let value = serde_json::to_value(resource).map_err(TargetError::Serialize)?;
        Self::try_from(value)
    }

    /// Returns the target with `key` set to `value`.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.0.insert(key.into(), value.into());
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The underlying map.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

fn opt_value(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

impl From<Map<String, Value>> for Target {
    fn from(map: Map<String, Value>) -> Self {
        Self(map)
    }
}

impl TryFrom<Value> for Target {
    type Error = TargetError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        match value {
            Value::Object(map) => Ok(Self(map)),
            other => Err(TargetError::NotAnObject {
                found: json_kind(&other),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(String::from).collect()
    }

    #[test]
    fn named_fields_and_none() {
        let mut c = Credentials::project_scoped("u1", "p1", ["Member"]);
        assert!(c.path_matches(&path("project_id"), "p1"));
        assert!(c.path_matches(&path("user_domain_id"), "None"));
        assert!(c.path_matches(&path("is_admin"), "False"));
        c.is_admin = true;
        assert!(c.path_matches(&path("is_admin"), "True"));
        assert!(!c.path_matches(&path("project_id.x"), "p1"));
    }

    #[test]
    fn roles_generic_is_case_sensitive_role_check_is_not() {
        let c = Credentials::project_scoped("u", "p", ["Member"]);
        assert!(c.path_matches(&path("roles"), "Member"));
        assert!(!c.path_matches(&path("roles"), "member"));
        assert!(c.has_role("member"));
        assert!(c.has_role("MEMBER"));
    }

    #[test]
    fn nested_extra_with_lists() {
        let mut c = Credentials::default();
        c.extra.insert(
            "a".into(),
            json!({"b": [{"x": 1}, {"c": {"d": ["BANANAS", "APPLES"]}}, {}]}),
        );
        c.extra.insert("flag".into(), json!(true));
        assert!(c.path_matches(&path("a.b.c.d"), "APPLES"));
        assert!(!c.path_matches(&path("a.b.c.d"), "PEARS"));
        assert!(!c.path_matches(&path("a.q.v"), "APPLES"));
        assert!(c.path_matches(&path("a.b.x"), "1"));
        assert!(c.path_matches(&path("flag"), "True"));
    }

    #[test]
    fn string_forms_follow_python() {
        assert_eq!(string_form(&json!(true)), "True");
        assert_eq!(string_form(&json!(null)), "None");
        assert_eq!(string_form(&json!(7)), "7");
        assert_eq!(string_form(&json!("x")), "x");
    }

    #[test]
    fn owned_by_and_from_serialize() {
        let c = Credentials::project_scoped("u1", "p1", Vec::<String>::new());
        let t = Target::owned_by(&c);
        assert_eq!(t.get("project_id"), Some(&json!("p1")));
        assert_eq!(t.get("user_id"), Some(&json!("u1")));
        assert_eq!(
            Target::owned_by(&Credentials::default()).get("project_id"),
            Some(&Value::Null)
        );
        assert!(Target::from_serialize(&json!({"project_id": "p"})).is_ok());
        assert!(matches!(
            Target::from_serialize(&json!([1])),
            Err(TargetError::NotAnObject { found: "a list" })
        ));
    }

    #[test]
    fn credentials_serde_flattens_extra() {
        let c: Credentials = serde_json::from_value(json!({
            "user_id": "u", "project_id": "p", "roles": ["admin"], "domain_id": null
        }))
        .unwrap();
        assert_eq!(c.roles, ["admin"]);
        assert!(c.extra.contains_key("domain_id"));
        assert!(!c.is_admin);
    }
}
