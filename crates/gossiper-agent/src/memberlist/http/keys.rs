//! The cluster's keyring, as `serf keys` handles it (serf 0.9.4 `serf/keymanager.go`,
//! `cmd/serf/command/keys.go`): each call sends one of Serf's internal key queries to every
//! member, this agent included (which changes its own keyring too, and saves it to its
//! `--keyring-file` if it has one), and adds the answers up as Serf's `KeyManager` does.
//!
//! | route | body | `serf keys` |
//! |---|---|---|
//! | `GET /v1/keys` | – | `-list` |
//! | `POST /v1/keys/install` | the key, base64 | `-install KEY` |
//! | `POST /v1/keys/use` | the key, base64 | `-use KEY` |
//! | `POST /v1/keys/remove` | the key, base64 | `-remove KEY` |
//!
//! Parameters: `relay-factor=N` (each answer also relayed through N members) and
//! `timeout=5s` (how long to wait for answers; Serf's default for the cluster's size if not
//! given, at most the API's longest wait). The reply comes as soon as every member asked has
//! answered, at the timeout otherwise.
//!
//! Every route needs the API token when one is set (listing shows the keys), and refuses what
//! a browser sends (a request with `Origin` or `Sec-Fetch-Site`, 403): without a token, a web
//! page could otherwise post a key of its choosing to an agent on loopback (a `text/plain`
//! form body can be made to read as a base64 key). A key that is not
//! base64 or not 16, 24 or 32 bytes is refused (400), as is removing this agent's primary key
//! (400: make another key primary first; every node refuses to drop its primary). The body is
//! at most [`MAX_KEY_BODY`] bytes (413).
//!
//! The reply (200 once the query is over, whatever the nodes said):
//! `{op, ok, num_nodes, num_resp, num_err, messages: {NODE: why}, keys: {KEY: nodes},
//! primary_keys: {KEY: nodes}, error}`: `ok` when every member asked answered with success,
//! else `error` says how many did not (`"1/3 nodes reported failure"`) and `messages` which
//! and why. `keys` and `primary_keys` are filled by a list.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, Request, State};
use axum::response::Response;
use gossiper_memberlist::KeyCommand;
use gossiper_memberlist::KeyReport;
use gossiper_memberlist::key_query::decode_key;
use http_body_util::{BodyExt, Limited};
use serde_json::{Value, json};

use super::{Api, agent_error, error, reply};
use crate::http::guard::check_token;
use crate::http::values::{parse_duration, query_param};

/// Largest request body: a base64 AES key is 44 bytes.
pub const MAX_KEY_BODY: usize = 1024;

/// Which key operation a route asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    List,
    Install,
    Use,
    Remove,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Install => "install",
            Op::Use => "use",
            Op::Remove => "remove",
        }
    }
}

/// `relay-factor` and `timeout` from the query string.
fn options(query: &str, max_wait: Duration) -> Result<(u8, Option<Duration>), String> {
    let relay = match query_param(query, "relay-factor") {
        None => 0,
        Some(r) => r
            .parse()
            .map_err(|_| format!("bad relay-factor {r:?}: 0 to 255"))?,
    };
    let timeout = match query_param(query, "timeout") {
        None => None,
        Some(t) => {
            let d = parse_duration(t)
                .ok_or_else(|| format!("bad timeout {t:?}: use e.g. 5s, 500ms"))?;
            if d > max_wait {
                return Err(format!(
                    "timeout {t} is over the API's longest wait ({max_wait:?})"
                ));
            }
            (!d.is_zero()).then_some(d)
        }
    };
    Ok((relay, timeout))
}

/// The command for `op` with the body's base64 key.
fn command(op: Op, body: &[u8]) -> Result<KeyCommand, String> {
    if op == Op::List {
        return Ok(KeyCommand::List);
    }
    let text = std::str::from_utf8(body).map_err(|_| "key is not base64: not text".to_owned())?;
    if text.trim().is_empty() {
        return Err("no key: send the base64 key as the body".into());
    }
    let key = decode_key(text)?;
    Ok(match op {
        Op::Install => KeyCommand::Install(key),
        Op::Use => KeyCommand::Use(key),
        Op::Remove | Op::List => KeyCommand::Remove(key),
    })
}

fn report_json(op: Op, r: &KeyReport) -> Value {
    let error = r.error();
    json!({
        "op": op.name(),
        "ok": error.is_none(),
        "error": error,
        "num_nodes": r.num_nodes,
        "num_resp": r.num_resp,
        "num_err": r.num_err,
        "messages": r.messages,
        "keys": r.keys,
        "primary_keys": r.primary_keys,
    })
}

pub(super) async fn list(
    State(api): State<Arc<Api>>,
    query: RawQuery,
    request: Request,
) -> Response {
    key_query(api, Op::List, query, request).await
}

pub(super) async fn install(
    State(api): State<Arc<Api>>,
    query: RawQuery,
    request: Request,
) -> Response {
    key_query(api, Op::Install, query, request).await
}

