//! Validation errors: one [`FieldError`] per offending JSON path, collected into [`TemplateErrors`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// How many errors [`TemplateErrors`]' `Display` lists before summarising the rest.
const DISPLAYED_ERRORS: usize = 5;

/// Longest object key rendered verbatim inside an error path; longer keys are truncated.
const MAX_KEY_IN_PATH: usize = 64;

/// One problem in a capsule template, located by its JSON path.
///
/// Displays as `"{path}: {message}"`, e.g.
/// `spec.containers[1].ports[0].containerPort: must be 1..65535`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Path of the offending value, relative to the template (`spec.containers[0].image`), or
    /// `template` for the template itself, or the offending key of the request body.
    pub path: String,
    /// What is wrong with the value, in words a user can act on; never echoes unchecked input.
    pub message: String,
}

impl FieldError {
    /// Builds an error for `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one template, in the order they were found (document order).
///
/// Never empty when returned by the parsers. `Display` joins the first few errors with `"; "`
/// and ends with `"and N more"` when there are more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summarize(.0))]
pub struct TemplateErrors(pub Vec<FieldError>);

impl TemplateErrors {
    /// The individual errors.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Iterates over the individual errors.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no errors (never the case for a value returned by the parsers).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<FieldError> for TemplateErrors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

impl<'a> IntoIterator for &'a TemplateErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Writes the `Display` text of [`TemplateErrors`].
fn summarize(errors: &[FieldError]) -> Summary<'_> {
    Summary(errors)
}

/// Lazily formatted summary of a list of errors.
struct Summary<'a>(&'a [FieldError]);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("invalid capsule template");
        }
        for (i, error) in self.0.iter().take(DISPLAYED_ERRORS).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        if self.0.len() > DISPLAYED_ERRORS {
            write!(f, "; and {} more", self.0.len() - DISPLAYED_ERRORS)?;
        }
        Ok(())
    }
}

/// Collects errors while the validator walks a template.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    /// Errors so far, in the order found.
    pub(crate) errors: Vec<FieldError>,
}

impl Sink {
    /// Records an error at `path`.
    pub(crate) fn add(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    /// Number of errors recorded so far.
    pub(crate) fn count(&self) -> usize {
        self.errors.len()
    }

    /// `Ok(value)` when nothing was recorded, else every error.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, TemplateErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(TemplateErrors(self.errors))
        }
    }
}

/// Path of member `key` of the object at `parent` (`""` is the template root).
///
/// Plain keys render as `parent.key`; anything else (dots, spaces, unicode, control characters,
/// very long keys) renders quoted and escaped as `parent["k.e.y"]`, so a path is always one
/// readable line whatever the input.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= MAX_KEY_IN_PATH
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        if parent.is_empty() {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        }
    } else {
        format!("{parent}[{}]", quote(key))
    }
}

/// Path of item `index` of the array at `parent`.
pub(crate) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A user string made safe to show in a message: JSON-quoted (control characters escaped) and
/// truncated to a few dozen characters.
pub(crate) fn quote(s: &str) -> String {
    let mut shown: String = s.chars().take(MAX_KEY_IN_PATH).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    // Serializing a `&str` cannot fail; fall back to a placeholder rather than panic.
    serde_json::to_string(&shown).unwrap_or_else(|_| String::from("\"?\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(n: usize) -> TemplateErrors {
        TemplateErrors(
            (0..n)
                .map(|i| FieldError::new(format!("p{i}"), "bad"))
                .collect(),
        )
    }

    #[test]
    fn field_error_display() {
        let e = FieldError::new(
            "spec.containers[1].ports[0].containerPort",
            "must be 1..65535",
        );
        assert_eq!(
            e.to_string(),
            "spec.containers[1].ports[0].containerPort: must be 1..65535"
        );
    }

    #[test]
    fn display_joins_up_to_five() {
        assert_eq!(errors(1).to_string(), "p0: bad");
        assert_eq!(
            errors(5).to_string(),
            "p0: bad; p1: bad; p2: bad; p3: bad; p4: bad"
        );
        assert_eq!(
            errors(8).to_string(),
            "p0: bad; p1: bad; p2: bad; p3: bad; p4: bad; and 3 more"
        );
        assert_eq!(errors(0).to_string(), "invalid capsule template");
    }

    #[test]
    fn join_plain_and_quoted_keys() {
        assert_eq!(join("", "spec"), "spec");
        assert_eq!(join("spec", "containers"), "spec.containers");
        assert_eq!(join("env", "A.B"), "env[\"A.B\"]");
        assert_eq!(join("", "a\nb"), "[\"a\\nb\"]");
        assert_eq!(join("x", ""), "x[\"\"]");
        let long = "k".repeat(100);
        let path = join("x", &long);
        assert!(path.len() < 80, "{path}");
        assert!(path.ends_with("…\"]"));
        assert_eq!(index("spec.containers", 3), "spec.containers[3]");
    }

    #[test]
    fn sink_finish() {
        let sink = Sink::default();
        assert_eq!(sink.finish(1), Ok(1));
        let mut sink = Sink::default();
        sink.add("a", "b");
        assert_eq!(sink.count(), 1);
        let err = sink.finish(()).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(!err.is_empty());
        assert_eq!(err.errors()[0].path, "a");
        assert_eq!(err.iter().count(), 1);
    }
}
