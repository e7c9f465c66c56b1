//! Error types: authorization failures, check-string syntax errors and policy-file load errors.

use std::fmt;

/// The result of a failed authorization.
///
/// This is the only error [`crate::Enforcer::enforce`] returns, so an API layer can map it to
/// HTTP 403 without a catch-all arm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The rule evaluated to false (or does not exist and no `default` rule is defined).
    ///
    /// The message is Zun's `PolicyNotAuthorized` text, which clients see in the error body.
    #[error("Policy doesn't allow {rule} to be performed.")]
    NotAuthorized {
        /// The name of the rule that was enforced, e.g. `capsule:delete`.
        rule: String,
    },
}

/// A check string that is not valid oslo.policy syntax.
///
/// oslo.policy logs such rules and turns them into `!` (deny); we refuse to load them instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based character column in the check string where the problem starts.
    pub column: usize,
    /// What is wrong, in words.
    pub reason: String,
}

impl SyntaxError {
    /// Builds an error located at byte offset `offset` of `text`.
    pub(crate) fn at(text: &str, offset: usize, reason: impl Into<String>) -> Self {
        let prefix = text.get(..offset).unwrap_or(text);
        Self {
            column: prefix.chars().count() + 1,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.reason)
    }
}

impl std::error::Error for SyntaxError {}

/// A policy file (or a programmatic override) that cannot be loaded.
///
/// Loading is atomic: when this is returned, the enforcer's rules are unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The contents looked like JSON (they start with `{`) but are not valid JSON or YAML.
    #[error("policy file is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// The contents are not valid YAML.
    #[error("policy file is not valid YAML")]
    Yaml(#[source] serde_yaml::Error),
    /// The document is valid but is not a mapping of rule names to check strings.
    #[error("policy file must be a mapping of rule names to check strings, found {found}")]
    NotAMapping {
        /// The kind of document found (`a list`, `a string`, ...).
        found: &'static str,
    },
    /// A rule's value is neither a check string, null, nor an oslo list-of-lists.
    #[error("policy rule `{rule}` must be a check string, found {found}")]
    InvalidValue {
        /// The rule name.
        rule: String,
        /// The kind of value found.
        found: &'static str,
    },
    /// A rule's check string does not parse.
    #[error("policy rule `{rule}` has an invalid check string")]
    InvalidRule {
        /// The rule name.
        rule: String,
        /// Where and why parsing failed.
        #[source]
        source: SyntaxError,
    },
    /// Rules reference each other (through `rule:` or the `default` rule) in a loop.
    #[error("policy rules reference each other in a cycle: {}", .cycle.join(" -> "))]
    Cycle {
        /// The rule names along the cycle; the first name is repeated at the end.
        cycle: Vec<String>,
    },
}

/// A value that cannot be used as a policy target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Serializing the value to JSON failed.
    #[error("cannot serialize the policy target")]
    Serialize(#[source] serde_json::Error),
    /// The value is not a JSON object.
    #[error("a policy target must be a JSON object, found {found}")]
    NotAnObject {
        /// The kind of JSON value found.
        found: &'static str,
    },
}

/// Names the kind of a JSON value for error messages.
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_authorized_message_is_zuns() {
        let err = PolicyError::NotAuthorized {
            rule: "capsule:delete".into(),
        };
        assert_eq!(
            err.to_string(),
            "Policy doesn't allow capsule:delete to be performed."
        );
    }

    #[test]
    fn syntax_error_column_counts_characters() {
        let err = SyntaxError::at("é and", 3, "x");
        assert_eq!(err.column, 3);
        assert_eq!(err.to_string(), "column 3: x");
    }
}
