//! Who may talk to the API: the `Host` check every request passes (against DNS rebinding: a
//! browser page on an attacker's name must not reach a loopback API) and the bearer token
//! writes need when one is configured.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};

use super::HttpConfig;

/// Why a request was refused: status and message.
pub(crate) type Refusal = (u16, String);

/// Checks `Host`: `localhost`, an IP literal equal to the bound IP (any IP literal when bound
/// to an unspecified address), or a configured name; the port is not compared. A missing
/// `Host` is refused too (HTTP/1.1 requires one).
pub(crate) fn check_host(
    headers: &HeaderMap,
    bound: IpAddr,
    config: &HttpConfig,
) -> Result<(), Refusal> {
    let Some(value) = headers.get(header::HOST) else {
        return Err((400, "a Host header is required".into()));
    };
    let host = value.to_str().map(host_part).unwrap_or_default();
    let ok = host.eq_ignore_ascii_case("localhost")
        || match host.parse::<IpAddr>() {
            Ok(ip) => bound.is_unspecified() || ip == bound,
            Err(_) => config
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host)),
        };
    if ok {
        Ok(())
    } else {
        Err((
            421,
            format!(
                "Host {:?} is not this API: use {bound} or localhost",
                String::from_utf8_lossy(value.as_bytes())
            ),
        ))
    }
}

/// The host of a `Host` value: `[::1]:80` → `::1`, `a.example:80` → `a.example`.
fn host_part(value: &str) -> &str {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match value.rsplit_once(':') {
        // One colon: host and port. More: a bare IPv6 address.
        Some((h, _)) if !h.contains(':') => h,
        _ => value,
    }
}

/// Checks the bearer token of a write, when one is configured.
pub(crate) fn check_token(headers: &HeaderMap, config: &HttpConfig) -> Result<(), Refusal> {
    let Some(token) = &config.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Err((401, "writes need Authorization: Bearer <token>".into())),
        Some(g) if constant_time_eq(g.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err((403, "wrong API token".into())),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn hosts_are_the_bound_ip_or_localhost() {
        let c = HttpConfig {
            allowed_hosts: vec!["agent.internal".into()],
            ..HttpConfig::default()
        };
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        for ok in [
            "127.0.0.1:8946",
            "127.0.0.1",
            "localhost:1",
            "LOCALHOST",
            "agent.internal:9",
        ] {
            assert!(
                check_host(&headers(header::HOST, ok), lo, &c).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "evil.example",
            "evil.example:8946",
            "10.0.0.1:8946",
            "[::1]:8946",
            "",
        ] {
            assert_eq!(
                check_host(&headers(header::HOST, bad), lo, &c).map_err(|e| e.0),
                Err(421),
                "{bad}"
            );
        }
        assert_eq!(
            check_host(&HeaderMap::new(), lo, &c).map_err(|e| e.0),
            Err(400)
        );
        let any: IpAddr = "::".parse().unwrap();
        assert!(check_host(&headers(header::HOST, "[::1]:80"), any, &c).is_ok());
        assert!(check_host(&headers(header::HOST, "evil.example"), any, &c).is_err());
        assert_eq!(host_part("::1"), "::1");
    }

    #[test]
    fn tokens_are_checked_only_when_set() {
        let open = HttpConfig::default();
        assert!(check_token(&HeaderMap::new(), &open).is_ok());
        let locked = HttpConfig {
            token: Some("s3cret".into()),
            ..HttpConfig::default()
        };
        let code = |h: &HeaderMap| check_token(h, &locked).map_err(|e| e.0);
        assert_eq!(code(&HeaderMap::new()), Err(401));
        assert_eq!(
            code(&headers(header::AUTHORIZATION, "Bearer nope")),
            Err(403)
        );
        assert_eq!(
            code(&headers(header::AUTHORIZATION, "Basic s3cret")),
            Err(401)
        );
        assert_eq!(
            code(&headers(header::AUTHORIZATION, "Bearer s3cret")),
            Ok(())
        );
    }
}
