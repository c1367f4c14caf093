//! Serf's query filters (serf 0.9.4 `serf/query.go` `shouldProcessQuery`, `serf/messages.go`
//! `filterNode`, `filterTag`): each is `[u8 type][msgpack]`, type 0 a list of node names, type
//! 1 `{Tag, Expr}`, a regular expression matched (unanchored, as Go's `regexp.MatchString`)
//! against our value of that tag, `""` when we lack it. A node answers a query only if it
//! passes every filter; a filter it cannot read or compile means "not for us".
//!
//! The expression comes off the wire, so it is bounded before it is compiled: at most
//! [`MAX_EXPR_LEN`] bytes, a compiled size limit (NFA and lazy DFA) and a nesting limit, and
//! the `regex` crate's matchers, whose time grows with expression × text, never
//! exponentially.
//!
//! Go's RE2 syntax and `regex`'s agree on most of it (classes, repetition, groups, flags,
//! Unicode classes `\pL`, `\p{Greek}`, `\PN`, `(?i)` with Unicode case folding); where they
//! differ, the expression is rewritten to mean what Go means before it is compiled
//! ([`go_to_rust`]): Go's Perl classes `\d \w \s` (and `\D \W \S`) and its word boundaries
//! `\b \B` are ASCII, `\Q...\E` quotes literal text, and inside a class `[` `&` `~` are
//! plain characters (for `regex` they start nested classes and set operations).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::msgpack::{Writer, decode};

/// Filter type 0: node names.
pub const FILTER_NODES: u8 = 0;
/// Filter type 1: a tag and a regular expression.
pub const FILTER_TAG: u8 = 1;
/// Longest tag expression compiled, in bytes (a Serf query is at most 1,024 in all).
pub const MAX_EXPR_LEN: usize = 256;
/// Largest compiled expression (and lazy DFA cache) `regex` may build, in bytes.
const REGEX_SIZE_LIMIT: usize = 64 * 1024;
/// Deepest nesting of groups and repetitions accepted.
const REGEX_NEST_LIMIT: u32 = 32;

/// One query filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Only these nodes answer.
    Nodes(Vec<String>),
    /// Only nodes whose tag `tag` matches `expr` answer.
    Tag {
        /// The tag's name.
        tag: String,
        /// A Go regular expression.
        expr: String,
    },
}

/// Why a filter could not be applied (the query is then not for us).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterError {
    /// Empty, or its msgpack did not decode.
    Malformed(String),
    /// A filter type Serf 0.9.4 does not define.
    UnknownType(u8),
    /// The expression is longer than [`MAX_EXPR_LEN`].
    TooLong(usize),
    /// The expression does not compile (or is over the size or nesting limit).
    BadRegex(String),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Malformed(e) => write!(f, "malformed filter: {e}"),
            FilterError::UnknownType(t) => write!(f, "unknown filter type {t}"),
            FilterError::TooLong(n) => {
                write!(f, "tag expression of {n} bytes (at most {MAX_EXPR_LEN})")
            }
            FilterError::BadRegex(e) => write!(f, "bad tag expression: {e}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", default)]
#[derive(Default)]
struct TagWire {
    tag: String,
    expr: String,
}

impl Filter {
    /// Decodes `[type][msgpack]`.
    pub fn decode(buf: &[u8]) -> Result<Filter, FilterError> {
        let (&t, body) = buf
            .split_first()
            .ok_or_else(|| FilterError::Malformed("empty".into()))?;
        let bad = |e: crate::msgpack::DecodeError| FilterError::Malformed(e.to_string());
        match t {
            FILTER_NODES => {
                let (names, _) = decode::<Option<Vec<String>>>(body).map_err(bad)?;
                Ok(Filter::Nodes(names.unwrap_or_default()))
            }
            FILTER_TAG => {
                let (f, _) = decode::<TagWire>(body).map_err(bad)?;
                Ok(Filter::Tag {
                    tag: f.tag,
                    expr: f.expr,
                })
            }
            t => Err(FilterError::UnknownType(t)),
        }
    }

