//! Hostile values and the machinery that puts them into valid bodies: strings and numbers
//! that have broken services before, nesting too deep to build, edits at dotted paths, the
//! placeholders generated values hold, and percent-encoding.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::aimed::aimed;

/// Strings that have broken services before.
pub(crate) const NASTY: &[&str] = &[
    "'; DROP TABLE capsules; --",
    "\" OR \"1\"=\"1",
    "1' OR '1'='1' /*",
    "{{7*7}}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "$(reboot)",
    "`reboot`",
    "; reboot",
    "| cat /etc/shadow",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "../../../../etc/passwd",
    "..\\..\\..\\windows",
    "/proc/self/environ",
    "%2e%2e%2f",
    "%00",
    "%",
    "\u{0}",
    "a\u{0}b",
    "\r\nX-Injected: yes",
    "\u{1b}[2J",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{202e}gnp.exe",
    "\u{feff}",
    "\u{200b}",
    "\u{fffd}",
    "名前",
    "Ωmega",
    "😀",
    "\u{10ffff}",
    "é",
    "${jndi:ldap://127.0.0.1:1/a}",
    "%s%s%s%n",
    "{\"$gt\": \"\"}",
    "null",
    "None",
    "true",
    "NaN",
    "-0",
    "1e400",
    "0x1F",
    " ",
    "",
    "default",
    "*",
    "?",
    "#",
    "\\",
    "//",
    ".",
    "..",
];

pub(crate) fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        5 => select(NASTY).prop_map(str::to_owned),
        2 => vec(any::<char>(), 0..24).prop_map(|c| c.into_iter().collect()),
        1 => vec(0u8..0x20, 1..6).prop_map(|b| b.into_iter().map(char::from).collect()),
        1 => (
            select(&[255usize, 256, 1024, 4097, 32 * 1024 + 1, 200_000][..]),
            select(&['a', 'é', '😀', '\u{0}', '\u{1}'][..])
        )
            .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
    ]
    .boxed()
}

pub(crate) fn edge_number() -> BoxedStrategy<Value> {
    prop_oneof![
        select(
            &[
                0i64,
                -1,
                1,
                2,
                80,
                255,
                256,
                65535,
                65536,
                1_000_000_000,
                2_147_483_647,
                2_147_483_648,
                i64::MAX,
                i64::MIN,
            ][..]
        )
        .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        select(&[1.5f64, -0.0, 0.5, 1e20, 1e-300, 1e308, -1e308, 65535.5, 1.0, 0.1][..])
            .prop_map(|f| json!(f)),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
    ]
    .boxed()
}

pub(crate) fn hostile_key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(&["a", "name", "size", "template", "", "__proto__", "constructor", "$where", "a.b"][..])
            .prop_map(str::to_owned),
        1 => hostile_string(),
    ]
    .boxed()
}

