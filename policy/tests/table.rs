//! Every default rule x persona x ownership, compared with the checked-in
//! `tests/expected/defaults.txt`, so a change of default shows in review.
//!
//! `UPDATE_EXPECT=1 cargo test -p policy --test table` rewrites the file.

use std::collections::BTreeSet;
use std::path::PathBuf;

use policy::{defaults, Credentials, Enforcer, Target};

const PROJECT_A: &str = "project-a";
const PROJECT_B: &str = "project-b";

/// (name, project, roles)
const PERSONAS: &[(&str, &str, &[&str])] = &[
    ("admin_a", PROJECT_A, &["admin", "member", "reader"]),
    ("member_a", PROJECT_A, &["member", "reader"]),
    ("reader_a", PROJECT_A, &["reader"]),
    ("member_b", PROJECT_B, &["member", "reader"]),
    ("noroles_a", PROJECT_A, &[]),
];

/// (label, owning project)
const OWNERS: &[(&str, &str)] = &[("owner=A", PROJECT_A), ("owner=B", PROJECT_B)];

fn render(enforcer: &Enforcer) -> String {
    let width = defaults().iter().map(|d| d.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for d in defaults() {
        for (persona, project, roles) in PERSONAS {
            let creds = enforcer.credentials_from(Credentials::project_scoped(
                format!("user-{persona}"),
                *project,
                roles.iter().copied(),
            ));
            for (label, owner) in OWNERS {
                let target = Target::for_project(*owner).with("user_id", "user-owner");
                let verdict = if enforcer.check(d.name, &target, &creds) {
                    "ALLOW"
                } else {
                    "DENY"
                };
                out.push_str(&format!(
                    "{:width$} {persona:9} {label} => {verdict}\n",
                    d.name
                ));
            }
        }
    }
    out
}

fn expected_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/expected/defaults.txt")
}

#[test]
fn defaults_table_matches_expected_file() {
    let actual = render(&Enforcer::with_defaults());
    let path = expected_path();
    if std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_EXPECT=1", path.display()));
    if actual != expected {
        let want: BTreeSet<&str> = expected.lines().collect();
        let got: BTreeSet<&str> = actual.lines().collect();
        let mut diff = String::new();
        for l in want.difference(&got) {
            diff.push_str(&format!("- {l}\n"));
        }
        for l in got.difference(&want) {
            diff.push_str(&format!("+ {l}\n"));
        }
        panic!(
            "policy table differs from {} (UPDATE_EXPECT=1 to accept):\n{diff}",
            path.display()
        );
    }
}

/// Lines of `after` that differ from `before`, as `rule persona target => VERDICT` of `after`.
fn changed_rows(before: &str, after: &str) -> Vec<String> {
    before
        .lines()
        .zip(after.lines())
        .filter(|(b, a)| b != a)
        .map(|(_, a)| a.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn override_changes_exactly_its_rows() {
    let base = render(&Enforcer::with_defaults());

    // Admin-only delete: members of the owning project lose it; admins keep it.
    let restricted =
        Enforcer::from_policy_file("\"capsule:delete\": \"rule:context_is_admin\"\n").unwrap();
    assert_eq!(
        changed_rows(&base, &render(&restricted)),
        [
            "capsule:delete member_a owner=A => DENY",
            "capsule:delete member_b owner=B => DENY",
        ]
    );

    // Zun inlines admin_or_owner, so overriding it changes only its own rows.
    let inlined = Enforcer::from_policy_file("admin_or_owner: \"!\"\n").unwrap();
    assert_eq!(
        changed_rows(&base, &render(&inlined)),
        [
            "admin_or_owner admin_a owner=A => DENY",
            "admin_or_owner admin_a owner=B => DENY",
            "admin_or_owner member_a owner=A => DENY",
            "admin_or_owner reader_a owner=A => DENY",
            "admin_or_owner member_b owner=B => DENY",
            "admin_or_owner noroles_a owner=A => DENY",
        ]
    );

    // A reader-only role can no longer create volumes; nothing else moves.
    let readers = Enforcer::from_policy_file(
        "{\"volume:create\": \"is_admin:True or (role:member and project_id:%(project_id)s)\"}",
    )
    .unwrap();
    assert_eq!(
        changed_rows(&base, &render(&readers)),
        [
            "volume:create reader_a owner=A => DENY",
            "volume:create noroles_a owner=A => DENY",
        ]
    );
}

#[test]
fn widening_context_is_admin_moves_every_admin_rule_together() {
    let base = render(&Enforcer::with_defaults());
    let widened =
        Enforcer::from_policy_file("context_is_admin: \"role:admin or role:reader\"\n").unwrap();
    let changed = changed_rows(&base, &render(&widened));
    // Readers become admins: every changed row is a newly allowed reader-holding persona.
    assert!(!changed.is_empty());
    for row in &changed {
        assert!(row.ends_with("=> ALLOW"), "{row}");
        assert!(
            row.contains(" member_a ") || row.contains(" reader_a ") || row.contains(" member_b "),
            "{row}"
        );
    }
    // But not the rules that name `role:admin` directly.
    assert!(!changed
        .iter()
        .any(|r| r.starts_with("network:attach_external_network ")));
    // And `deny_everybody` stays shut.
    assert!(!changed
        .iter()
        .any(|r| r.starts_with("container:create:privileged ")));
}
