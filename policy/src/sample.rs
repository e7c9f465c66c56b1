//! A commented `policy.yaml` sample of every default, in the layout of oslo's sample generator.

use std::fmt::Write as _;

use crate::defaults::{defaults, Origin, RuleDefault};

/// Width oslo wraps descriptions to (`textwrap.wrap(..., 70)`), prefix included.
const WRAP: usize = 70;

/// The sample policy file: for each default, its description, the operations it guards and the
/// rule itself, commented out. Uncommenting a `#"name": "check"` line overrides that rule.
pub fn sample_yaml() -> String {
    let mut out = String::new();
    for d in defaults() {
        push_rule(&mut out, d);
    }
    out
}

fn push_rule(out: &mut String, d: &RuleDefault) {
    for line in wrap(d.description) {
        out.push_str(&line);
        out.push('\n');
    }
    if d.origin == Origin::Ours {
        out.push_str("# (Added by this service; not a Zun rule.)\n");
    }
    for op in d.operations {
        // Two spaces between method and path, as oslo writes them.
        let _ = writeln!(out, "# {}  {}", op.method, op.path);
    }
    let _ = writeln!(out, "#{}: {}", quote(d.name), quote(d.check_str));
    out.push('\n');
}

/// A YAML double-quoted scalar.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Greedy word wrap into `# `-prefixed comment lines of at most [`WRAP`] characters.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.chars().count() + 1 + word.chars().count() > WRAP {
            lines.push(std::mem::replace(&mut line, String::from("#")));
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > 1 {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_seventy() {
        let text = "word ".repeat(40);
        let lines = wrap(&text);
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(l.len() <= WRAP, "{l}");
            assert!(l.starts_with("# "));
        }
        assert!(wrap("").is_empty());
    }

    #[test]
    fn quotes_yaml() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn capsule_create_entry() {
        let sample = sample_yaml();
        assert!(sample.contains(
            "# Create a capsule.\n# POST  /v1/capsules/\n\
             #\"capsule:create\": \"is_admin:True or (role:member and project_id:%(project_id)s)\"\n\n"
        ));
        assert!(sample.contains("# (Added by this service; not a Zun rule.)\n"));
    }
}
