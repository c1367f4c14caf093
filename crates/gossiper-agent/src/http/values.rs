//! The API's small grammars: durations (`5s`, `500ms`), query parameters, percent escapes,
//! and how a value's bytes appear in JSON (text when UTF-8, else base64, named by `encoding`).

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value};

/// Parses `5s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1_000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3_600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

/// Decodes `%XX` escapes; `None` on a bad escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The raw value of query parameter `name` (`""` for a bare `name`), if present.
pub(crate) fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Adds `value` and `encoding` to `object`: the text itself when the bytes are UTF-8
/// (`"utf-8"`), else their standard base64 (`"base64"`).
pub(crate) fn put_value(object: &mut Map<String, Value>, bytes: &[u8]) {
    let (value, encoding) = match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), "utf-8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            "base64",
        ),
    };
    object.insert("value".into(), value.into());
    object.insert("encoding".into(), encoding.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_escapes_and_queries_parse() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(query_param("index=3&wait=5s", "wait"), Some("5s"));
        assert_eq!(query_param("index&raw", "raw"), Some(""));
        assert_eq!(query_param("index=1", "raw"), None);
    }

    #[test]
    fn values_are_text_or_base64() {
        let mut o = Map::new();
        put_value(&mut o, "blå".as_bytes());
        assert_eq!(
            (o["value"].as_str(), o["encoding"].as_str()),
            (Some("blå"), Some("utf-8"))
        );
        put_value(&mut o, b"\xff\xfe\x00bin");
        assert_eq!(
            (o["value"].as_str(), o["encoding"].as_str()),
            (Some("//4AYmlu"), Some("base64"))
        );
    }
}
