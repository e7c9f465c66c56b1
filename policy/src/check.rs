//! The parsed form of a check string and how it evaluates against a target and credentials.

use std::borrow::Cow;
use std::fmt;

use crate::context::{string_form, Credentials, Target};

/// How deep `rule:` references may nest before evaluation gives up and denies.
///
/// Loading rejects reference cycles, so only absurdly deep (but acyclic) chains reach this.
pub(crate) const MAX_RULE_DEPTH: usize = 64;

/// A parsed oslo.policy check string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `@` or the empty string: always allow.
    Always,
    /// `!`: always deny.
    Never,
    /// `rule:<name>`: the result of another rule; an undefined rule falls back to the `default`
    /// rule if one is defined, else denies.
    Rule(String),
    /// `role:<name>`: the credentials hold the role, compared without regard to case. The name
    /// may use `%(key)s` substitutions from the target.
    Role(Template),
    /// `<kind>:<value>`: a credential attribute (or a literal) equals the value.
    Generic {
        /// The left side: a credential path or a literal.
        kind: Kind,
        /// The right side, after `%(key)s` substitution from the target.
        value: Template,
    },
    /// `not <check>`.
    Not(Box<Check>),
    /// `<check> and <check> ...`: all must allow.
    And(Vec<Check>),
    /// `<check> or <check> ...`: one must allow.
    Or(Vec<Check>),
}

/// The left side of a generic check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Python literal (`True`, `False`, `None`, an integer, or a quoted string) compared
    /// with the right side as a string, e.g. `'Member':%(role.name)s`.
    Literal {
        /// The text as written, e.g. `'Member'`.
        raw: String,
        /// Its string form, e.g. `Member`.
        value: String,
    },
    /// A dotted credential path, e.g. `project_id` or `token.roles.name`.
    Path(Vec<String>),
}

impl Kind {
    /// Interprets the left side of a generic check the way oslo's `ast.literal_eval` would.
    pub(crate) fn parse(raw: &str) -> Self {
        let literal = |value: &str| Kind::Literal {
            raw: raw.to_owned(),
            value: value.to_owned(),
        };
        if matches!(raw, "True" | "False" | "None") {
            return literal(raw);
        }
        let bytes = raw.as_bytes();
        if bytes.len() >= 2
            && (bytes[0] == b'\'' || bytes[0] == b'"')
            && bytes[bytes.len() - 1] == bytes[0]
        {
            return literal(&raw[1..raw.len() - 1]);
        }
        if let Ok(n) = raw.parse::<i64>() {
            return literal(&n.to_string());
        }
        Kind::Path(raw.split('.').map(String::from).collect())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Literal { raw, .. } => f.write_str(raw),
            Kind::Path(segments) => f.write_str(&segments.join(".")),
        }
    }
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text used as is (`%%` already turned into `%`).
    Text(String),
    /// `%(key)s`: the string form of the target's `key`.
    Key(String),
}

/// The right side of a check: text with `%(key)s` substitutions from the target, as Python's
/// `match % target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The pieces, in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Substitutes the target's values; `None` when a key is missing (the check then fails).
    pub(crate) fn render<'a>(&'a self, target: &'a Target) -> Option<Cow<'a, str>> {
        match self.parts.as_slice() {
            [] => Some(Cow::Borrowed("")),
            [Part::Text(t)] => Some(Cow::Borrowed(t)),
            [Part::Key(k)] => target.get(k).map(string_form),
            parts => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => out.push_str(t),
                        Part::Key(k) => out.push_str(&string_form(target.get(k)?)),
                    }
                }
                Some(Cow::Owned(out))
            }
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(&t.replace('%', "%%"))?,
                Part::Key(k) => write!(f, "%({k})s")?,
            }
        }
        Ok(())
    }
}

/// Resolves `rule:<name>` references during evaluation.
pub(crate) trait RuleLookup {
    /// The check named `name`, or the fallback (`default`) rule, or `None`.
    fn resolve(&self, name: &str) -> Option<&Check>;
}

