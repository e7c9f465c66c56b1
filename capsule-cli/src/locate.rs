//! Where a template field is in the file the user wrote: the line of a JSON path such as
//! `spec.containers[1].ports[0].containerPort` in YAML or JSON text.

/// Nesting deeper than this is not followed (the rest of it counts as one value).
const MAX_DEPTH: usize = 200;

/// One step of a validator path: an object key (`true`: a prefix, the validator truncated it
/// to `["long…"]`) or a list index.
enum Step {
    Key(String, bool),
    Index(usize),
}

/// What a value is, as far as locating goes.
enum Kind {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

/// A value's line (that of its key in a mapping, of its `-` or first token in a list) and kind.
struct Node(usize, Kind);

/// The 1-based line of `path` in `text` (YAML or JSON), if it can be found; else the line of
/// the nearest ancestor that can.
///
/// `path` is a validator path (`spec.containers[0].image`, `spec.volumes[0]["odd key"]`);
/// `template` (or an empty path) is the whole template, line 1. None when no part of the path
/// is in `text`, or `text` holds no value at all.
pub fn line_of(text: &str, path: &str) -> Option<usize> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut node = &parse(text)?;
    let (mut line, mut rest) = (None, path);
    while let Some((step, after)) = step(rest) {
        let next = match (&step, &node.1) {
            (Step::Key(key, prefix), Kind::Map(entries)) => entries
                .iter()
                .find(|(k, _)| k == key || (*prefix && k.starts_with(key.as_str())))
                .map(|(_, n)| n),
            (Step::Index(i), Kind::Seq(items)) => items.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        (line, node, rest) = (Some(next.0), next, after);
    }
    line.or(Some(1).filter(|_| path.is_empty() || path == "template"))
}

/// The first step of a validator path and the rest; None at its end or where it is malformed.
fn step(path: &str) -> Option<(Step, &str)> {
    let rest = path.strip_prefix('.').unwrap_or(path);
    let Some(inner) = rest.strip_prefix('[') else {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let key = Step::Key(rest[..end].to_owned(), false);
        return (!rest.is_empty()).then_some((key, &rest[end..]));
    };
    if inner.starts_with('"') {
        let end = quoted_end(inner)?;
        let key = unquote(&inner[..end]);
        let step = match key.strip_suffix('…') {
            Some(k) => Step::Key(k.to_owned(), true),
            None => Step::Key(key, false),
        };
        return Some((
            step,
            inner[end..].strip_prefix(']').unwrap_or(&inner[end..]),
        ));
    }
    let (index, rest) = inner.split_once(']')?;
    Some((Step::Index(index.trim().parse().ok()?), rest))
}

/// The value tree of `text`: JSON when it starts with `{` or `[`, else block YAML.
fn parse(text: &str) -> Option<Node> {
    if text.trim_start().starts_with(['{', '[']) {
        return Some(flow(text, 0, 1));
    }
    let lines = lines(text);
    let line = lines.first()?.0;
    let mut yaml = Yaml {
        src: text,
        lines,
        i: 0,
    };
    Some(Node(line, yaml.block(0, 0)))
}

/// Byte length of the quoted string `t` starts with, quotes included; None if unterminated.
fn quoted_end(t: &str) -> Option<usize> {
    let b = t.as_bytes();
    let q = *b.first()?;
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' if q == b'"' => i += 1,
            b'\'' if q == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 1,
            c if c == q => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The text of a scalar: quotes removed and escapes decoded, or trimmed if plain.
fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    if raw.starts_with('"') {
        serde_json::from_str(raw).unwrap_or_else(|_| raw.trim_matches('"').to_owned())
    } else if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
        raw[1..raw.len() - 1].replace("''", "'")
    } else {
        raw.to_owned()
    }
}

/// The JSON or YAML flow value (`["sh", "-c"]`, `{a: 1}`) at byte `pos` of `s`, on `line`.
fn flow(s: &str, pos: usize, line: usize) -> Node {
    Flow { s, pos, line }.value(0)
}

/// A reader of JSON and YAML flow collections that counts lines.
struct Flow<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

