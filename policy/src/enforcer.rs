//! The rule set in force (defaults plus policy-file overrides) and the questions asked of it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::check::{Check, Env, RuleLookup};
use crate::context::{Credentials, Target};
use crate::defaults::{self, defaults};
use crate::error::{json_kind, LoadError, PolicyError};
use crate::parser::{parse, parse_single};

/// The rule oslo falls back to for undefined rule names (`[oslo_policy] policy_default_rule`).
/// Zun registers no such rule, so undefined rules deny unless a policy file adds one.
pub const DEFAULT_RULE: &str = "default";

/// The rule Zun evaluates once per request to decide `is_admin`.
pub const CONTEXT_IS_ADMIN: &str = "context_is_admin";

#[derive(Debug, Clone)]
struct Rule {
    check_str: String,
    check: Check,
}

#[derive(Debug, Clone, Default)]
struct Rules(HashMap<String, Rule>);

impl RuleLookup for Rules {
    fn resolve(&self, name: &str) -> Option<&Check> {
        self.0
            .get(name)
            .or_else(|| self.0.get(DEFAULT_RULE))
            .map(|r| &r.check)
    }
}

/// What a policy file changed, for the caller to log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Registered rules whose check now differs from the default.
    pub overridden: Vec<String>,
    /// Names that are not registered defaults (helper rules, or typos worth a warning).
    pub added: Vec<String>,
    /// Registered rules set to their default check (oslo warns these can be removed).
    pub redundant: Vec<String>,
}

/// Evaluates named rules for a target and credentials; cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Enforcer {
    rules: Rules,
}

impl Enforcer {
    /// An enforcer with no rules at all: every rule denies. Mostly for tests.
    pub fn empty() -> Self {
        Self::default()
    }

    /// An enforcer with every default of [`defaults()`](crate::defaults::defaults).
    pub fn with_defaults() -> Self {
        let rules = defaults()
            .iter()
            .map(|d| {
                // The defaults are tested to parse; should one ever fail, it fails closed.
                let check = parse(d.check_str).unwrap_or(Check::Never);
                let rule = Rule {
                    check_str: d.check_str.to_owned(),
                    check,
                };
                (d.name.to_owned(), rule)
            })
            .collect();
        Self {
            rules: Rules(rules),
        }
    }

    /// The defaults with the overrides of a policy file applied, see [`Self::load_overrides`].
    pub fn from_policy_file(contents: &str) -> Result<Self, LoadError> {
        let mut enforcer = Self::with_defaults();
        enforcer.load_overrides(contents)?;
        Ok(enforcer)
    }

    /// Applies the contents of an oslo policy file: a YAML or JSON mapping of rule name to
    /// check string.
    ///
    /// Rules in the file replace rules of the same name; other names are added. As in oslo, a
    /// null value means the empty check string (always allow), and a list value is the legacy
    /// list-of-lists syntax (outer list `or`, inner lists `and`). Empty contents change nothing.
    /// On error nothing changes.
    pub fn load_overrides(&mut self, contents: &str) -> Result<LoadReport, LoadError> {
        let parsed = parse_document(contents)?;
        let mut new_rules = Vec::with_capacity(parsed.len());
        for (name, value) in parsed {
            let rule = rule_from_value(&name, &value)?;
            new_rules.push((name, rule));
        }
        self.apply(new_rules)
    }

    /// Sets one rule from a check string, as a one-line policy file would.
    pub fn set_rule(&mut self, name: &str, check_str: &str) -> Result<LoadReport, LoadError> {
        let check = parse(check_str).map_err(|source| LoadError::InvalidRule {
            rule: name.to_owned(),
            source,
        })?;
        let rule = Rule {
            check_str: check_str.to_owned(),
            check,
        };
        self.apply(vec![(name.to_owned(), rule)])
    }