/// Everything a check needs to evaluate.
pub(crate) struct Env<'a> {
    pub(crate) target: &'a Target,
    pub(crate) creds: &'a Credentials,
    pub(crate) rules: &'a dyn RuleLookup,
}

impl Check {
    /// Evaluates the check; `depth` counts the `rule:` references followed so far.
    pub(crate) fn evaluate(&self, env: &Env<'_>, depth: usize) -> bool {
        match self {
            Check::Always => true,
            Check::Never => false,
            Check::Rule(name) => {
                depth < MAX_RULE_DEPTH
                    && env
                        .rules
                        .resolve(name)
                        .is_some_and(|c| c.evaluate(env, depth + 1))
            }
            Check::Role(role) => role
                .render(env.target)
                .is_some_and(|r| env.creds.has_role(&r)),
            Check::Generic { kind, value } => {
                let Some(value) = value.render(env.target) else {
                    return false;
                };
                match kind {
                    Kind::Literal { value: lit, .. } => *lit == value,
                    Kind::Path(path) => env.creds.path_matches(path, &value),
                }
            }
            Check::Not(inner) => !inner.evaluate(env, depth),
            Check::And(checks) => checks.iter().all(|c| c.evaluate(env, depth)),
            Check::Or(checks) => checks.iter().any(|c| c.evaluate(env, depth)),
        }
    }

    /// Calls `f` with the name of every rule this check references with `rule:`.
    pub(crate) fn for_each_reference<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        match self {
            Check::Rule(name) => f(name),
            Check::Not(inner) => inner.for_each_reference(f),
            Check::And(checks) | Check::Or(checks) => {
                checks.iter().for_each(|c| c.for_each_reference(f));
            }
            Check::Always | Check::Never | Check::Role(_) | Check::Generic { .. } => {}
        }
    }
}

