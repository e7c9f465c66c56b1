//! Output as the openstack CLI (cliff) prints it: `-f table|json|yaml|value`, `-c COLUMN`
//! (repeatable), tables sized to the terminal.
//!
//! Cell text, in tables and `value` output: strings bare, null `None`, booleans `True` and
//! `False` (as Python prints them), numbers as JSON; lists and objects as compact JSON in a
//! list, as indented JSON (a multi-line cell) in a Field/Value table.

mod table;

use serde_json::{Map, Value};

use self::table::Align;
use crate::CliError;

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

/// The narrowest a list column is shrunk to (cliff's choice).
const LIST_MIN_WIDTH: usize = 8;
/// The narrowest a Field/Value column is shrunk to (cliff's choice, to keep field names
/// readable).
const SHOW_MIN_WIDTH: usize = 16;

/// Renders `items` (a list of objects) with `columns` (the default columns, in order, when
/// `wanted` is empty; else `wanted`, which must be among the objects' keys). Tables fit the
/// terminal width (see [`terminal_width`]).
pub fn list(
    items: &[Value],
    columns: &[&str],
    wanted: &[String],
    format: Format,
) -> Result<String, CliError> {
    let width = if format == Format::Table {
        terminal_width()
    } else {
        None
    };
    list_with_width(items, columns, wanted, format, width)
}

/// [`list`], with tables fitted to `width` (None: as wide as they are).
pub fn list_with_width(
    items: &[Value],
    columns: &[&str],
    wanted: &[String],
    format: Format,
    width: Option<usize>,
) -> Result<String, CliError> {
    let chosen = choose_list_columns(items, columns, wanted)?;
    let field = |item: &Value, key: &str| item.get(key).cloned().unwrap_or(Value::Null);
    Ok(match format {
        Format::Table => {
            // As cliff: numeric columns (judged by the first row) at the right.
            let align: Vec<Align> = chosen
                .iter()
                .map(|c| match items.first().and_then(|i| i.get(c)) {
                    Some(Value::Number(_)) => Align::Right,
                    _ => Align::Left,
                })
                .collect();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|i| chosen.iter().map(|c| cell(&field(i, c), false)).collect())
                .collect();
            table::render(&chosen, &rows, &align, width, LIST_MIN_WIDTH)
        }
        Format::Json | Format::Yaml => {
            let objects: Vec<Value> = items
                .iter()
                .map(|i| {
                    let map: Map<String, Value> =
                        chosen.iter().map(|c| (c.clone(), field(i, c))).collect();
                    Value::Object(map)
                })
                .collect();
            serialize(&Value::Array(objects), format)?
        }
        Format::Value => items
            .iter()
            .map(|i| {
                let line: Vec<String> = chosen.iter().map(|c| cell(&field(i, c), false)).collect();
                format!("{}\n", line.join(" "))
            })
            .collect(),
    })
}

/// Renders one object, all its fields in order, or only `wanted` (which must be among its
/// keys). Tables fit the terminal width (see [`terminal_width`]).
pub fn show(item: &Value, wanted: &[String], format: Format) -> Result<String, CliError> {
    let width = if format == Format::Table {
        terminal_width()
    } else {
        None
    };
    show_with_width(item, wanted, format, width)
}

/// [`show`], with tables fitted to `width` (None: as wide as they are).
pub fn show_with_width(
    item: &Value,
    wanted: &[String],
    format: Format,
    width: Option<usize>,
) -> Result<String, CliError> {
    let empty = Map::new();
    let object = match item {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => {
            return Err(CliError::Failed(format!(
                "expected an object to show, got {}",
                cell(other, false)
            )))
        }
    };
    let chosen: Vec<String> = if wanted.is_empty() {
        object.keys().cloned().collect()
    } else {
        let available: Vec<String> = object.keys().cloned().collect();
        check_wanted(wanted, &available)?;
        wanted.to_vec()
    };
    let field = |key: &str| object.get(key).cloned().unwrap_or(Value::Null);
    Ok(match format {
        Format::Table => {
            let headers = vec!["Field".to_owned(), "Value".to_owned()];
            let rows: Vec<Vec<String>> = chosen
                .iter()
                .map(|k| vec![k.clone(), cell(&field(k), true)])
                .collect();
            table::render(
                &headers,
                &rows,
                &[Align::Left, Align::Left],
                width,
                SHOW_MIN_WIDTH,
            )
        }
        Format::Json | Format::Yaml => {
            let map: Map<String, Value> = chosen.iter().map(|k| (k.clone(), field(k))).collect();
            serialize(&Value::Object(map), format)?
        }
        Format::Value => chosen
            .iter()
            .map(|k| format!("{}\n", cell(&field(k), false)))
            .collect(),
    })
}