    fn apply(&mut self, new_rules: Vec<(String, Rule)>) -> Result<LoadReport, LoadError> {
        let mut report = LoadReport::default();
        let mut rules = self.rules.clone();
        for (name, rule) in new_rules {
            match defaults::find(&name) {
                None => report.added.push(name.clone()),
                Some(d) if parse(d.check_str).is_ok_and(|c| c == rule.check) => {
                    report.redundant.push(name.clone());
                }
                Some(_) => report.overridden.push(name.clone()),
            }
            rules.0.insert(name, rule);
        }
        if let Some(cycle) = find_cycle(&rules) {
            return Err(LoadError::Cycle { cycle });
        }
        self.rules = rules;
        Ok(report)
    }

    /// Enforces `rule`: `Ok(())` if it allows, else Zun's `PolicyNotAuthorized` error.
    ///
    /// An undefined rule denies, unless a `default` rule is defined, which then decides.
    pub fn enforce(
        &self,
        rule: &str,
        target: &Target,
        creds: &Credentials,
    ) -> Result<(), PolicyError> {
        if self.check(rule, target, creds) {
            Ok(())
        } else {
            Err(PolicyError::NotAuthorized {
                rule: rule.to_owned(),
            })
        }
    }

    /// Whether `rule` allows; like [`Self::enforce`] without the error.
    pub fn check(&self, rule: &str, target: &Target, creds: &Credentials) -> bool {
        let env = Env {
            target,
            creds,
            rules: &self.rules,
        };
        self.rules
            .resolve(rule)
            .is_some_and(|check| check.evaluate(&env, 0))
    }

    /// Like [`Self::check`], but a rule that is not defined allows (Zun's `might_not_exist`,
    /// used for the `capsule:get:<field>` view filters). The `default` rule is not consulted.
    pub fn check_might_not_exist(&self, rule: &str, target: &Target, creds: &Credentials) -> bool {
        !self.rule_exists(rule) || self.check(rule, target, creds)
    }

    /// Whether a rule of this name is defined (by default or by a policy file).
    pub fn rule_exists(&self, rule: &str) -> bool {
        self.rules.0.contains_key(rule)
    }

    /// The check string in force for `rule`, if defined.
    pub fn check_str(&self, rule: &str) -> Option<&str> {
        self.rules.0.get(rule).map(|r| r.check_str.as_str())
    }

    /// All defined rule names, sorted.
    pub fn rule_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.rules.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// `(rule, missing)` pairs where `rule` references an undefined rule `missing` (oslo's
    /// `check_rules` warns about these), sorted. With a `default` rule defined, these fall back
    /// to it instead of denying.
    pub fn undefined_references(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, rule) in &self.rules.0 {
            rule.check.for_each_reference(&mut |r| {
                if !self.rules.0.contains_key(r) {
                    out.push((name.clone(), r.to_owned()));
                }
            });
        }
        out.sort();
        out.dedup();
        out
    }

    /// Whether the credentials make the caller an admin: `context_is_admin` evaluated against
    /// an empty target, as Zun's `check_is_admin`. The credentials' own `is_admin` is ignored.
    pub fn is_admin(&self, creds: &Credentials) -> bool {
        if creds.is_admin {
            let unset = Credentials {
                is_admin: false,
                ..creds.clone()
            };
            self.check(CONTEXT_IS_ADMIN, &Target::new(), &unset)
        } else {
            self.check(CONTEXT_IS_ADMIN, &Target::new(), creds)
        }
    }

    /// Returns the credentials with `is_admin` computed by [`Self::is_admin`], as Zun does
    /// once when it builds a request context.
    pub fn credentials_from(&self, mut creds: Credentials) -> Credentials {
        creds.is_admin = self.is_admin(&creds);
        creds
    }
}

/// Parses policy-file contents into name -> value, in file order.
fn parse_document(contents: &str) -> Result<Vec<(String, Value)>, LoadError> {
    let value: Value = if contents.trim_start().starts_with('{') {
        match serde_json::from_str(contents) {
            Ok(v) => v,
            // A YAML flow mapping also starts with `{`.
            Err(json_err) => {
                serde_yaml::from_str(contents).map_err(|_| LoadError::Json(json_err))?
            }
        }
    } else {
        serde_yaml::from_str(contents).map_err(LoadError::Yaml)?
    };
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => Ok(map.into_iter().collect()),
        other => Err(LoadError::NotAMapping {
            found: json_kind(&other),
        }),
    }
}