    /// `[type][msgpack]`, as Serf's `encodeFilter` writes it.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Filter::Nodes(names) => {
                let mut w = Writer::new(vec![FILTER_NODES]);
                w.array(names.len() as u32);
                for n in names {
                    w.str(n);
                }
                w.buf
            }
            Filter::Tag { tag, expr } => {
                let mut w = Writer::new(vec![FILTER_TAG]);
                w.map(2).key("Expr").str(expr).key("Tag").str(tag);
                w.buf
            }
        }
    }

    /// Whether node `name` with `tags` passes this filter.
    pub fn selects(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<bool, FilterError> {
        match self {
            Filter::Nodes(names) => Ok(names.iter().any(|n| n == name)),
            Filter::Tag { tag, expr } => {
                let value = tags.get(tag).map_or("", String::as_str);
                Ok(compile(expr)?.is_match(value))
            }
        }
    }
}

/// Compiles a tag expression, a Go regexp, within the limits.
pub fn compile(expr: &str) -> Result<regex::Regex, FilterError> {
    if expr.len() > MAX_EXPR_LEN {
        return Err(FilterError::TooLong(expr.len()));
    }
    regex::RegexBuilder::new(&go_to_rust(expr))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        // Go's `\123`: an octal character code.
        .octal(true)
        .build()
        .map_err(|e| FilterError::BadRegex(one_line(&e.to_string())))
}

/// `regex`'s errors draw the pattern over several lines; a filter error is one line.
fn one_line(e: &str) -> String {
    let last = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(e);
    last.trim().trim_start_matches("error: ").to_owned()
}

/// Go's ASCII Perl classes, as the class items they stand for.
fn perl_class(c: char) -> Option<(&'static str, bool)> {
    match c {
        'd' => Some(("0-9", false)),
        'D' => Some(("0-9", true)),
        'w' => Some(("0-9A-Za-z_", false)),
        'W' => Some(("0-9A-Za-z_", true)),
        's' => Some((r"\t\n\x0C\r ", false)),
        'S' => Some((r"\t\n\x0C\r ", true)),
        _ => None,
    }
}

