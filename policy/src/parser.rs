//! Parses oslo.policy check strings (`role:admin or project_id:%(project_id)s`) into [`Check`]s.
//!
//! Tokenizing follows oslo exactly: split on whitespace, peel leading `(` and trailing `)` off
//! each word, and recognise `and`/`or`/`not` in any case. The grammar is oslo's precedence,
//! `not` > `and` > `or`, with parentheses for grouping. Where oslo would log a malformed rule
//! and deny, we return a [`SyntaxError`].

use std::str::FromStr;

use crate::check::{Check, Kind, Part, Template};
use crate::error::SyntaxError;

/// How deeply parentheses and `not`s may nest.
const MAX_NESTING: usize = 100;

/// Parses a check string; the empty string (or only whitespace) means always allow.
pub fn parse(text: &str) -> Result<Check, SyntaxError> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Ok(Check::Always);
    }
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        nesting: 0,
    };
    let check = parser.or_expr()?;
    match parser.tokens.get(parser.pos) {
        None => Ok(check),
        Some(tok) if tok.kind == Tok::RParen => Err(parser.error_at(tok, "unbalanced `)`")),
        Some(tok) => Err(parser.error_at(
            tok,
            format!("expected `and` or `or` before {}", describe(tok)),
        )),
    }
}

/// Parses one check without operators (an element of oslo's legacy list-of-lists syntax).
pub(crate) fn parse_single(text: &str) -> Result<Check, SyntaxError> {
    parse_check(text, text, 0)
}

impl FromStr for Check {
    type Err = SyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// A whole word in quotes: oslo's `StringToken`, which no grammar rule accepts.
    Quoted(&'a str),
    Check(&'a str),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Tok<'a>,
    /// Byte offset in the check string.
    offset: usize,
}

fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    for (start, word) in words(text) {
        let clean = word.trim_start_matches('(');
        let lead = word.len() - clean.len();
        tokens.extend((0..lead).map(|i| Token {
            kind: Tok::LParen,
            offset: start + i,
        }));
        if clean.is_empty() {
            continue;
        }
        let start = start + lead;
        let core = clean.trim_end_matches(')');
        let trail = clean.len() - core.len();
        if !core.is_empty() {
            let kind = if core.eq_ignore_ascii_case("and") {
                Tok::And
            } else if core.eq_ignore_ascii_case("or") {
                Tok::Or
            } else if core.eq_ignore_ascii_case("not") {
                Tok::Not
            } else if is_quoted(clean) {
                Tok::Quoted(&clean[1..clean.len() - 1])
            } else {
                Tok::Check(core)
            };
            tokens.push(Token {
                kind,
                offset: start,
            });
        }
        tokens.extend((0..trail).map(|i| Token {
            kind: Tok::RParen,
            offset: start + core.len() + i,
        }));
    }
    tokens
}

/// Whitespace-separated words with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

fn is_quoted(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0]
}