fn rule_from_value(name: &str, value: &Value) -> Result<Rule, LoadError> {
    let invalid = |source| LoadError::InvalidRule {
        rule: name.to_owned(),
        source,
    };
    let bad_value = |v: &Value| LoadError::InvalidValue {
        rule: name.to_owned(),
        found: json_kind(v),
    };
    match value {
        Value::String(s) => Ok(Rule {
            check_str: s.clone(),
            check: parse(s).map_err(invalid)?,
        }),
        Value::Null => Ok(Rule {
            check_str: String::new(),
            check: Check::Always,
        }),
        Value::Array(outer) => {
            let check = list_rule(outer, bad_value, invalid)?;
            Ok(Rule {
                check_str: check.to_string(),
                check,
            })
        }
        other => Err(bad_value(other)),
    }
}

/// oslo's legacy list-of-lists: `[]` allows, outer list is `or`, inner lists are `and`, a bare
/// string is a one-element inner list, empty inner lists are skipped (all skipped: deny).
fn list_rule(
    outer: &[Value],
    bad_value: impl Fn(&Value) -> LoadError,
    invalid: impl Fn(crate::error::SyntaxError) -> LoadError,
) -> Result<Check, LoadError> {
    if outer.is_empty() {
        return Ok(Check::Always);
    }
    let mut ors = Vec::new();
    for inner in outer {
        let strings: Vec<&Value> = match inner {
            Value::Array(items) => items.iter().collect(),
            Value::String(_) => vec![inner],
            other => return Err(bad_value(other)),
        };
        let mut ands = Vec::new();
        for item in strings {
            let Value::String(s) = item else {
                return Err(bad_value(item));
            };
            ands.push(parse_single(s).map_err(&invalid)?);
        }
        match ands.len() {
            0 => {}
            1 => ors.extend(ands),
            _ => ors.push(Check::And(ands)),
        }
    }
    Ok(match ors.len() {
        0 => Check::Never,
        1 => ors.swap_remove(0),
        _ => Check::Or(ors),
    })
}

/// A reference cycle among the rules (following the `default` fallback), if any.
fn find_cycle(rules: &Rules) -> Option<Vec<String>> {
    // Resolve each reference to the rule that would actually be evaluated.
    let target_of = |name: &str| -> Option<String> {
        if rules.0.contains_key(name) {
            Some(name.to_owned())
        } else if rules.0.contains_key(DEFAULT_RULE) {
            Some(DEFAULT_RULE.to_owned())
        } else {
            None
        }
    };
    let mut edges: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, rule) in &rules.0 {
        let mut out = Vec::new();
        rule.check
            .for_each_reference(&mut |r| out.extend(target_of(r)));
        edges.insert(name, out);
    }
    let mut done: HashSet<&str> = HashSet::new();
    for start in edges.keys() {
        let mut path: Vec<&str> = Vec::new();
        if let Some(cycle) = visit(start, &edges, &mut path, &mut done) {
            return Some(cycle);
        }
    }
    None
}