pub(super) async fn use_key(
    State(api): State<Arc<Api>>,
    query: RawQuery,
    request: Request,
) -> Response {
    key_query(api, Op::Use, query, request).await
}

pub(super) async fn remove(
    State(api): State<Arc<Api>>,
    query: RawQuery,
    request: Request,
) -> Response {
    key_query(api, Op::Remove, query, request).await
}

/// Whether a browser sent the request (it adds these to every cross-site request; the CLI and
/// other programs do not).
fn from_browser(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(axum::http::header::ORIGIN) || headers.contains_key("sec-fetch-site")
}

async fn key_query(api: Arc<Api>, op: Op, RawQuery(query): RawQuery, request: Request) -> Response {
    if let Err((status, message)) = check_token(request.headers(), &api.config) {
        return error(status, message);
    }
    if from_browser(request.headers()) {
        return error(
            403,
            "the key routes are not for browsers: send the request without Origin",
        );
    }
    let body = Limited::new(request.into_body(), MAX_KEY_BODY);
    let body = match tokio::time::timeout(api.config.body_timeout, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return error(413, format!("body over {MAX_KEY_BODY} bytes")),
        Err(_) => return error(408, "body not sent in time"),
    };
    let (relay, timeout) = match options(query.as_deref().unwrap_or(""), api.config.max_wait) {
        Ok(o) => o,
        Err(e) => return error(400, e),
    };
    let cmd = match command(op, &body) {
        Ok(c) => c,
        Err(e) => return error(400, e),
    };
    // The request waits for the answers: it holds a parked slot meanwhile.
    let Ok(_slot) = api.parked.clone().try_acquire_owned() else {
        return error(429, "too many blocking queries wait");
    };
    let mut stream = match api.handle.key_query(cmd, relay, timeout).await {
        Ok(s) => s,
        Err(e) => return agent_error(e),
    };
    let mut report = KeyReport::new(stream.members);
    while let Some(r) = stream.next().await {
        if let Some(payload) = r.payload {
            report.add(&r.from, &payload);
        }
        if report.complete() {
            // Everyone asked has answered: the query ends as the stream drops.
            log::info!("key query {}: every member answered", op.name());
            return reply(200, &report_json(op, &report));
        }
    }
    match stream.finish().await {
        Ok(done) => {
            if done.dropped > 0 {
                // Replies lost on the way are in the result: count from it.
                report = KeyReport::new(report.num_nodes);
                for (from, payload) in &done.result.responses {
                    report.add(from, payload);
                }
            }
            reply(200, &report_json(op, &report))
        }
        Err(e) => agent_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_base64_aes_keys_and_options_are_bounded() {
        let wait = Duration::from_secs(600);
        assert_eq!(command(Op::List, b"ignored"), Ok(KeyCommand::List));
        assert_eq!(
            command(Op::Install, b"AAAAAAAAAAAAAAAAAAAAAA==\n"),
            Ok(KeyCommand::Install(vec![0; 16]))
        );
        assert!(matches!(
            command(Op::Remove, b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            Ok(KeyCommand::Remove(k)) if k.len() == 24
        ));
        assert!(command(Op::Use, b"").unwrap_err().contains("no key"));
        assert!(command(Op::Use, b"%%%").unwrap_err().contains("base64"));
        assert!(command(Op::Use, b"AAAA").unwrap_err().contains("3 bytes"));
        assert!(
            command(Op::Use, &[0xff, 0xfe])
                .unwrap_err()
                .contains("base64")
        );
        assert_eq!(options("", wait), Ok((0, None)));
        assert_eq!(
            options("relay-factor=3&timeout=2s", wait),
            Ok((3, Some(Duration::from_secs(2))))
        );
        for bad in ["relay-factor=300", "timeout=soon", "timeout=1h"] {
            assert!(options(bad, wait).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies_say_ok_or_who_failed() {
        let mut r = KeyReport::new(2);
        r.add(
            "g1",
            &gossiper_memberlist::query::encode_key_response(true, "", &["K".into()], "K"),
        );
        let v = report_json(Op::List, &r);
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"], "1/2 nodes reported success");
        assert_eq!(v["keys"]["K"], 1);
        r.add(
            "s1",
            &gossiper_memberlist::query::encode_key_response(false, "no", &[], ""),
        );
        let v = report_json(Op::List, &r);
        assert_eq!(v["error"], "1/2 nodes reported failure");
        assert_eq!(v["messages"]["s1"], "no");
        let mut ok = KeyReport::new(1);
        ok.add(
            "g1",
            &gossiper_memberlist::query::encode_key_response(true, "", &[], ""),
        );
        let v = report_json(Op::Install, &ok);
        assert_eq!(
            (v["ok"].clone(), v["error"].clone()),
            (json!(true), Value::Null)
        );
        assert_eq!(v["op"], "install");
    }
}