impl Flow<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.line += usize::from(c == b'\n');
            self.pos += 1;
        }
    }

    /// Skips blanks, newlines and `#` comments.
    fn ws(&mut self) {
        let mut comment = false;
        while let Some(c) = self.peek() {
            comment = (comment || c == b'#') && c != b'\n';
            if !comment && !c.is_ascii_whitespace() {
                break;
            }
            self.bump();
        }
    }

    /// The value at `pos`, `depth` collections deep.
    fn value(&mut self, depth: usize) -> Node {
        self.ws();
        let line = self.line;
        let kind = match self.peek() {
            Some(open @ (b'{' | b'[')) if depth < MAX_DEPTH => {
                self.bump();
                self.collection(open == b'{', depth + 1)
            }
            Some(b'{' | b'[') => {
                self.pos = self.s.len();
                Kind::Scalar
            }
            _ => {
                self.scalar();
                Kind::Scalar
            }
        };
        Node(line, kind)
    }

    /// The entries or items after an opening `{` or `[`, through its close.
    fn collection(&mut self, is_map: bool, depth: usize) -> Kind {
        let close = if is_map { b'}' } else { b']' };
        let (mut entries, mut items) = (Vec::new(), Vec::new());
        loop {
            self.ws();
            let (start, line) = (self.pos, self.line);
            match self.peek() {
                None => break,
                Some(b',') => {
                    self.bump();
                    continue;
                }
                Some(c @ (b'}' | b']')) => {
                    if c == close {
                        self.bump();
                    }
                    break;
                }
                _ => {}
            }
            let (key, item) = match self.peek() {
                Some(b'{' | b'[') => (String::new(), self.value(depth)),
                _ => (self.scalar(), Node(line, Kind::Scalar)),
            };
            self.ws();
            let mut kind = Kind::Scalar;
            if self.peek() == Some(b':') {
                self.bump();
                kind = self.value(depth).1;
            }
            if is_map {
                entries.push((key, Node(line, kind)));
            } else {
                items.push(item);
            }
            if self.pos == start {
                self.bump();
            }
        }
        if is_map {
            Kind::Map(entries)
        } else {
            Kind::Seq(items)
        }
    }

    /// A quoted or plain scalar; returns its text.
    fn scalar(&mut self) -> String {
        let (start, b) = (self.pos, self.s.as_bytes());
        let len = if matches!(self.peek(), Some(b'"' | b'\'')) {
            quoted_end(&self.s[start..]).unwrap_or(b.len() - start)
        } else {
            let end = (start..b.len()).find(|&i| match b[i] {
                b',' | b'[' | b']' | b'{' | b'}' => true,
                b':' => b.get(i + 1).is_none_or(|n| b" \t\r\n,[]{}".contains(n)),
                b'#' => i > start && matches!(b[i - 1], b' ' | b'\t'),
                _ => false,
            });
            end.unwrap_or(b.len()) - start
        };
        for _ in 0..len {
            self.bump();
        }
        unquote(&self.s[start..start + len])
    }
}

/// A YAML line that holds something: number, indentation, text without the comment.
#[derive(Clone, Copy)]
struct Line<'a>(usize, usize, &'a str);

/// The lines of the first YAML document in `src` that hold something.
fn lines(src: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in src.split('\n').enumerate() {
        let col = raw.len() - raw.trim_start_matches(' ').len();
        let text = strip_comment(&raw[col..]).trim();
        let marker = ["---", "..."].contains(&text) || text.starts_with("--- ");
        let marker = col == 0 && (marker || text.starts_with('%'));
        if marker && !out.is_empty() {
            break;
        } else if !text.is_empty() && !marker {
            out.push(Line(i + 1, col, text));
        }
    }
    out
}

/// `t` without its `# comment` (a `#` at the start or after a blank, not in quotes).
fn strip_comment(t: &str) -> &str {
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let blank = i == 0 || matches!(b[i - 1], b' ' | b'\t');
        match b[i] {
            b'#' if blank => return &t[..i],
            b'"' | b'\'' if blank || matches!(b[i - 1], b'[' | b'{' | b',') => {
                let Some(n) = quoted_end(&t[i..]) else {
                    return t;
                };
                i += n - 1;
            }
            _ => {}
        }
        i += 1;
    }
    t
}