fn visit<'a>(
    node: &'a str,
    edges: &'a BTreeMap<&'a str, Vec<String>>,
    path: &mut Vec<&'a str>,
    done: &mut HashSet<&'a str>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|n| *n == node) {
        let mut cycle: Vec<String> = path[i..].iter().map(|s| (*s).to_owned()).collect();
        cycle.push(node.to_owned());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node);
    for next in edges.get(node).into_iter().flatten() {
        if let Some(cycle) = visit(next, edges, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin_a(e: &Enforcer) -> Credentials {
        e.credentials_from(Credentials::project_scoped("u-admin", "A", ["admin"]))
    }

    fn member_a(e: &Enforcer) -> Credentials {
        e.credentials_from(Credentials::project_scoped("u-member", "A", ["member"]))
    }

    #[test]
    fn is_admin_comes_from_context_is_admin() {
        let mut e = Enforcer::with_defaults();
        assert!(admin_a(&e).is_admin);
        assert!(!member_a(&e).is_admin);
        e.set_rule("context_is_admin", "role:admin or role:cloud_admin")
            .unwrap();
        let c = e.credentials_from(Credentials::project_scoped("u", "A", ["Cloud_Admin"]));
        assert!(c.is_admin);
        // A stale flag on the input does not make itself true.
        e.set_rule("context_is_admin", "is_admin:True").unwrap();
        let mut c = Credentials::project_scoped("u", "A", ["x"]);
        c.is_admin = true;
        assert!(!e.is_admin(&c));
    }

    #[test]
    fn enforce_owner_and_admin_rules() {
        let e = Enforcer::with_defaults();
        let b = Target::for_project("B");
        let a = Target::for_project("A");
        assert!(e.enforce("capsule:get", &a, &member_a(&e)).is_ok());
        let err = e.enforce("capsule:get", &b, &member_a(&e)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Policy doesn't allow capsule:get to be performed."
        );
        assert!(e.enforce("capsule:get", &b, &admin_a(&e)).is_ok());
        assert!(!e.check("capsule:delete_all_projects", &a, &member_a(&e)));
        assert!(e.check("capsule:delete_all_projects", &a, &admin_a(&e)));
        // Privileged containers are denied to everybody, admins included.
        assert!(!e.check("container:create:privileged", &a, &admin_a(&e)));
    }

    #[test]
    fn default_target_lets_any_scoped_token_through_owner_rules() {
        let e = Enforcer::with_defaults();
        let m = member_a(&e);
        assert!(e.check("capsule:create", &Target::owned_by(&m), &m));
        assert!(e.check("capsule:get_all", &Target::owned_by(&m), &m));
    }

    #[test]
    fn undefined_rules_deny_unless_default_is_set() {
        let mut e = Enforcer::with_defaults();
        let m = member_a(&e);
        let t = Target::owned_by(&m);
        assert!(!e.check("capsule:typo", &t, &m));
        assert!(!e.rule_exists("capsule:typo"));
        e.load_overrides("default: \"role:member\"").unwrap();
        assert!(e.check("capsule:typo", &t, &m));
        // might_not_exist ignores the default rule.
        assert!(e.check_might_not_exist("capsule:get:name", &t, &m));
    }

    #[test]
    fn might_not_exist() {
        let e = Enforcer::with_defaults();
        let m = member_a(&e);
        let t = Target::owned_by(&m);
        assert!(e.check_might_not_exist("capsule:get:status", &t, &m));
        assert!(!e.check_might_not_exist("capsule:get:host", &t, &m));
        assert!(e.check_might_not_exist("capsule:get:host", &t, &admin_a(&e)));
    }

    #[test]
    fn yaml_and_json_overrides() {
        let mut e = Enforcer::with_defaults();
        let report = e
            .load_overrides(
                "# comment\n\"capsule:get\": \"rule:context_is_admin\"\nmy_helper: \"role:x\"\n\
                 \"capsule:create\": \"is_admin:True or (role:member and project_id:%(project_id)s)\"\n",
            )
            .unwrap();
        assert_eq!(report.overridden, ["capsule:get"]);
        assert_eq!(report.added, ["my_helper"]);
        assert_eq!(report.redundant, ["capsule:create"]);
        assert_eq!(e.check_str("capsule:get"), Some("rule:context_is_admin"));
        assert!(e.rule_exists("my_helper"));

        let mut e = Enforcer::with_defaults();
        e.load_overrides("{\n\t\"capsule:delete\": \"!\",\n\t\"x\": \"\"\n}")
            .unwrap();
        assert_eq!(e.check_str("capsule:delete"), Some("!"));
        let m = member_a(&e);
        assert!(!e.check("capsule:delete", &Target::owned_by(&m), &m));
        assert!(e.check("x", &Target::new(), &m));
        // YAML flow mapping that is not JSON.
        e.load_overrides("{x: \"!\"}").unwrap();
        assert_eq!(e.check_str("x"), Some("!"));
    }

    #[test]
    fn empty_and_null_values() {
        let mut e = Enforcer::with_defaults();
        assert_eq!(e.load_overrides("").unwrap(), LoadReport::default());
        assert_eq!(
            e.load_overrides("# only comments\n").unwrap(),
            LoadReport::default()
        );
        e.load_overrides("open:\n").unwrap();
        assert!(e.check("open", &Target::new(), &Credentials::default()));
    }

    #[test]
    fn legacy_list_of_lists() {
        let mut e = Enforcer::empty();
        e.load_overrides(
            "a: [[\"role:x\", \"role:y\"], [\"role:z\"]]\nb: []\nc: [[]]\nd: [\"role:x\"]\n",
        )
        .unwrap();
        assert_eq!(e.check_str("a"), Some("((role:x and role:y) or role:z)"));
        let xy = Credentials::project_scoped("u", "p", ["x", "y"]);
        let x = Credentials::project_scoped("u", "p", ["x"]);
        let t = Target::new();
        assert!(e.check("a", &t, &xy));
        assert!(!e.check("a", &t, &x));
        assert!(e.check("b", &t, &x));
        assert!(!e.check("c", &t, &x));
        assert!(e.check("d", &t, &x));
    }

    #[test]
    fn load_errors_name_the_rule_and_change_nothing() {
        let mut e = Enforcer::with_defaults();
        let err = e
            .load_overrides("\"capsule:get\": \"!\"\n\"capsule:delete\": \"role:a or\"\n")
            .unwrap_err();
        let LoadError::InvalidRule { rule, source } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(rule, "capsule:delete");
        assert_eq!(source.column, 10);
        assert_eq!(
            err.to_string(),
            "policy rule `capsule:delete` has an invalid check string"
        );
        assert_eq!(e.check_str("capsule:get"), Some(RULE_OWNER));

        assert!(matches!(
            e.load_overrides("x: http://example.com").unwrap_err(),
            LoadError::InvalidRule { .. }
        ));
        assert!(matches!(
            e.load_overrides("x: 3").unwrap_err(),
            LoadError::InvalidValue {
                found: "a number",
                ..
            }
        ));
        assert!(matches!(
            e.load_overrides("- a\n- b\n").unwrap_err(),
            LoadError::NotAMapping { found: "a list" }
        ));
        assert!(matches!(
            e.load_overrides("a: [b\n").unwrap_err(),
            LoadError::Yaml(_)
        ));
        assert!(matches!(
            e.load_overrides("{\"a\": \"!\"").unwrap_err(),
            LoadError::Json(_)
        ));
        assert!(matches!(
            e.load_overrides("x: [[\"nope\"]]").unwrap_err(),
            LoadError::InvalidRule { .. }
        ));
    }

    const RULE_OWNER: &str = crate::defaults::RULE_ADMIN_OR_OWNER;

    #[test]
    fn cycles_are_rejected() {
        let mut e = Enforcer::with_defaults();
        let err = e
            .load_overrides("a: \"rule:b\"\nb: \"role:x or rule:a\"\n")
            .unwrap_err();
        let LoadError::Cycle { cycle } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(cycle, &["a", "b", "a"]);
        assert!(!e.rule_exists("a"));
        // Through the default rule.
        assert!(matches!(
            e.load_overrides("default: \"rule:nothing_here\"")
                .unwrap_err(),
            LoadError::Cycle { .. }
        ));
        assert!(matches!(
            e.set_rule("context_is_admin", "rule:admin_api")
                .unwrap_err(),
            LoadError::Cycle { .. }
        ));
    }

    #[test]
    fn undefined_references_are_reported() {
        let mut e = Enforcer::with_defaults();
        assert!(e.undefined_references().is_empty());
        e.set_rule("x", "rule:nope or rule:admin_api").unwrap();
        assert_eq!(
            e.undefined_references(),
            [("x".to_owned(), "nope".to_owned())]
        );
    }

    #[test]
    fn rule_names_cover_defaults() {
        let e = Enforcer::with_defaults();
        assert_eq!(e.rule_names().len(), defaults().len());
        assert!(Enforcer::empty().rule_names().is_empty());
        assert!(!Enforcer::empty().check("@", &Target::new(), &Credentials::default()));
    }

    #[test]
    fn enforcer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Enforcer>();
    }
}