pub(crate) fn hostile_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => edge_number(),
        4 => hostile_string().prop_map(Value::String),
        1 => select(&["80", "0", "-1", "1e9", "65536", "1.5", " 1", "0x50", "٨٠", "1_000", "+1", "01"][..])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            vec((hostile_key(), inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A generated value: JSON, or nesting too deep to build as a `Value`.
#[derive(Clone, Debug)]
pub(crate) enum Hostile {
    Json(Value),
    Deep { depth: usize, object: bool },
}

pub(crate) fn deep_text(depth: usize, object: bool) -> String {
    if object {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }
}

pub(crate) fn deep() -> BoxedStrategy<Hostile> {
    (
        select(
            &[
                2usize, 64, 120, 125, 126, 127, 128, 129, 200, 1000, 10_000, 100_000,
            ][..],
        ),
        any::<bool>(),
    )
        .prop_map(|(depth, object)| Hostile::Deep { depth, object })
        .boxed()
}

/// A value for `loc`: aimed at it, generic, or too deep.
pub(crate) fn value_for(loc: &'static str) -> BoxedStrategy<Hostile> {
    let aimed = aimed(loc);
    let generic = hostile_value().prop_map(Hostile::Json);
    if aimed.is_empty() {
        prop_oneof![6 => generic, 1 => deep()].boxed()
    } else {
        prop_oneof![
            4 => select(aimed).prop_map(Hostile::Json),
            3 => generic,
            1 => deep(),
        ]
        .boxed()
    }
}

/// One change to a valid body.
#[derive(Clone, Debug)]
pub(crate) enum Edit {
    /// Sets the value at a dotted path (numbers index arrays; missing parents are made).
    Set(&'static str, Hostile),
    /// Removes the value at a dotted path.
    Remove(&'static str),
}

/// What an edit does, in words, for the report of valid inputs: `set LOC to KIND` or
/// `remove LOC`.
pub(crate) fn edit_kind(e: &Edit) -> String {
    let at = |l: &str| {
        if l.is_empty() {
            "the body".to_owned()
        } else {
            l.to_owned()
        }
    };
    match e {
        Edit::Set(l, Hostile::Json(v)) => format!("set {} to {}", at(l), value_kind(v)),
        Edit::Set(l, Hostile::Deep { depth, object }) => format!(
            "set {} to {depth} levels of {}",
            at(l),
            if *object { "objects" } else { "arrays" }
        ),
        Edit::Remove(l) => format!("remove {}", at(l)),
    }
}

/// A value's kind in words: its JSON type, strings by length.
pub(crate) fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(s) if s.chars().count() > 255 => "a string over 255 characters",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn edits(locs: &'static [&'static str], max: usize) -> BoxedStrategy<Vec<Edit>> {
    let one = prop_oneof![
        6 => select(locs).prop_flat_map(|loc| value_for(loc).prop_map(move |h| Edit::Set(loc, h))),
        1 => select(locs).prop_map(Edit::Remove),
    ];
    vec(one, 1..=max).boxed()
}

/// Replaces the value at `path` (`None`: removes it); a parent that is not a container
/// (an earlier edit replaced it) leaves the body as it is.
pub(crate) fn set_at(root: &mut Value, path: &str, v: Option<Value>) {
    if path.is_empty() {
        *root = v.unwrap_or(Value::Null);
        return;
    }
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let next_is_index = segs.get(i + 1).is_some_and(|s| s.parse::<usize>().is_ok());
        cur = match cur {
            Value::Object(m) => {
                if last {
                    match v {
                        Some(v) => {
                            m.insert((*seg).to_owned(), v);
                        }
                        None => {
                            m.remove(*seg);
                        }
                    }
                    return;
                }
                if v.is_none() && !m.contains_key(*seg) {
                    return;
                }
                m.entry((*seg).to_owned()).or_insert_with(|| {
                    if next_is_index {
                        json!([])
                    } else {
                        json!({})
                    }
                })
            }
            Value::Array(a) => {
                let Ok(idx) = seg.parse::<usize>() else {
                    return;
                };
                if v.is_none() && idx >= a.len() {
                    return;
                }
                while a.len() <= idx {
                    a.push(json!({}));
                }
                if last {
                    match v {
                        Some(v) => a[idx] = v,
                        None => {
                            a.remove(idx);
                        }
                    }
                    return;
                }
                &mut a[idx]
            }
            _ => return,
        };
    }
}

/// Marks that stand for deep values until the body is serialized.
#[derive(Default)]
pub(crate) struct Deeps(Vec<(usize, bool)>);

impl Deeps {
    pub(crate) fn value(&mut self, h: &Hostile) -> Value {
        match h {
            Hostile::Json(v) => v.clone(),
            Hostile::Deep { depth, object } => {
                self.0.push((*depth, *object));
                Value::String(format!("\u{0}DEEP{}\u{0}", self.0.len() - 1))
            }
        }
    }

    /// The depth and kind (objects or arrays) of the deep value `v` stands for, if it is a mark.
    pub(crate) fn lookup(&self, v: &Value) -> Option<(usize, bool)> {
        let i = v
            .as_str()?
            .strip_prefix("\u{0}DEEP")?
            .strip_suffix('\u{0}')?;
        self.0.get(i.parse::<usize>().ok()?).copied()
    }

    /// `v` as JSON text, each mark replaced by its deep value.
    pub(crate) fn render(&self, v: &Value) -> String {
        let mut s = v.to_string();
        for (i, (depth, object)) in self.0.iter().enumerate() {
            let mark = format!("\"\\u0000DEEP{i}\\u0000\"");
            if s.contains(&mark) {
                s = s.replacen(&mark, &deep_text(*depth, *object), 1);
            }
        }
        s
    }
}

/// Applies `edits` to `body`; `marks` are `(placeholder, what it stands for)`.
pub(crate) fn apply(body: &mut Value, edits: &[Edit], deeps: &mut Deeps, marks: &[(&str, String)]) {
    for e in edits {
        match e {
            Edit::Set(loc, h) => {
                let mut v = deeps.value(h);
                replace_marks(&mut v, marks);
                set_at(body, loc, Some(v));
            }
            Edit::Remove(loc) => set_at(body, loc, None),
        }
    }
}

pub(crate) fn replace_marks(v: &mut Value, marks: &[(&str, String)]) {
    match v {
        Value::String(s) => {
            if let Some((_, real)) = marks.iter().find(|(m, _)| m == s) {
                *s = real.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| replace_marks(v, marks)),
        Value::Object(m) => m.values_mut().for_each(|v| replace_marks(v, marks)),
        _ => {}
    }
}

pub(crate) fn query_string(pairs: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(&pct(k));
        s.push('=');
        s.push_str(&pct(v));
    }
    s
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
