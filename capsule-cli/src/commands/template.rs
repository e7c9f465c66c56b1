//! A template file read and validated here, with the same rules as the API, so a bad one
//! fails before anything is sent and its errors name the field and the line.

use std::io::Read;

use capsule_types::{parse_template, CapsuleTemplate, Limits};
use serde_json::Value;

use crate::locate::line_of;
use crate::CliError;

/// A template as read from its file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The template, as sent.
    pub value: Value,
    /// Its text, for line numbers.
    pub text: String,
    /// Where it came from (`-` is stdin).
    pub source: String,
}

impl Loaded {
    /// Reads `file` (YAML or JSON; `-` for stdin).
    pub fn read(file: &str) -> Result<Self, CliError> {
        let text = if file == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| {
                CliError::Usage(format!("cannot read the template from stdin: {e}"))
            })?;
            s
        } else {
            std::fs::read_to_string(file)
                .map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))?
        };
        let source = if file == "-" { "<stdin>" } else { file }.to_owned();
        let value: Value = serde_yaml::from_str(&text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!(":{}", l.line()))
                .unwrap_or_default();
            CliError::Invalid(format!("{source}{at}: not YAML or JSON: {e}"))
        })?;
        Ok(Self {
            value,
            text,
            source,
        })
    }

    /// Validates it as the API would; every error on its own line, with the line it is on.
    pub fn validate(&self) -> Result<CapsuleTemplate, CliError> {
        parse_template(&self.value, &Limits::default()).map_err(|errors| {
            let lines: Vec<String> = errors
                .errors()
                .iter()
                .map(|e| {
                    let at = line_of(&self.text, &e.path)
                        .map(|n| format!(":{n}"))
                        .unwrap_or_default();
                    format!("{}{at}: {}: {}", self.source, e.path, e.message)
                })
                .collect();
            CliError::Invalid(format!(
                "the template is not valid, nothing was sent:\n{}",
                lines.join("\n")
            ))
        })
    }

    /// Reads `file` and validates it.
    pub fn read_valid(file: &str) -> Result<Self, CliError> {
        let t = Self::read(file)?;
        t.validate()?;
        Ok(t)
    }

    /// `metadata.name`, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.value["metadata"]["name"].as_str()
    }
}
