//! `POST /v1/query/NAME`: asks a Serf query of the cluster, as `serf query` does, and answers
//! once its timeout is over with who acknowledged and who answered what. The body is the
//! query's payload; the options are `serf query`'s flags as parameters, each repeatable where
//! the flag is:
//!
//! | parameter | `serf query` flag | meaning |
//! |---|---|---|
//! | `node=NAME` | `-node` | only NAME answers (repeat for more) |
//! | `tag=KEY=REGEXP` | `-tag` | only nodes whose tag KEY matches REGEXP answer |
//! | `timeout=5s` | `-timeout` | how long to collect (default: Serf's, from the cluster size; at most the API's longest wait) |
//! | `ack=false` | `-no-ack` | no acks asked for |
//! | `relay-factor=N` | `-relay-factor` | each answer is also relayed through N other members |
//! | `stream=true` | (`serf query` prints as it goes) | stream each ack and answer as it arrives (below) |
//!
//! The reply: `{name, ltime, id, acks: [NAME...], responses: {NAME: {payload, encoding}}}`,
//! each payload text when UTF-8, else base64 with `encoding: "base64"`.
//!
//! ## Streaming (`stream=true`)
//!
//! The reply is then NDJSON (`Content-Type: application/x-ndjson`): one JSON object a line,
//! written as things happen, each with a `type`:
//!
//! | `type` | when | fields |
//! |---|---|---|
//! | `query` | first, once the query is sent | `name`, `ltime`, `id`, `members` (asked) |
//! | `ack` | a node acknowledged | `from` |
//! | `response` | a node answered | `from`, `payload`, `encoding` |
//! | `done` | last, at the timeout | the non-streamed reply's fields, and `dropped` |
//! | `error` | last, instead of `done`, if the agent stops | `error` |
//!
//! Errors found before the query leaves (a bad parameter, 429) are answered as without
//! `stream`. The stream ends at the query's timeout. It buffers at most
//! [`STREAM_BUFFER`](crate::memberlist::STREAM_BUFFER) replies for a client that reads
//! slowly; past that, replies are left out of the stream and counted (`dropped`, and
//! `gossiper_memberlist_query_stream_drops_total` in `/metrics`), but they are still in
//! `done`. A client that stops reading altogether is cut off by the API's write timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gossiper_memberlist::{QueryParams, QueryReply, QueryResult};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::{Api, MAX_BODY, agent_error, error, reply};
use crate::http::guard::check_token;
use crate::http::values::{parse_duration, percent_decode, put_value};
use crate::memberlist::{QueryDone, QueryStream};

/// Every value of parameter `name`, percent-decoded (a `+` stays a `+`: regexps use it).
fn all_params(query: &str, name: &str) -> Result<Vec<String>, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v).ok_or_else(|| format!("bad escape in {name}={v}")))
        .collect()
}

/// The query's parameters from the request's query string.
fn params(
    name: String,
    query: &str,
    payload: Vec<u8>,
    max_wait: Duration,
) -> Result<QueryParams, String> {
    let mut p = QueryParams::new(name, payload);
    p.nodes = all_params(query, "node")?;
    for t in all_params(query, "tag")? {
        let (k, re) = t
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("bad tag filter {t:?}: use tag=KEY=REGEXP"))?;
        p.tags.push((k.to_owned(), re.to_owned()));
    }
    if let Some(t) = all_params(query, "timeout")?.last() {
        let d =
            parse_duration(t).ok_or_else(|| format!("bad timeout {t:?}: use e.g. 5s, 500ms"))?;
        if d > max_wait {
            return Err(format!(
                "timeout {t} is over the API's longest wait ({max_wait:?})"
            ));
        }
        p.timeout = (!d.is_zero()).then_some(d);
    }
    if let Some(a) = all_params(query, "ack")?.last() {
        p.ack = match a.as_str() {
            "true" | "" => true,
            "false" => false,
            _ => return Err(format!("bad ack {a:?}: true or false")),
        };
    }
    if let Some(r) = all_params(query, "relay-factor")?.last() {
        p.relay_factor = r
            .parse()
            .map_err(|_| format!("bad relay-factor {r:?}: 0 to 255"))?;
    }
    Ok(p)
}

/// `{payload, encoding}` of an answer.
fn payload_json(payload: &[u8]) -> Map<String, Value> {
    let mut o = Map::new();
    put_value(&mut o, payload);
    // `put_value` names the field `value`, as the kv API does; a query answer is a payload.
    if let Some(v) = o.remove("value") {
        o.insert("payload".into(), v);
    }
    o
}

fn result_json(r: &QueryResult) -> Value {
    let mut responses = Map::new();
    for (from, payload) in &r.responses {
        responses.insert(from.clone(), Value::Object(payload_json(payload)));
    }
    json!({
        "name": r.name,
        "ltime": r.ltime,
        "id": r.id,
        "acks": r.acks,
        "responses": responses,
    })
}

