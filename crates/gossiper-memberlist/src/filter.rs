//! Serf's query filters (serf 0.9.4 `serf/query.go` `shouldProcessQuery`, `serf/messages.go`
//! `filterNode`, `filterTag`): each is `[u8 type][msgpack]`, type 0 a list of node names, type
//! 1 `{Tag, Expr}`, a regular expression matched (unanchored, as Go's `regexp.MatchString`)
//! against our value of that tag, `""` when we lack it. A node answers a query only if it
//! passes every filter; a filter it cannot read or compile means "not for us".
//!
//! The expression comes off the wire, so it is bounded before it is compiled: at most
//! [`MAX_EXPR_LEN`] bytes, a compiled size and nesting limit, and `regex-lite`'s matcher, whose
//! time grows with expression × text, never exponentially. Go's RE2 syntax and `regex-lite`'s
//! agree on the common part (classes, repetition, groups, `(?i)`, ASCII `\d \w \s`); Unicode
//! classes (`\pL`) are refused here.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::msgpack::{Writer, decode};

/// Filter type 0: node names.
pub const FILTER_NODES: u8 = 0;
/// Filter type 1: a tag and a regular expression.
pub const FILTER_TAG: u8 = 1;
/// Longest tag expression compiled, in bytes (a Serf query is at most 1,024 in all).
pub const MAX_EXPR_LEN: usize = 256;
/// Largest compiled expression `regex-lite` may build, in bytes.
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

/// Compiles a tag expression within the limits.
pub fn compile(expr: &str) -> Result<regex_lite::Regex, FilterError> {
    if expr.len() > MAX_EXPR_LEN {
        return Err(FilterError::TooLong(expr.len()));
    }
    regex_lite::RegexBuilder::new(expr)
        .size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|e| FilterError::BadRegex(e.to_string()))
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
}
