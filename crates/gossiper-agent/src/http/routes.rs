//! The API's routes, each a few lines over [`AgentHandle`](crate::AgentHandle) calls:
//!
//! | route | reply |
//! |---|---|
//! | `GET /v1/health` | `{"status": "ok", "name"}` (503 once stopping) |
//! | `GET /v1/info` | name, version, generation, protocol, config summary, limits |
//! | `GET /v1/members` | every member: name, addr, status, generation, incarnation, heartbeat, phi |
//! | `GET /v1/state` | every node's live keys: `{NODE: {KEY: {value, encoding, version}}}` |
//! | `GET /v1/events` | Server-Sent Events: `member` and `key` events as JSON |
//! | `PUT /v1/kv/KEY` | stores the raw body (`?ttl=30s` optional): `{key, version}` |
//! | `DELETE /v1/kv/KEY` | `{key, version}`, 404 when there was no live value |
//! | `GET /v1/kv/NODE` | `{node, keys: {KEY: {value, encoding, version}}}` (`{}`: a member with no key; 404: no such node) |
//! | `GET /v1/kv/NODE/KEY` | `{node, key, value, encoding, version}`; `?raw`: the bytes; `?index=V&wait=5s`: a blocking query |
//! | `GET /metrics` | Prometheus text |
//! | `GET /ui/` | the cluster view (a page and its two files, see `ui`); `GET /ui` redirects there |
//!
//! Errors are `{"error": "..."}` with a 4xx/5xx status.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Map, Value, json};

use super::Api;
use super::guard::{check_host, check_token};
use super::values::{parse_duration, percent_decode, put_value, query_param};
use crate::{AgentError, Entry, Event, KeyFilter, RecvError};

type Shared = State<Arc<Api>>;

/// The router, with the `Host` check in front of every route.
pub(crate) fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/info", get(info))
        .route("/v1/members", get(members))
        .route("/v1/state", get(state))
        .route("/v1/events", get(events))
        .route("/metrics", get(super::metrics::metrics))
        .route(
            "/v1/kv/{name}",
            get(node_keys).put(put_kv).delete(delete_kv),
        )
        .route("/v1/kv/{node}/{key}", get(get_kv))
        .route("/ui", get(super::ui::redirect))
        .route("/ui/", get(super::ui::index))
        .route("/ui/{*asset}", get(super::ui::asset))
        .fallback(|req: Request| async move {
            error(404, format!("no such endpoint: {}", req.uri().path()))
        })
        .method_not_allowed_fallback(|req: Request| async move {
            error(
                405,
                format!(
                    "method {} not allowed on {}",
                    req.method(),
                    req.uri().path()
                ),
            )
        })
        .layer(middleware::from_fn_with_state(api.clone(), front_guard))
        .with_state(api)
}