/// Rewrites Go regexp `expr` into `regex` syntax that matches the same: Go's `\d \w \s`
/// and their negations become the ASCII classes Go means (`regex`'s are Unicode), `\b \B`
/// ASCII word boundaries, `\Q...\E` escaped literal text; in a class, `[` (but `[:name:]`),
/// `&`, `~` and a second `-` are escaped, being plain characters to Go. Anything else is
/// passed on as it is, for `regex` to accept or refuse: an expression Go refuses is mostly
/// refused here too.
pub fn go_to_rust(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len() + 16);
    let mut chars = expr.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                if let Some((items, negated)) = perl_class(e) {
                    match (in_class, negated) {
                        (false, false) => out.push_str(&format!("[{items}]")),
                        (_, true) => out.push_str(&format!("[^{items}]")),
                        (true, false) => out.push_str(items),
                    }
                } else if (e == 'b' || e == 'B') && !in_class {
                    out.push_str(&format!("(?-u:\\{e})"));
                } else if e == 'Q' && !in_class {
                    let mut quoted = String::new();
                    while let Some(q) = chars.next() {
                        if q == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        quoted.push(q);
                    }
                    out.push_str(&regex::escape(&quoted));
                } else {
                    out.push('\\');
                    out.push(e);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A `]` first is a plain `]`, to Go as to `regex`.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str(r"\]");
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // `[:alpha:]`, copied up to its `:]`.
                out.push('[');
                while let Some(p) = chars.next() {
                    out.push(p);
                    if p == ':' && chars.peek() == Some(&']') {
                        chars.next();
                        out.push(']');
                        break;
                    }
                }
            }
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '-' if in_class && chars.peek() == Some(&'-') => {
                chars.next();
                out.push_str(r"-\-");
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether node `name` with `tags` passes every filter, in order, as `shouldProcessQuery`
/// decides: the first that fails says no; one that cannot be applied is an error.
pub fn selects<B: AsRef<[u8]>>(
    filters: &[B],
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<bool, FilterError> {
    for f in filters {
        if !Filter::decode(f.as_ref())?.selects(name, tags)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn node_filters_name_who_answers() {
        let f = Filter::Nodes(vec!["g1".into(), "s2".into()]).encode();
        assert_eq!(f[0], FILTER_NODES);
        let none = tags(&[]);
        assert_eq!(selects(&[&f], "g1", &none), Ok(true));
        assert_eq!(selects(&[&f], "g2", &none), Ok(false));
        // Go's nil list names nobody.
        assert_eq!(selects(&[[0u8, 0xc0]], "g1", &none), Ok(false));
        assert_eq!(
            selects::<&[u8]>(&[], "g1", &none),
            Ok(true),
            "no filter: everyone"
        );
    }

    #[test]
    fn tag_filters_are_unanchored_regexps_on_our_tag_value() {
        let t = tags(&[("role", "rust"), ("dc", "lab-1")]);
        let f = |tag: &str, expr: &str| {
            Filter::Tag {
                tag: tag.into(),
                expr: expr.into(),
            }
            .encode()
        };
        assert_eq!(selects(&[f("role", "ru.t")], "g1", &t), Ok(true));
        assert_eq!(
            selects(&[f("role", "us")], "g1", &t),
            Ok(true),
            "unanchored"
        );
        assert_eq!(selects(&[f("role", "^us$")], "g1", &t), Ok(false));
        assert_eq!(selects(&[f("role", "nomatch")], "g1", &t), Ok(false));
        assert_eq!(selects(&[f("dc", r"^lab-\d+$")], "g1", &t), Ok(true));
        assert_eq!(
            selects(&[f("zone", "^$")], "g1", &t),
            Ok(true),
            "missing tag is \"\""
        );
        assert_eq!(selects(&[f("zone", ".")], "g1", &t), Ok(false));
        // Every filter must pass; the first that fails decides.
        let nodes = Filter::Nodes(vec!["g1".into()]).encode();
        assert_eq!(
            selects(&[nodes.clone(), f("role", "rust")], "g1", &t),
            Ok(true)
        );
        assert_eq!(selects(&[nodes, f("role", "web")], "g1", &t), Ok(false));
        // Serf's own bytes for {Expr: "web", Tag: "role"} decode to the same filter.
        let serf = [
            1, 0x82, 0xa4, b'E', b'x', b'p', b'r', 0xa3, b'w', b'e', b'b', 0xa3, b'T', b'a', b'g',
            0xa4, b'r', b'o', b'l', b'e',
        ];
        assert_eq!(
            Filter::decode(&serf),
            Ok(Filter::Tag {
                tag: "role".into(),
                expr: "web".into()
            })
        );
        assert_eq!(f("role", "web"), serf);
    }

    #[test]
    fn hostile_filters_are_refused_not_obeyed() {
        let t = tags(&[("role", "rust")]);
        let tag = |expr: String| {
            Filter::Tag {
                tag: "role".into(),
                expr,
            }
            .encode()
        };
        // Over the length bound: refused before compiling.
        assert_eq!(
            selects(&[tag("a".repeat(MAX_EXPR_LEN + 1))], "g1", &t),
            Err(FilterError::TooLong(MAX_EXPR_LEN + 1))
        );
        // Short but huge once compiled: over the size limit.
        assert!(matches!(
            selects(&[tag("(((a{100}){100}){100})".into())], "g1", &t),
            Err(FilterError::BadRegex(_))
        ));
        // Deep nesting.
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(
            selects(&[tag(deep)], "g1", &t),
            Err(FilterError::BadRegex(_))
        ));
        assert!(matches!(
            selects(&[tag("(".into())], "g1", &t),
            Err(FilterError::BadRegex(_))
        ));
        // A pattern that backtracking engines take exponential time on runs in linear time.
        let slow = tags(&[("role", &"a".repeat(500))]);
        assert_eq!(selects(&[tag("^(a+)+$".into())], "g1", &slow), Ok(true));
        assert_eq!(selects(&[tag("^(a+)+b$".into())], "g1", &slow), Ok(false));
        // Unknown types, empty filters and bad msgpack.
        assert_eq!(
            selects(&[[9u8, 0x80]], "g1", &t),
            Err(FilterError::UnknownType(9))
        );
        assert!(matches!(
            selects(&[[0u8; 0]], "g1", &t),
            Err(FilterError::Malformed(_))
        ));
        assert!(matches!(
            selects(&[[1u8, 0xdb, 0xff]], "g1", &t),
            Err(FilterError::Malformed(_))
        ));
    }

    #[test]
    fn unicode_classes_and_case_folding_work_as_in_go() {
        let f = |expr: &str| {
            Filter::Tag {
                tag: "role".into(),
                expr: expr.into(),
            }
            .encode()
        };
        let on = |value: &str, expr: &str| selects(&[f(expr)], "g1", &tags(&[("role", value)]));
        assert_eq!(on("rust", r"\pL+"), Ok(true));
        assert_eq!(on("rust", r"^\pL+$"), Ok(true));
        assert_eq!(on("ρόλος", r"^\p{Greek}+$"), Ok(true));
        assert_eq!(on("rust", r"^\p{Greek}+$"), Ok(false));
        assert_eq!(on("web-1", r"^\pL+$"), Ok(false));
        assert_eq!(on("web-1", r"^\pL+-\pN$"), Ok(true));
        assert_eq!(on("1", r"^\PL$"), Ok(true));
        assert_eq!(on("日本", r"^\p{Han}+$"), Ok(true));
        assert_eq!(on("Ünïcode", r"^\p{Lu}\p{Ll}+$"), Ok(true));
        assert_eq!(on("ÉCOLE", "(?i)^école$"), Ok(true), "Unicode case folding");
        assert_eq!(on("x", r"[[:alpha:]]"), Ok(true));
        assert_eq!(on("é", r"^[\pL\d]$"), Ok(true));
        assert!(matches!(
            on("x", r"\p{NoSuchClass}"),
            Err(FilterError::BadRegex(_))
        ));
    }

    #[test]
    fn perl_classes_and_boundaries_are_ascii_as_in_go() {
        let on = |value: &str, expr: &str| {
            let f = Filter::Tag {
                tag: "role".into(),
                expr: expr.into(),
            }
            .encode();
            selects(&[f], "g1", &tags(&[("role", value)]))
        };
        // Go's \d is [0-9]: Arabic-Indic digits are not digits to it.
        assert_eq!(on("123", r"^\d+$"), Ok(true));
        assert_eq!(on("١٢٣", r"^\d+$"), Ok(false));
        assert_eq!(on("١٢٣", r"^\D+$"), Ok(true));
        assert_eq!(on("é", r"\w"), Ok(false));
        assert_eq!(on("é", r"^\W$"), Ok(true));
        assert_eq!(
            on("a\u{a0}b", r"\s"),
            Ok(false),
            "no-break space is not \\s to Go"
        );
        assert_eq!(on("a b", r"a\sb"), Ok(true));
        assert_eq!(on("a1_", r"^[\w]+$"), Ok(true));
        assert_eq!(on("a-", r"^[^\d\s]+$"), Ok(true));
        assert_eq!(on("a1", r"^[\D]+$"), Ok(false));
        assert_eq!(
            on("éa", r"\ba"),
            Ok(true),
            "é is not a word character to Go's \\b"
        );
        assert_eq!(on("web", r"\Bb"), Ok(true));
        // \Q...\E: literal text; in classes, [ & ~ are characters.
        assert_eq!(on("a.b+", r"^\Qa.b+\E$"), Ok(true));
        assert_eq!(on("axb+", r"^\Qa.b+\E$"), Ok(false));
        assert_eq!(
            on("a.b", r"^\Qa.b"),
            Ok(true),
            "unterminated \\Q runs to the end"
        );
        assert_eq!(on("[", r"^[[a]$"), Ok(true));
        assert_eq!(on("&", r"^[a&&b]$"), Ok(true));
        assert_eq!(on("~", r"^[~~]$"), Ok(true));
        assert_eq!(on("]", r"^[]a]$"), Ok(true));
        assert_eq!(on(",", r"^[+--]$"), Ok(true), "Go's range + to -");
        assert_eq!(on("\u{53}", r"^\123$"), Ok(true), "octal");
        assert_eq!(go_to_rust(r"\d[\w]\b"), r"[0-9][0-9A-Za-z_](?-u:\b)");
        // A lone trailing backslash stays an error.
        assert!(matches!(on("x", "x\\"), Err(FilterError::BadRegex(_))));
        // Errors are one line.
        let Err(FilterError::BadRegex(e)) = on("x", "(") else {
            panic!("( compiles")
        };
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn any_expression_compiles_or_is_refused_never_panics() {
        use rand::{RngExt, SeedableRng};
        let alphabet: Vec<char> = r"\[]^-&~:(){}|*+?.$QEdDwWsSbBpPL{}aé日0123,"
            .chars()
            .collect();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let t = tags(&[("role", "aé日 1-]")]);
        for _ in 0..5_000 {
            let len = rng.random_range(0..24);
            let expr: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let f = Filter::Tag {
                tag: "role".into(),
                expr: expr.clone(),
            }
            .encode();
            match selects(&[f], "g1", &t) {
                Ok(_) | Err(FilterError::BadRegex(_)) => {}
                Err(e) => panic!("{expr:?}: {e}"),
            }
        }
    }
}