/// Renders the check in oslo's canonical form (`@`, `!`, `(a or b)`, `not a`, ...); the result
/// parses back to an equal check.
impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, checks: &[Check], op: &str| {
            f.write_str("(")?;
            for (i, c) in checks.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str(")")
        };
        match self {
            Check::Always => f.write_str("@"),
            Check::Never => f.write_str("!"),
            Check::Rule(name) => write!(f, "rule:{name}"),
            Check::Role(role) => write!(f, "role:{role}"),
            Check::Generic { kind, value } => write!(f, "{kind}:{value}"),
            Check::Not(inner) => write!(f, "not {inner}"),
            Check::And(checks) => join(f, checks, "and"),
            Check::Or(checks) => join(f, checks, "or"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;
    use std::collections::HashMap;

    struct Rules(HashMap<String, Check>);

    impl RuleLookup for Rules {
        fn resolve(&self, name: &str) -> Option<&Check> {
            self.0.get(name).or_else(|| self.0.get("default"))
        }
    }

    fn rules(pairs: &[(&str, &str)]) -> Rules {
        Rules(
            pairs
                .iter()
                .map(|(n, s)| (n.to_string(), parse(s).unwrap()))
                .collect(),
        )
    }

    fn eval_with(check: &str, target: &Target, creds: &Credentials, rules: &Rules) -> bool {
        let env = Env {
            target,
            creds,
            rules,
        };
        parse(check).unwrap().evaluate(&env, 0)
    }

    fn eval(check: &str, target: serde_json::Value, creds: &Credentials) -> bool {
        let target = Target::try_from(target).unwrap();
        eval_with(check, &target, creds, &rules(&[]))
    }

    fn member(project: &str) -> Credentials {
        Credentials::project_scoped("u1", project, ["member"])
    }

    use serde_json::json;

    #[test]
    fn constants() {
        let c = member("A");
        assert!(eval("@", json!({}), &c));
        assert!(!eval("!", json!({}), &c));
        assert!(eval("", json!({}), &c));
    }

    #[test]
    fn role_is_case_insensitive_and_substitutes() {
        let c = Credentials::project_scoped("u", "p", ["Admin"]);
        assert!(eval("role:admin", json!({}), &c));
        assert!(eval("role:ADMIN", json!({}), &c));
        assert!(!eval("role:member", json!({}), &c));
        assert!(eval("role:%(r)s", json!({"r": "admin"}), &c));
        assert!(!eval("role:%(r)s", json!({}), &c));
    }

    #[test]
    fn owner_check_and_missing_target_key() {
        let c = member("A");
        let owner = "project_id:%(project_id)s";
        assert!(eval(owner, json!({"project_id": "A"}), &c));
        assert!(!eval(owner, json!({"project_id": "B"}), &c));
        assert!(!eval(owner, json!({}), &c));
    }

    #[test]
    fn none_matches_none_like_oslo() {
        // An unscoped token against a target without a project: both sides are `None`.
        let c = Credentials::default();
        assert!(eval(
            "project_id:%(project_id)s",
            json!({"project_id": null}),
            &c
        ));
    }

    #[test]
    fn is_admin_literal_true() {
        let mut c = member("A");
        assert!(!eval("is_admin:True", json!({}), &c));
        c.is_admin = true;
        assert!(eval("is_admin:True", json!({}), &c));
        assert!(!eval("is_admin:False", json!({}), &c));
    }

    #[test]
    fn literal_left_sides() {
        let c = member("A");
        assert!(eval(
            "'Member':%(role.name)s",
            json!({"role.name": "Member"}),
            &c
        ));
        assert!(!eval(
            "'Member':%(role.name)s",
            json!({"role.name": "x"}),
            &c
        ));
        assert!(eval("True:%(enabled)s", json!({"enabled": true}), &c));
        assert!(!eval("True:%(enabled)s", json!({"enabled": false}), &c));
        assert!(eval("20:%(n)s", json!({"n": 20}), &c));
        assert!(eval("None:%(x)s", json!({"x": null}), &c));
    }

    #[test]
    fn quoted_right_side_keeps_its_quotes() {
        // oslo compares the match text verbatim, quotes included.
        let c = member("xpto");
        assert!(!eval("project_id:'xpto'", json!({}), &c));
        assert!(eval("project_id:xpto", json!({}), &c));
    }

    #[test]
    fn list_credentials_match_any_element() {
        let mut c = member("A");
        c.extra.insert("groups".into(), json!(["g1", "g2"]));
        assert!(eval("groups:g2", json!({}), &c));
        assert!(!eval("groups:g3", json!({}), &c));
        assert!(eval("roles:member", json!({}), &c));
    }

    #[test]
    fn mixed_template() {
        let mut c = member("A");
        c.extra.insert("path".into(), json!("a/7%"));
        assert!(eval("path:a/%(n)s%%", json!({"n": 7}), &c));
    }

    #[test]
    fn rule_references_and_default_fallback() {
        let c = member("A");
        let t = Target::new();
        let r = rules(&[("yes", "@"), ("no", "!")]);
        assert!(eval_with("rule:yes", &t, &c, &r));
        assert!(!eval_with("rule:no", &t, &c, &r));
        assert!(!eval_with("rule:missing", &t, &c, &r));
        let r = rules(&[("default", "role:member")]);
        assert!(eval_with("rule:missing", &t, &c, &r));
    }

    #[test]
    fn runaway_recursion_denies() {
        let c = member("A");
        let r = rules(&[("a", "rule:a")]);
        assert!(!eval_with("rule:a", &Target::new(), &c, &r));
    }

    #[test]
    fn boolean_operators() {
        let c = member("A");
        assert!(eval("role:member and not role:admin", json!({}), &c));
        assert!(eval("! or @", json!({}), &c));
        assert!(!eval("! or @ and !", json!({}), &c));
        assert!(eval("not (! or !)", json!({}), &c));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "@",
            "!",
            "rule:a",
            "role:%(x)s",
            "'Member':%(role.name)s",
            "(a:1 or (b:2 and not c:3%%))",
        ] {
            let check = parse(s).unwrap();
            assert_eq!(parse(&check.to_string()).unwrap(), check, "{s}");
        }
    }

    #[test]
    fn references() {
        let check = parse("rule:a or (not rule:b and role:c)").unwrap();
        let mut names = Vec::new();
        check.for_each_reference(&mut |n| names.push(n.to_owned()));
        assert_eq!(names, ["a", "b"]);
    }
}
