//! Output as the openstack CLI prints it: `-f table|json|yaml|value`, `-c COLUMN` (repeatable),
//! tables sized to the terminal.

use serde_json::Value;

/// The output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table (a list: one row per item; one object: Field/Value rows).
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Bare values, space-separated, one line per item.
    Value,
}

/// Renders `items` (a list of objects) with `columns` (the default columns, in order, when
/// `wanted` is empty; else `wanted`, which must be among the objects' keys).
pub fn list(
    items: &[Value],
    columns: &[&str],
    wanted: &[String],
    format: Format,
) -> Result<String, crate::CliError> {
    let _ = (items, columns, wanted, format);
    Ok(String::new())
}

/// Renders one object, all its fields in order, or only `wanted`.
pub fn show(item: &Value, wanted: &[String], format: Format) -> Result<String, crate::CliError> {
    let _ = (item, wanted, format);
    Ok(String::new())
}