/// The terminal's width: `COLUMNS` if set to a positive number, else, when stdout is a
/// terminal, its width; None otherwise (output to a pipe or a file is not fitted).
pub fn terminal_width() -> Option<usize> {
    let columns = std::env::var("COLUMNS").ok();
    if let Some(n) = columns.and_then(|c| c.trim().parse::<usize>().ok()) {
        if n > 0 {
            return Some(n);
        }
    }
    terminal_size().map(|(w, _)| usize::from(w))
}

/// The size (width, height) of the terminal on stdout (`TIOCGWINSZ`, a cheap ioctl, so an
/// interactive session can ask it as often as it likes); None when stdout is not a terminal
/// or has no size.
pub fn terminal_size() -> Option<(u16, u16)> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    let size = rustix::termios::tcgetwinsize(&stdout).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// The columns to show for a list: `wanted`, each among the items' keys (or `columns`), or
/// `columns`.
fn choose_list_columns(
    items: &[Value],
    columns: &[&str],
    wanted: &[String],
) -> Result<Vec<String>, CliError> {
    if wanted.is_empty() {
        return Ok(columns.iter().map(|c| (*c).to_owned()).collect());
    }
    let mut available: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    for key in items
        .iter()
        .filter_map(Value::as_object)
        .flat_map(Map::keys)
    {
        if !available.contains(key) {
            available.push(key.clone());
        }
    }
    check_wanted(wanted, &available)?;
    Ok(wanted.to_vec())
}

/// A usage error for the first of `wanted` not in `available`.
fn check_wanted(wanted: &[String], available: &[String]) -> Result<(), CliError> {
    match wanted.iter().find(|w| !available.contains(w)) {
        Some(missing) => Err(CliError::Usage(format!(
            "No such column: {missing} (choose from: {})",
            available.join(", ")
        ))),
        None => Ok(()),
    }
}

/// `value` as JSON (2-space indents) or YAML, ending with a newline.
fn serialize(value: &Value, format: Format) -> Result<String, CliError> {
    if format == Format::Yaml {
        serde_yaml::to_string(value).map_err(|e| CliError::Failed(format!("YAML output: {e}")))
    } else {
        serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| CliError::Failed(format!("JSON output: {e}")))
    }
}