fn describe(tok: &Token<'_>) -> String {
    match tok.kind {
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::And => "`and`".into(),
        Tok::Or => "`or`".into(),
        Tok::Not => "`not`".into(),
        Tok::Quoted(s) => format!("the quoted string `{s}`"),
        Tok::Check(s) => format!("`{s}`"),
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    nesting: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn error_at(&self, tok: &Token<'_>, reason: impl Into<String>) -> SyntaxError {
        SyntaxError::at(self.text, tok.offset, reason)
    }

    fn error_at_end(&self, reason: impl Into<String>) -> SyntaxError {
        SyntaxError::at(self.text, self.text.trim_end().len(), reason)
    }

    /// `and_expr ('or' and_expr)*`
    fn or_expr(&mut self) -> Result<Check, SyntaxError> {
        let mut items = vec![self.and_expr()?];
        while self.peek().is_some_and(|t| t.kind == Tok::Or) {
            self.pos += 1;
            items.push(self.and_expr()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Check::Or(items)
        })
    }

    /// `not_expr ('and' not_expr)*`
    fn and_expr(&mut self) -> Result<Check, SyntaxError> {
        let mut items = vec![self.not_expr()?];
        while self.peek().is_some_and(|t| t.kind == Tok::And) {
            self.pos += 1;
            items.push(self.not_expr()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Check::And(items)
        })
    }

    /// `'not' not_expr | atom`
    fn not_expr(&mut self) -> Result<Check, SyntaxError> {
        match self.peek() {
            Some(tok) if tok.kind == Tok::Not => {
                self.pos += 1;
                self.nest(&tok)?;
                let inner = self.not_expr()?;
                self.nesting -= 1;
                Ok(Check::Not(Box::new(inner)))
            }
            _ => self.atom(),
        }
    }

    /// `check | '(' or_expr ')'`
    fn atom(&mut self) -> Result<Check, SyntaxError> {
        let Some(tok) = self.peek() else {
            return Err(self.error_at_end("expected a check, found the end of the rule"));
        };
        match tok.kind {
            Tok::Check(word) => {
                self.pos += 1;
                parse_check(self.text, word, tok.offset)
            }
            Tok::LParen => {
                self.pos += 1;
                self.nest(&tok)?;
                let inner = self.or_expr()?;
                self.nesting -= 1;
                match self.peek() {
                    Some(t) if t.kind == Tok::RParen => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    Some(t) => Err(self.error_at(
                        &t,
                        format!("expected `and`, `or` or `)` before {}", describe(&t)),
                    )),
                    None => Err(self.error_at(&tok, "`(` is never closed")),
                }
            }
            Tok::Quoted(s) => Err(self.error_at(
                &tok,
                format!(
                    "the quoted string `{s}` is not a check; quotes belong on the left side \
                     of a check, as in `'{s}':%(key)s`"
                ),
            )),
            Tok::RParen | Tok::And | Tok::Or | Tok::Not => {
                Err(self.error_at(&tok, format!("expected a check, found {}", describe(&tok))))
            }
        }
    }

    fn nest(&mut self, tok: &Token<'_>) -> Result<(), SyntaxError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error_at(tok, format!("nested deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }
}

/// Parses one `kind:match` word (or `@`/`!`) found at byte `offset` of `text`.
fn parse_check(text: &str, word: &str, offset: usize) -> Result<Check, SyntaxError> {
    match word {
        "@" => return Ok(Check::Always),
        "!" => return Ok(Check::Never),
        _ => {}
    }
    let Some((kind, rest)) = word.split_once(':') else {
        return Err(SyntaxError::at(
            text,
            offset,
            format!("`{word}` is not a check: expected `kind:value`, `@` or `!`"),
        ));
    };
    let value_offset = offset + kind.len() + 1;
    match kind {
        "" => Err(SyntaxError::at(
            text,
            offset,
            format!("`{word}` has nothing before `:`"),
        )),
        "rule" => Ok(Check::Rule(rest.to_owned())),
        "role" => Ok(Check::Role(parse_template(text, rest, value_offset)?)),
        "http" | "https" => Err(SyntaxError::at(
            text,
            offset,
            format!("`{kind}:` checks (remote policy servers) are not supported"),
        )),
        _ => Ok(Check::Generic {
            kind: Kind::parse(kind),
            value: parse_template(text, rest, value_offset)?,
        }),
    }
}

/// Parses the right side of a check: literal text, `%%`, and `%(key)s`.
fn parse_template(text: &str, value: &str, offset: usize) -> Result<Template, SyntaxError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('%') {
        literal.push_str(&rest[..i]);
        let at = offset + (value.len() - rest.len()) + i;
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            literal.push('%');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            let Some(close) = closing_paren(inner) else {
                return Err(SyntaxError::at(text, at, "`%(` without a closing `)`"));
            };
            let key = &inner[..close];
            let Some(tail) = inner[close + 1..].strip_prefix('s') else {
                return Err(SyntaxError::at(
                    text,
                    at,
                    format!("only `%({key})s` substitutions are supported"),
                ));
            };
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Key(key.to_owned()));
            rest = tail;
        } else {
            return Err(SyntaxError::at(
                text,
                at,
                "a lone `%`; write `%%` for a percent sign or `%(key)s` for a target value",
            ));
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(Template { parts })
}

/// Index of the `)` closing an already-open `(`, counting nested pairs like Python's `%`.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    fn err(s: &str) -> SyntaxError {
        parse(s).unwrap_err()
    }

    #[test]
    fn empty_and_blank_mean_always() {
        assert_eq!(parse("").unwrap(), Check::Always);
        assert_eq!(parse("  \t\n").unwrap(), Check::Always);
    }

    #[test]
    fn tokenizer_matches_oslo() {
        let toks: Vec<_> = tokenize(
            "(( ( ((() And)) or ) (rule:context_is_admin) not)) 'a-string' \"another-string\"",
        )
        .into_iter()
        .map(|t| t.kind)
        .collect();
        use Tok::*;
        assert_eq!(
            toks,
            [
                LParen,
                LParen,
                LParen,
                LParen,
                LParen,
                LParen,
                RParen,
                And,
                RParen,
                RParen,
                Or,
                RParen,
                LParen,
                Check("rule:context_is_admin"),
                RParen,
                Not,
                RParen,
                RParen,
                Quoted("a-string"),
                Quoted("another-string"),
            ]
        );
    }

    #[test]
    fn precedence_like_oslo() {
        // The expected strings are oslo's own test expectations.
        let cases = [
            ("@ or ! or @", "(@ or ! or @)"),
            ("@ or ! and @", "(@ or (! and @))"),
            ("@ and ! or @", "((@ and !) or @)"),
            ("@ and ! and @", "(@ and ! and @)"),
            ("@ or ! or @ and !", "(@ or ! or (@ and !))"),
            ("@ or ! and @ or !", "(@ or (! and @) or !)"),
            ("@ or ! and @ and !", "(@ or (! and @ and !))"),
            ("@ and ! or @ or !", "((@ and !) or @ or !)"),
            ("@ and ! or @ and !", "((@ and !) or (@ and !))"),
            ("@ and ! and @ or !", "((@ and ! and @) or !)"),
            ("not @ and ! or @", "((not @ and !) or @)"),
            ("@ and not ! or @", "((@ and not !) or @)"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), want, "{input}");
        }
    }

    #[test]
    fn not_binds_tightest_and_nests() {
        assert_eq!(canon("not not @"), "not not @");
        assert_eq!(canon("not (@ or !)"), "not (@ or !)");
        assert_eq!(
            canon("a:1 or not b:2 and c:3"),
            "(a:1 or (not b:2 and c:3))"
        );
    }

    #[test]
    fn operators_are_case_insensitive() {
        assert_eq!(canon("@ AND ! Or NOT @"), "((@ and !) or not @)");
    }

    #[test]
    fn parentheses_and_spacing() {
        assert_eq!(canon("((((role:a))))"), "role:a");
        assert_eq!(
            canon("  (role:a   or\trole:b)\nand role:c "),
            "((role:a or role:b) and role:c)"
        );
        assert_eq!(canon("(role:a)and(role:b)"), "role:a)and(role:b");
        assert_eq!(
            canon("project_id:%(project_id)s"),
            "project_id:%(project_id)s"
        );
        // A trailing `)` after a substitution belongs to the group, not the check.
        assert_eq!(
            canon("(role:a or project_id:%(project_id)s)"),
            "(role:a or project_id:%(project_id)s)"
        );
    }

    #[test]
    fn words_that_only_look_like_operators_are_checks() {
        assert_eq!(parse("role:and").unwrap().to_string(), "role:and");
        assert!(matches!(parse("rule:or").unwrap(), Check::Rule(r) if r == "or"));
    }

    #[test]
    fn check_kinds() {
        assert_eq!(parse("rule:x").unwrap(), Check::Rule("x".into()));
        assert!(matches!(parse("role:admin").unwrap(), Check::Role(_)));
        // Kinds are case-sensitive, as oslo's registry: `Role:` is a generic credential lookup.
        assert!(matches!(
            parse("Role:admin").unwrap(),
            Check::Generic { .. }
        ));
        // The value keeps everything after the first colon.
        let Check::Generic { kind, value } = parse("role.x:a:b").unwrap() else {
            panic!("not generic")
        };
        assert_eq!(kind, Kind::Path(vec!["role".into(), "x".into()]));
        assert_eq!(value.parts, [Part::Text("a:b".into())]);
    }

    #[test]
    fn literal_kinds() {
        for (s, v) in [
            ("True", "True"),
            ("'Member'", "Member"),
            ("\"x y\"", "x y"),
            ("020", "20"),
        ] {
            assert_eq!(
                Kind::parse(s),
                Kind::Literal {
                    raw: s.into(),
                    value: v.into()
                }
            );
        }
        assert!(matches!(Kind::parse("is_admin"), Kind::Path(_)));
        assert!(matches!(Kind::parse("'unclosed"), Kind::Path(_)));
    }

    #[test]
    fn templates() {
        let t = parse_template("", "a%%b%(k)s-%(x(y))s", 0).unwrap();
        assert_eq!(
            t.parts,
            [
                Part::Text("a%b".into()),
                Part::Key("k".into()),
                Part::Text("-".into()),
                Part::Key("x(y)".into()),
            ]
        );
        assert!(parse_template("", "%(k)d", 0).is_err());
        assert!(parse_template("", "100%", 0).is_err());
        assert!(parse_template("", "%(k", 0).is_err());
        assert!(parse_template("", "%s", 0).is_err());
    }

    #[test]
    fn errors_carry_positions() {
        let e = err("role:a or");
        assert_eq!(e.column, 10);
        assert!(e.reason.contains("end of the rule"), "{e}");

        let e = err("role:a role:b");
        assert_eq!(e.column, 8);
        assert!(e.reason.contains("expected `and` or `or`"), "{e}");

        let e = err("role:a and foo");
        assert_eq!(e.column, 12);
        assert!(e.reason.contains("`foo` is not a check"), "{e}");

        let e = err("(role:a or role:b");
        assert_eq!(e.column, 1);
        assert!(e.reason.contains("never closed"), "{e}");

        let e = err("role:a)");
        assert_eq!(e.column, 7);
        assert!(e.reason.contains("unbalanced"), "{e}");

        let e = err("@ or http://example.com/%(x)s");
        assert_eq!(e.column, 6);
        assert!(e.reason.contains("not supported"), "{e}");

        let e = err("project_id:%(project_id)d");
        assert_eq!(e.column, 12);

        assert!(err("'admin'").reason.contains("quoted string"));
        assert!(err("()").reason.contains("found `)`"));
        assert!(err("not").reason.contains("end of the rule"));
        assert!(err("and @").reason.contains("found `and`"));
        assert!(err("@ or or @").reason.contains("found `or`"));
        assert!(err(":x").reason.contains("nothing before"));
        assert!(err("https://x").reason.contains("not supported"));
        assert!(err("foobar").reason.contains("not a check"));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}@{}", "(".repeat(200), ")".repeat(200));
        assert!(err(&deep).reason.contains("nested deeper"));
        let nots = format!("{}@", "not ".repeat(200));
        assert!(err(&nots).reason.contains("nested deeper"));
        let ok = format!("{}@{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(parse(&ok).unwrap(), Check::Always);
    }

    #[test]
    fn single_checks_for_list_syntax() {
        assert_eq!(parse_single("rule:a").unwrap(), Check::Rule("a".into()));
        assert!(parse_single("nope").is_err());
    }

    #[test]
    fn from_str() {
        let c: Check = "role:admin".parse().unwrap();
        assert_eq!(c.to_string(), "role:admin");
    }
}