/// A JSON reply.
fn reply(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A JSON error reply.
fn error(status: u16, message: impl Into<String>) -> Response {
    reply(status, &json!({ "error": message.into() }))
}

/// An error for breaking a limit or a rule: counted.
fn refuse(api: &Api, (status, message): (u16, String)) -> Response {
    api.counters.rejected.fetch_add(1, Ordering::Relaxed);
    error(status, message)
}

fn agent_error(e: AgentError) -> Response {
    match e {
        AgentError::ValueTooLarge { .. } => error(413, e.to_string()),
        AgentError::Write(gossiper_cluster::WriteError::ValueTooLarge { .. }) => {
            error(413, e.to_string())
        }
        AgentError::Write(gossiper_cluster::WriteError::VersionsExhausted) => {
            error(409, e.to_string())
        }
        AgentError::Write(_) => error(400, e.to_string()),
        AgentError::Stopped => error(503, "agent is stopping"),
        other => error(500, other.to_string()),
    }
}

/// In front of every route: the `Host` check, and a path whose escapes all decode (axum would
/// pass a bad `%zz` through as text).
async fn front_guard(State(api): Shared, request: Request, next: Next) -> Response {
    if let Err(refusal) = check_host(request.headers(), api.local.ip(), &api.config) {
        return refuse(&api, refusal);
    }
    if request
        .uri()
        .path()
        .split('/')
        .any(|s| percent_decode(s).is_none())
    {
        return error(400, "bad percent-encoding in path");
    }
    next.run(request).await
}

fn path_error(e: &PathRejection) -> Response {
    error(400, format!("bad path: {e}"))
}

async fn health(State(api): Shared) -> Response {
    let status = if api.handle.is_stopped() { 503 } else { 200 };
    let word = if status == 200 { "ok" } else { "stopping" };
    reply(
        status,
        &json!({ "status": word, "name": api.handle.name() }),
    )
}

async fn info(State(api): Shared) -> Response {
    let generation = match api.handle.inspect(|node, _| node.generation()).await {
        Ok(g) => g,
        Err(e) => return agent_error(e),
    };
    let i = api.handle.info();
    let c = &api.config;
    reply(
        200,
        &json!({
            "name": i.name,
            "version": env!("CARGO_PKG_VERSION"),
            "generation": generation,
            "protocol": gossiper_cluster::wire::PROTOCOL_VERSION,
            "cluster": i.cluster,
            "gossip_addr": i.gossip_addr.to_string(),
            "encrypted": i.encrypted,
            "detector": i.detector,
            "interval_ms": i.interval_ms,
            "fanout": i.fanout,
            "mtu": i.mtu,
            "max_value_bytes": i.max_value_bytes,
            "api": {
                "token_required_for_writes": c.token.is_some(),
                "max_connections": c.max_connections,
                "max_parked": c.max_parked,
                "max_header_bytes": c.max_header_bytes,
                "header_timeout_ms": c.header_timeout.as_millis() as u64,
                "body_timeout_ms": c.body_timeout.as_millis() as u64,
                "write_timeout_ms": c.write_timeout.as_millis() as u64,
                "max_wait_ms": c.max_wait.as_millis() as u64,
            },
        }),
    )
}

async fn members(State(api): Shared) -> Response {
    let members = match api.handle.members().await {
        Ok(m) => m,
        Err(e) => return agent_error(e),
    };
    let list: Vec<Value> = members
        .into_iter()
        .map(|m| {
            json!({
                "name": m.name,
                "addr": m.addr.map(|a| a.to_string()),
                "status": m.status.name(),
                "generation": m.generation,
                "incarnation": m.incarnation,
                "heartbeat": m.heartbeat,
                "phi": (m.phi * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    reply(200, &Value::Array(list))
}

/// `{KEY: {value, encoding, version}}`.
fn keys_json(keys: Vec<(String, Entry)>) -> Value {
    let mut out = Map::new();
    for (key, entry) in keys {
        let mut o = Map::new();
        put_value(&mut o, entry.value.as_deref().unwrap_or_default());
        o.insert("version".into(), entry.version.into());
        out.insert(key, Value::Object(o));
    }
    Value::Object(out)
}

async fn state(State(api): Shared) -> Response {
    match api.handle.state().await {
        Ok(nodes) => reply(
            200,
            &Value::Object(
                nodes
                    .into_iter()
                    .map(|(name, keys)| (name, keys_json(keys)))
                    .collect(),
            ),
        ),
        Err(e) => agent_error(e),
    }
}

async fn node_keys(State(api): Shared, node: Result<Path<String>, PathRejection>) -> Response {
    let node = match node {
        Ok(Path(n)) => n,
        Err(e) => return path_error(&e),
    };
    match api.handle.keys(&node).await {
        Ok(Some(keys)) => reply(200, &json!({ "node": node, "keys": keys_json(keys) })),
        // A member that never wrote a key has none; a name no one knows is a 404.
        Ok(None) => match api.handle.members().await {
            Ok(members) if members.iter().any(|m| m.name == node) => {
                reply(200, &json!({ "node": node, "keys": {} }))
            }
            Ok(_) => error(404, format!("no node {node:?} known here")),
            Err(e) => agent_error(e),
        },
        Err(e) => agent_error(e),
    }
}

async fn put_kv(
    State(api): Shared,
    key: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refusal) = check_token(&headers, &api.config) {
        return refuse(&api, refusal);
    }
    let key = match key {
        Ok(Path(k)) => k,
        Err(e) => return path_error(&e),
    };
    let ttl = match query_param(query.as_deref().unwrap_or(""), "ttl") {
        None => None,
        Some(t) => match parse_duration(t) {
            Some(d) if !d.is_zero() => Some(d),
            _ => return error(400, format!("bad ttl {t:?}: use e.g. 30s, 500ms, 5m")),
        },
    };
    let max = api.handle.info().max_value_bytes;
    let too_large = |len: String| {
        (
            413,
            format!(
                "value of {len} bytes is over this agent's limit of {max} bytes \
                 (max-value-bytes; see GET /v1/info)"
            ),
        )
    };
    // Judged on the declared length before a byte of the body is read.
    if let Some(len) = headers.get(header::CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|l| l.parse::<u64>().ok()) {
            Some(len) if len > max as u64 => return refuse(&api, too_large(len.to_string())),
            Some(_) => {}
            None => return error(400, "bad Content-Length"),
        }
    }
    let read = Limited::new(body, max).collect();
    let value = match tokio::time::timeout(api.config.body_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return refuse(&api, too_large(format!("more than {max}")));
        }
        Ok(Err(e)) => return error(400, format!("cannot read the body: {e}")),
        Err(_) => {
            let secs = api.config.body_timeout.as_secs_f64();
            return refuse(&api, (408, format!("the body took longer than {secs} s")));
        }
    };
    let written = match ttl {
        Some(ttl) => api.handle.set_with_ttl(&key, value, ttl).await,
        None => api.handle.set(&key, value).await,
    };
    match written {
        Ok(version) => reply(200, &json!({ "key": key, "version": version })),
        Err(e) => agent_error(e),
    }
}

async fn delete_kv(
    State(api): Shared,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = check_token(&headers, &api.config) {
        return refuse(&api, refusal);
    }
    let key = match key {
        Ok(Path(k)) => k,
        Err(e) => return path_error(&e),
    };
    match api.handle.delete(&key).await {
        Ok(Some(version)) => reply(200, &json!({ "key": key, "version": version })),
        Ok(None) => error(404, format!("no key {key:?} on this node")),
        Err(e) => agent_error(e),
    }
}

async fn get_kv(
    State(api): Shared,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let (node, key) = match path {
        Ok(Path(p)) => p,
        Err(e) => return path_error(&e),
    };
    let query = query.unwrap_or_default();
    let raw = query_param(&query, "raw").is_some();
    let index = match query_param(&query, "index") {
        None => None,
        Some(i) => match i.parse::<u64>() {
            Ok(i) => Some(i),
            Err(_) => return error(400, format!("bad index {i:?}")),
        },
    };
    let wait = match query_param(&query, "wait") {
        None => Duration::from_secs(300),
        Some(w) => match parse_duration(w) {
            Some(d) => d,
            None => return error(400, format!("bad wait {w:?}: use e.g. 5s, 500ms, 1m")),
        },
    }
    .min(api.config.max_wait);
    let entry = match index {
        None => api.handle.entry(&node, &key).await,
        Some(index) => match blocking_get(&api, &node, &key, index, wait).await {
            Ok(entry) => entry,
            Err(response) => return response,
        },
    };
    match entry {
        Ok(entry) => kv_reply(&node, &key, entry, raw),
        Err(e) => agent_error(e),
    }
}

/// A blocking query: the entry once its version passes `index`, or when `wait` ends. Holds a
/// parked slot until it answers or its client goes away (the future is then dropped, and the
/// slot with it).
async fn blocking_get(
    api: &Api,
    node: &str,
    key: &str,
    index: u64,
    wait: Duration,
) -> Result<Result<Option<Entry>, AgentError>, Response> {
    let Ok(_slot) = api.parked.clone().try_acquire_owned() else {
        let max = api.config.max_parked;
        return Err(refuse(
            api,
            (429, format!("{max} blocking queries already wait")),
        ));
    };
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before reading: a change between the read and the wait is not missed.
    let mut changes = api.handle.subscribe(KeyFilter::prefix(key).on_node(node));
    let mut entry = api.handle.entry(node, key).await;
    loop {
        if !matches!(&entry, Ok(e) if e.as_ref().map_or(0, |e| e.version) <= index) {
            return Ok(entry);
        }
        // The change itself answers: no second trip to the agent's task.
        let next = async {
            loop {
                match changes.recv().await {
                    Ok(change) if change.key == key && change.version > index => {
                        return Some(Entry {
                            version: change.version,
                            value: change.value,
                        });
                    }
                    Ok(_) => {}
                    // Missed events, or the agent stopped: look again.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                }
            }
        };
        entry = match tokio::time::timeout_at(deadline, next).await {
            Ok(Some(changed)) => return Ok(Ok(Some(changed))),
            Ok(None) if !api.handle.is_stopped() => api.handle.entry(node, key).await,
            _ => return Ok(api.handle.entry(node, key).await),
        };
    }
}

/// The entry (200), or 404 with the version it had (0: never written).
fn kv_reply(node: &str, key: &str, entry: Option<Entry>, raw: bool) -> Response {
    let version = entry.as_ref().map_or(0, |e| e.version);
    match entry.and_then(|e| e.value) {
        Some(value) if raw => {
            let mut response =
                ([(header::CONTENT_TYPE, "application/octet-stream")], value).into_response();
            response
                .headers_mut()
                .insert("x-gossiper-index", HeaderValue::from(version));
            response
        }
        Some(value) => {
            let mut o = Map::new();
            o.insert("node".into(), node.into());
            o.insert("key".into(), key.into());
            put_value(&mut o, &value);
            o.insert("version".into(), version.into());
            reply(200, &Value::Object(o))
        }
        None => reply(
            404,
            &json!({
                "error": format!("no key {key:?} on node {node:?}"),
                "version": version,
            }),
        ),
    }
}

/// `GET /v1/events`: every membership and key change as a Server-Sent Event (`event:
/// member|key|lagged`, JSON data), until the client goes away or the agent stops. Holds a
/// parked slot meanwhile.
async fn events(State(api): Shared) -> Response {
    let Ok(slot) = api.parked.clone().try_acquire_owned() else {
        let max = api.config.max_parked;
        return refuse(
            &api,
            (
                429,
                format!("{max} blocking queries and streams already wait"),
            ),
        );
    };
    let events = api.handle.events();
    let stream = futures_util::stream::unfold((events, slot), |(mut events, slot)| async move {
        let event = match events.recv().await {
            Ok(Event::Member(m)) => SseEvent::default()
                .event("member")
                .data(json!({ "name": m.name, "event": m.kind.label() }).to_string()),
            Ok(Event::Key(k)) => {
                let mut o = Map::new();
                o.insert("node".into(), k.node.into());
                o.insert("key".into(), k.key.into());
                o.insert("version".into(), k.version.into());
                o.insert("deleted".into(), k.value.is_none().into());
                if let Some(v) = &k.value {
                    put_value(&mut o, v);
                }
                SseEvent::default()
                    .event("key")
                    .data(Value::Object(o).to_string())
            }
            Err(RecvError::Lagged(n)) => SseEvent::default()
                .event("lagged")
                .data(json!({ "missed": n }).to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), (events, slot)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