/// The text of a value in a table or `value` output; lists and objects as indented JSON when
/// `pretty`, else compact.
fn cell(value: &Value, pretty: bool) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) if pretty => {
            serde_json::to_string_pretty(value).unwrap_or_default()
        }
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLUMNS: &[&str] = &["uuid", "name", "status", "addresses"];

    fn capsules() -> Vec<Value> {
        vec![
            json!({"uuid": "70831d74-66e3-4561-bef8-97dd082d8fc2", "name": "minimal",
                   "status": "Running", "addresses": "10.89.0.12", "cpu": 0.5,
                   "labels": {"app": "web"}, "auto_heal": false, "status_reason": null}),
            json!({"uuid": "0b1e6c4f-8a5d-4a3e-9d2b-2f6f1c9e7a10", "name": "web",
                   "status": "Creating", "addresses": "", "cpu": 1,
                   "labels": {}, "auto_heal": true, "status_reason": null}),
        ]
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn list_table() {
        let out = list_with_width(&capsules(), COLUMNS, &[], Format::Table, None).unwrap();
        let want = "\
+--------------------------------------+---------+----------+------------+
| uuid                                 | name    | status   | addresses  |
+--------------------------------------+---------+----------+------------+
| 70831d74-66e3-4561-bef8-97dd082d8fc2 | minimal | Running  | 10.89.0.12 |
| 0b1e6c4f-8a5d-4a3e-9d2b-2f6f1c9e7a10 | web     | Creating |            |
+--------------------------------------+---------+----------+------------+
";
        assert_eq!(out, want);
    }

    #[test]
    fn list_table_cells_and_alignment() {
        let wanted = strings(&["name", "cpu", "labels", "auto_heal", "status_reason"]);
        let out = list_with_width(&capsules(), COLUMNS, &wanted, Format::Table, None).unwrap();
        let want = "\
+---------+-----+---------------+-----------+---------------+
| name    | cpu | labels        | auto_heal | status_reason |
+---------+-----+---------------+-----------+---------------+
| minimal | 0.5 | {\"app\":\"web\"} | False     | None          |
| web     |   1 | {}            | True      | None          |
+---------+-----+---------------+-----------+---------------+
";
        assert_eq!(out, want);
    }

    #[test]
    fn list_table_fitted_like_cliff() {
        // What `openstack capsule list --max-width 40` prints: columns are not shrunk below
        // 8, so the table overflows to 43.
        let out = list_with_width(&capsules()[..1], COLUMNS, &[], Format::Table, Some(40));
        let want = "\
+----------+---------+---------+-----------+
| uuid     | name    | status  | addresses |
+----------+---------+---------+-----------+
| 70831d74 | minimal | Running | 10.89.0.1 |
| -66e3-   |         |         | 2         |
| 4561-    |         |         |           |
| bef8-    |         |         |           |
| 97dd082d |         |         |           |
| 8fc2     |         |         |           |
+----------+---------+---------+-----------+
";
        assert_eq!(out.unwrap(), want);
    }

    #[test]
    fn list_empty() {
        let out = list_with_width(&[], COLUMNS, &[], Format::Table, Some(80)).unwrap();
        let want = "\
+------+------+--------+-----------+
| uuid | name | status | addresses |
+------+------+--------+-----------+
+------+------+--------+-----------+
";
        assert_eq!(out, want);
        assert_eq!(list(&[], COLUMNS, &[], Format::Value).unwrap(), "");
        assert_eq!(list(&[], COLUMNS, &[], Format::Json).unwrap(), "[]\n");
        assert_eq!(list(&[], COLUMNS, &[], Format::Yaml).unwrap(), "[]\n");
        let wanted = strings(&["name"]);
        assert!(list(&[], COLUMNS, &wanted, Format::Json).is_ok());
    }

    #[test]
    fn list_json_yaml_value() {
        let items = capsules();
        let wanted = strings(&["name", "cpu", "labels", "status_reason"]);
        let json = list(&items, COLUMNS, &wanted, Format::Json).unwrap();
        let want = r#"[
  {
    "name": "minimal",
    "cpu": 0.5,
    "labels": {
      "app": "web"
    },
    "status_reason": null
  },
  {
    "name": "web",
    "cpu": 1,
    "labels": {},
    "status_reason": null
  }
]
"#;
        assert_eq!(json, want);
        let yaml = list(&items, COLUMNS, &wanted, Format::Yaml).unwrap();
        let want = "\
- name: minimal
  cpu: 0.5
  labels:
    app: web
  status_reason: null
- name: web
  cpu: 1
  labels: {}
  status_reason: null
";
        assert_eq!(yaml, want);
        let value = list(&items, COLUMNS, &wanted, Format::Value).unwrap();
        assert_eq!(value, "minimal 0.5 {\"app\":\"web\"} None\nweb 1 {} None\n");
        let value = list(&items, COLUMNS, &[], Format::Value).unwrap();
        assert_eq!(
            value,
            "70831d74-66e3-4561-bef8-97dd082d8fc2 minimal Running 10.89.0.12\n\
             0b1e6c4f-8a5d-4a3e-9d2b-2f6f1c9e7a10 web Creating \n"
        );
    }

    #[test]
    fn unknown_columns() {
        let err = list(&[], COLUMNS, &strings(&["uuid", "foo"]), Format::Table).unwrap_err();
        assert!(matches!(err, CliError::Usage(_)));
        assert_eq!(
            err.to_string(),
            "No such column: foo (choose from: uuid, name, status, addresses)"
        );
        let items = [json!({"uuid": "u", "name": "n", "extra": 1})];
        let err = list(&items, &["uuid", "name"], &strings(&["x"]), Format::Json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "No such column: x (choose from: uuid, name, extra)"
        );
        let out = list(&items, &["uuid"], &strings(&["extra"]), Format::Value).unwrap();
        assert_eq!(out, "1\n");
        let err = show(&items[0], &strings(&["nope"]), Format::Table).unwrap_err();
        assert!(matches!(err, CliError::Usage(_)));
        assert_eq!(
            err.to_string(),
            "No such column: nope (choose from: uuid, name, extra)"
        );
    }

    fn capsule() -> Value {
        json!({"uuid": "70831d74-66e3-4561-bef8-97dd082d8fc2", "name": "minimal",
               "restart_policy": {"MaximumRetryCount": "0", "Name": "always"},
               "security_groups": ["default"], "labels": {}, "annotations": null,
               "cpu": 0.0, "auto_remove": false})
    }

    #[test]
    fn show_table() {
        let out = show_with_width(&capsule(), &[], Format::Table, None).unwrap();
        let want = "\
+-----------------+--------------------------------------+
| Field           | Value                                |
+-----------------+--------------------------------------+
| uuid            | 70831d74-66e3-4561-bef8-97dd082d8fc2 |
| name            | minimal                              |
| restart_policy  | {                                    |
|                 |   \"MaximumRetryCount\": \"0\",          |
|                 |   \"Name\": \"always\"                   |
|                 | }                                    |
| security_groups | [                                    |
|                 |   \"default\"                          |
|                 | ]                                    |
| labels          | {}                                   |
| annotations     | None                                 |
| cpu             | 0.0                                  |
| auto_remove     | False                                |
+-----------------+--------------------------------------+
";
        assert_eq!(out, want);
        let wanted = strings(&["name", "uuid"]);
        let out = show_with_width(&capsule(), &wanted, Format::Table, None).unwrap();
        let want = "\
+-------+--------------------------------------+
| Field | Value                                |
+-------+--------------------------------------+
| name  | minimal                              |
| uuid  | 70831d74-66e3-4561-bef8-97dd082d8fc2 |
+-------+--------------------------------------+
";
        assert_eq!(out, want);
    }

    #[test]
    fn show_json_yaml_value() {
        let wanted = strings(&["name", "restart_policy", "annotations"]);
        let json = show(&capsule(), &wanted, Format::Json).unwrap();
        let want = r#"{
  "name": "minimal",
  "restart_policy": {
    "MaximumRetryCount": "0",
    "Name": "always"
  },
  "annotations": null
}
"#;
        assert_eq!(json, want);
        let yaml = show(&capsule(), &wanted, Format::Yaml).unwrap();
        let want = "\
name: minimal
restart_policy:
  MaximumRetryCount: '0'
  Name: always
annotations: null
";
        assert_eq!(yaml, want);
        let value = show(&capsule(), &wanted, Format::Value).unwrap();
        assert_eq!(
            value,
            "minimal\n{\"MaximumRetryCount\":\"0\",\"Name\":\"always\"}\nNone\n"
        );
        let all = show(&capsule(), &[], Format::Json).unwrap();
        let back: Value = serde_json::from_str(&all).unwrap();
        assert_eq!(back, capsule());
        assert_eq!(show(&json!({}), &[], Format::Value).unwrap(), "");
    }

    /// The non-space text of a table's cells, column by column, row by row.
    fn column_text(table: &str, column: usize) -> String {
        table
            .lines()
            .filter(|l| l.starts_with('|'))
            .skip(1)
            .map(|l| l.split('|').nth(column + 1).unwrap().trim().to_owned())
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect()
    }

    #[test]
    fn wraps_to_a_narrow_width() {
        let long = "word ".repeat(30) + &"x".repeat(70) + " under_scored-and-hyphen-ated";
        let item = json!({"uuid": "70831d74-66e3-4561-bef8-97dd082d8fc2", "name": long,
                          "status": "Running", "addresses": "10.0.0.1, 10.0.0.2"});
        // Four columns of at least 8 fit in 45.
        for width in [45, 52, 60, 80] {
            let out = list_with_width(
                std::slice::from_ref(&item),
                COLUMNS,
                &[],
                Format::Table,
                Some(width),
            );
            let out = out.unwrap();
            assert!(
                out.lines().all(|l| l.chars().count() <= width),
                "{width}:\n{out}"
            );
            for (i, key) in COLUMNS.iter().enumerate() {
                let text: String = item[key].as_str().unwrap().split_whitespace().collect();
                assert_eq!(column_text(&out, i), text, "{width}:\n{out}");
            }
        }
        let item = json!({"name": "n", "nested": {"description": long, "list": [1, 2, 3]}});
        let out = show_with_width(&item, &[], Format::Table, Some(50)).unwrap();
        assert!(out.lines().all(|l| l.chars().count() <= 50), "{out}");
        let pretty: String = serde_json::to_string_pretty(&item["nested"])
            .unwrap()
            .split_whitespace()
            .collect();
        assert!(column_text(&out, 1).ends_with(&pretty), "{out}");
        // Too narrow for the floor: columns stay at 8 and the table overflows.
        let item = json!({ "name": long });
        let out = list_with_width(&[item], &["name"], &[], Format::Table, Some(5)).unwrap();
        assert_eq!(out.lines().next(), Some("+----------+"));
    }

    #[test]
    fn control_characters() {
        let item = json!({"name": "a\tb\u{1b}[31mc\r\nd\re", "status": "ünï"});
        let out = list_with_width(&[item], &["name", "status"], &[], Format::Table, None);
        let want = "\
+-----------+--------+
| name      | status |
+-----------+--------+
| a b?[31mc | ünï    |
| d?e       |        |
+-----------+--------+
";
        assert_eq!(out.unwrap(), want);
    }
}