/// `- ` starts a sequence item.
fn is_dash(t: &str) -> bool {
    t == "-" || t.starts_with("- ") || t.starts_with("-\t")
}

/// Splits `key: rest` into the key's text and the trimmed rest; None if `t` is no mapping entry.
fn split_key(t: &str) -> Option<(String, &str)> {
    let b = t.as_bytes();
    let at = if t.starts_with(['"', '\'']) {
        let end = quoted_end(t)?;
        end + (t[end..].len() - t[end..].trim_start().len())
    } else if t.starts_with(['[', '{', '|', '>', '?']) {
        return None;
    } else {
        (0..b.len()).find(|&i| b[i] == b':' && matches!(b.get(i + 1), None | Some(b' ' | b'\t')))?
    };
    let rest = t[at..].strip_prefix(':')?;
    Some((unquote(&t[..at]), rest.trim()))
}

/// `rest` without leading anchors (`&a`) and tags (`!!str`).
fn strip_props(mut rest: &str) -> &str {
    while rest.starts_with(['&', '!']) {
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

/// A reader of block YAML over [`lines`]; `i` is the next line to read.
struct Yaml<'a> {
    src: &'a str,
    lines: Vec<Line<'a>>,
    i: usize,
}

impl<'a> Yaml<'a> {
    /// The block value starting at the next line if indented at least `min`, `depth` deep.
    fn block(&mut self, min: usize, depth: usize) -> Kind {
        let Some(&Line(no, col, text)) = self.lines.get(self.i).filter(|l| l.1 >= min) else {
            return Kind::Scalar;
        };
        if depth >= MAX_DEPTH {
            self.skip(min);
            Kind::Scalar
        } else if is_dash(text) {
            self.seq(col, depth + 1)
        } else if text.starts_with(['[', '{']) {
            self.flow(text, no, min)
        } else if split_key(text).is_some() {
            self.map(col, depth + 1)
        } else {
            self.skip(min);
            Kind::Scalar
        }
    }

    /// Passes the current line and the lines indented at least `min` after it (the rest of a
    /// scalar, a block scalar's contents, a flow collection's further lines).
    fn skip(&mut self, min: usize) {
        self.i += 1;
        while self.lines.get(self.i).is_some_and(|l| l.1 >= min) {
            self.i += 1;
        }
    }

    /// A flow collection starting at `at` on line `no`, continued on lines indented `min`.
    fn flow(&mut self, at: &'a str, no: usize, min: usize) -> Kind {
        let offset = |s: &str| (s.as_ptr() as usize).saturating_sub(self.src.as_ptr() as usize);
        let start = offset(at);
        self.skip(min);
        let end = self
            .lines
            .get(self.i)
            .map_or(self.src.len(), |l| offset(l.2));
        flow(&self.src[..end], start, no).1
    }

    /// The items of the sequence whose `-` are at `col`.
    fn seq(&mut self, col: usize, depth: usize) -> Kind {
        let mut items = Vec::new();
        while let Some(&Line(no, c, text)) = self.lines.get(self.i) {
            if c != col || !is_dash(text) {
                break;
            }
            let rest = text[1..].trim_start();
            if rest.is_empty() {
                self.i += 1;
            } else {
                // The item's content becomes a line of its own, indented where it starts.
                self.lines[self.i] = Line(no, col + text.len() - rest.len(), rest);
            }
            items.push(Node(no, self.block(col + 1, depth)));
        }
        Kind::Seq(items)
    }

    /// The entries of the mapping whose keys are at `col`.
    fn map(&mut self, col: usize, depth: usize) -> Kind {
        let mut entries = Vec::new();
        while let Some(&Line(no, c, text)) = self.lines.get(self.i) {
            if c != col || is_dash(text) {
                break;
            }
            let Some((key, rest)) = split_key(text) else {
                self.skip(col + 1);
                continue;
            };
            let rest = strip_props(rest);
            let kind = if rest.is_empty() {
                self.i += 1;
                match self.lines.get(self.i) {
                    // `containers:` then `- name: a` at the key's own indentation.
                    Some(l) if l.1 == col && is_dash(l.2) => self.seq(col, depth),
                    _ => self.block(col + 1, depth),
                }
            } else if rest.starts_with(['[', '{']) {
                self.flow(rest, no, col + 1)
            } else {
                self.skip(col + 1);
                Kind::Scalar
            };
            entries.push((key, Node(no, kind)));
        }
        Kind::Map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kubectl style: sequences at their key's indentation.
    const KUBECTL: &str = r#"# capsule.yaml (image: not-this)
---
capsuleVersion: beta
kind: capsule
metadata:
  name: web-app # name: also not this
  labels:
    names: many
    name: one
"restartPolicy": Always
spec:
  containers:
  - name: web
    image: nginx:1.25
    command: ["sh", "-c", "nginx -g 'daemon off;'"]
    ports:
    - containerPort: 80
      'protocol': TCP
    - containerPort: 443
    resources:
      requests: {cpu: 0.5, memory: 256}
    volumeMounts:
    - name: data
      mountPath: /data

  # the sidecar; image: comes later
  - name: sidecar
    args:
    - |
      image: not-a-key
      ports: []
    workingDir: >-
      image: nor-this
    env:
      - name: MODE
        value: "a # not a comment \"q\""
      - {name: LEVEL, value: debug}
    ports:
    -   containerPort: 99999
  volumes:
  - name: data
    cinder:
      size: 5
      autoRemove: true   # trailing
"#;

    /// The same template as pretty JSON.
    const JSON: &str = r#"{
  "capsuleVersion": "beta",
  "kind": "capsule",
  "metadata": {
    "name": "web-app",
    "labels": {"names": "many", "name": "one"}
  },
  "restartPolicy": "Always",
  "spec": {
    "containers": [
      {
        "name": "web",
        "image": "nginx:1.25",
        "command": ["sh", "-c",
          "nginx -g 'daemon off;'"],
        "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
        "resources": {"requests": {"cpu": 0.5, "memory": 256}},
        "volumeMounts": [
          {"name": "data", "mountPath": "/data"}
        ]
      },
      {
        "name": "sidecar",
        "args": ["image: not-a-key\nports: []\n"],
        "workingDir": "image: nor-this",
        "env": [
          {"name": "MODE", "value": "a # not a comment \"q\""},
          {"name": "LEVEL", "value": "debug"}
        ],
        "ports": [
          {
            "containerPort": 99999
          }
        ]
      }
    ],
    "volumes": [{"name": "data", "cinder": {"size": 5, "autoRemove": true}}]
  }
}
"#;

    /// Path, line in the YAML texts, line in [`JSON`]; 0 for None.
    const CASES: &[(&str, usize, usize)] = &[
        ("capsuleVersion", 3, 2),
        ("metadata.name", 6, 5),
        ("metadata.labels.name", 9, 6),
        ("metadata.labels.names", 8, 6),
        ("metadata.labels.nam", 7, 6),
        ("restartPolicy", 10, 8),
        ("spec.containers", 12, 10),
        ("spec.containers[0]", 13, 11),
        ("spec.containers[0].image", 14, 13),
        ("spec.containers[0].command[0]", 15, 14),
        ("spec.containers[0].command[2]", 15, 15),
        ("spec.containers[0].command[3]", 15, 14),
        ("spec.containers[0].ports[0].protocol", 18, 16),
        ("spec.containers[0].ports[1].containerPort", 19, 16),
        ("spec.containers[0].resources.requests.memory", 21, 17),
        ("spec.containers[0].volumeMounts[0].mountPath", 24, 19),
        ("spec.containers[1].image", 27, 22),
        ("spec.containers[1].args[0].image", 29, 24),
        ("spec.containers[1].workingDir", 32, 25),
        ("spec.containers[1].env[0].value", 36, 27),
        ("spec.containers[1].env[1].value", 37, 28),
        ("spec.containers[1].env[2]", 34, 26),
        ("spec.containers[1].ports[0]", 39, 31),
        ("spec.containers[1].ports[0].containerPort", 39, 32),
        ("spec.containers[2].name", 12, 10),
        ("spec.containers.name", 12, 10),
        ("spec.containers[x", 12, 10),
        ("spec.volumes[0].cinder.size", 43, 37),
        ("spec.volumes[0].cinder.autoRemove", 44, 37),
        ("spec.volumes[0][\"cinder\"].size", 43, 37),
        ("spec.volumes[0][\"cin…\"]", 42, 37),
        ("template", 1, 1),
        ("image", 0, 0),
    ];

    /// [`KUBECTL`] with four-space indentation and sequences indented under their key.
    fn indented() -> String {
        let line = |l: &str| {
            let (col, text) = (l.len() - l.trim_start().len(), l.trim_start());
            " ".repeat(2 * col + if is_dash(text) { 2 } else { 0 }) + text + "\n"
        };
        KUBECTL.lines().map(line).collect()
    }

    fn check(text: &str, line: impl Fn(usize, usize) -> usize) {
        for &(path, yaml, json) in CASES {
            let want = Some(line(yaml, json)).filter(|&l| l > 0);
            assert_eq!(line_of(text, path), want, "{path} in\n{text}");
        }
    }

    #[test]
    fn yaml_both_styles_and_crlf() {
        assert!(indented().contains("\n      - name: web\n        image:"));
        let crlf = KUBECTL.replace('\n', "\r\n");
        for text in [KUBECTL, &indented(), &crlf] {
            check(text, |yaml, _| yaml);
        }
    }

    #[test]
    fn json_pretty_and_one_line() {
        let value: serde_json::Value = serde_json::from_str(JSON).unwrap();
        for yaml in [KUBECTL.to_owned(), indented()] {
            let parsed: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
            assert_eq!(parsed, value);
        }
        check(JSON, |_, json| json);
        check(&value.to_string(), |_, json| json.min(1));
    }

    #[test]
    fn block_scalars_flow_and_odd_keys() {
        let text = "a: |\n  b: 1\n  - c: 2\nb: >\n\n  x\nlist: [\n  1,\n  {k: v}]\nafter: 3\n";
        assert_eq!(line_of(text, "b"), Some(4));
        assert_eq!(line_of(text, "a.b"), Some(1));
        assert_eq!(line_of(text, "list[1].k"), Some(9));
        assert_eq!(line_of(text, "after"), Some(10));
        let text = "x: &anchor\n  y: 1\n\"we:ird\": 2\nk: 'it''s # no'\nz:\n- - a\n  - b\n";
        assert_eq!(line_of(text, "x.y"), Some(2));
        assert_eq!(line_of(text, "[\"we:ird\"]"), Some(3));
        assert_eq!(line_of(text, "z[0][1]"), Some(7));
        assert_eq!(line_of(text, "k"), Some(4));
        assert_eq!(line_of("a: 1\n---\nb: 2\n", "b"), None);
        assert_eq!(line_of("# only a comment\n", "template"), None);
    }

    #[test]
    fn no_panic_on_odd_input() {
        let deep: String = (0..2000).map(|i| " ".repeat(i) + "a:\n").collect();
        let (nested, dashes) = ("[".repeat(100_000), "- ".repeat(20_000));
        let odd = concat!(
            "~-~- - -~:~\"~'~[~]~}~{\"a\": [1, {\"b\"~a: [1, 2\nb: 3~a: \"open\nb: 1~a: 'x''~- |\n",
            "~a:\n  - b: [}\n~\u{feff}a: é # ü~{\"é\": \"\\u00e9\\\"\", \"x\": [1,,2]}~\t- a:\tb"
        );
        let texts: Vec<&str> = odd.split('~').chain([&*nested, &*dashes, &*deep]).collect();
        for path in "a~a.b~[0][0]~a[\"~[~..~a[99999999999999999999]~template".split('~') {
            for text in &texts {
                let _ = line_of(text, path);
            }
        }
        for text in [KUBECTL, JSON] {
            for (end, _) in text.char_indices() {
                let _ = line_of(&text[..end], "spec.containers[1].ports[0].containerPort");
            }
        }
    }
}