pub(super) async fn send_query(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    if let Err((status, message)) = check_token(request.headers(), &api.config) {
        return error(status, message);
    }
    let body = Limited::new(request.into_body(), MAX_BODY);
    let payload = match tokio::time::timeout(api.config.body_timeout, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes().to_vec(),
        Ok(Err(_)) => return error(413, format!("payload over {MAX_BODY} bytes")),
        Err(_) => return error(408, "body not sent in time"),
    };
    let p = match params(
        name,
        query.as_deref().unwrap_or(""),
        payload,
        api.config.max_wait,
    ) {
        Ok(p) => p,
        Err(e) => return error(400, e),
    };
    let stream = match all_params(query.as_deref().unwrap_or(""), "stream") {
        Ok(v) => match v.last().map(String::as_str) {
            None | Some("false") => false,
            Some("true" | "") => true,
            Some(other) => return error(400, format!("bad stream {other:?}: true or false")),
        },
        Err(e) => return error(400, e),
    };
    // The request waits for the query's whole timeout: it holds a parked slot meanwhile.
    let Ok(slot) = api.parked.clone().try_acquire_owned() else {
        return error(429, "too many blocking queries wait");
    };
    if stream {
        let name = p.name.clone();
        return match api.handle.query_stream(p).await {
            Ok(s) => ndjson(name, s, slot, api.config.max_wait),
            Err(e) => agent_error(e),
        };
    }
    match api.handle.query(p).await {
        Ok(r) => reply(200, &result_json(&r)),
        Err(e) => agent_error(e),
    }
}

/// One NDJSON line.
fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// The line of one ack or answer.
fn reply_json(r: &QueryReply) -> Value {
    match &r.payload {
        None => json!({ "type": "ack", "from": r.from }),
        Some(p) => {
            let mut o = payload_json(p);
            o.insert("type".into(), "response".into());
            o.insert("from".into(), r.from.clone().into());
            Value::Object(o)
        }
    }
}

/// The last line: the whole result, and what the stream lost.
fn done_json(d: &QueryDone) -> Value {
    let mut v = result_json(&d.result);
    v["type"] = "done".into();
    v["dropped"] = d.dropped.into();
    v
}

/// Where a streamed reply is.
enum Step {
    /// The first line is to go.
    Start(QueryStream, Value),
    /// Replies are coming.
    Replies(QueryStream),
    /// Nothing more to send.
    End,
}

/// The streamed reply: the `query` line, each ack and answer, then `done` (or `error`). It
/// holds `slot` while it lasts and ends at the query's timeout (`max_wait` at the latest, a
/// bound in case the agent's clock and the query disagree).
fn ndjson(
    name: String,
    s: QueryStream,
    slot: OwnedSemaphorePermit,
    max_wait: Duration,
) -> Response {
    let head = json!({
        "type": "query", "name": name, "ltime": s.ltime, "id": s.id, "members": s.members,
    });
    let give_up = tokio::time::Instant::now() + max_wait + Duration::from_secs(5);
    let late = || json!({ "type": "error", "error": "query did not end in time" });
    let body = futures_util::stream::unfold(
        (Step::Start(s, head), slot),
        move |(step, slot)| async move {
            let (out, next) = match step {
                Step::Start(s, head) => (line(&head), Step::Replies(s)),
                Step::Replies(mut s) => match tokio::time::timeout_at(give_up, s.next()).await {
                    Ok(Some(r)) => (line(&reply_json(&r)), Step::Replies(s)),
                    Ok(None) => {
                        let last = match tokio::time::timeout_at(give_up, s.finish()).await {
                            Ok(Ok(d)) => done_json(&d),
                            Ok(Err(_)) => json!({ "type": "error", "error": "agent is stopping" }),
                            Err(_) => late(),
                        };
                        (line(&last), Step::End)
                    }
                    Err(_) => (line(&late()), Step::End),
                },
                Step::End => return None,
            };
            Some((Ok::<_, std::convert::Infallible>(out), (next, slot)))
        },
    );
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_serf_querys_flags() {
        let wait = Duration::from_secs(600);
        let p = params(
            "uptime".into(),
            "node=g1&node=s%201&tag=role=ru.t&tag=dc=%5Elab&timeout=3s&ack=false&relay-factor=2",
            b"x".to_vec(),
            wait,
        )
        .unwrap();
        assert_eq!(p.nodes, ["g1", "s 1"]);
        let plus = params("q".into(), "tag=role=^a+$", vec![], wait).unwrap();
        assert_eq!(plus.tags[0].1, "^a+$");
        assert_eq!(
            p.tags,
            [
                ("role".to_owned(), "ru.t".to_owned()),
                ("dc".to_owned(), "^lab".to_owned())
            ]
        );
        assert_eq!(p.timeout, Some(Duration::from_secs(3)));
        assert!(!p.ack);
        assert_eq!(p.relay_factor, 2);
        let d = params("q".into(), "", vec![], wait).unwrap();
        assert!(d.ack && d.timeout.is_none() && d.nodes.is_empty());
        for bad in [
            "tag=role",
            "tag==x",
            "timeout=soon",
            "timeout=1h",
            "ack=maybe",
            "relay-factor=256",
            "node=%zz",
        ] {
            assert!(params("q".into(), bad, vec![], wait).is_err(), "{bad}");
        }
    }
}
