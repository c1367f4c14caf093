//! The HTTP API of a memberlist agent (the `http` feature), a client of
//! [`MemberlistHandle`] like any other, with the same `Host` check,
//! token and limits as the gossiper agent's API ([`HttpConfig`]):
//!
//! | route | reply |
//! |---|---|
//! | `GET /v1/health` | `{"status": "ok", "name"}` |
//! | `GET /v1/members` | Serf's members: `name`, `addr`, `status` (alive, leaving, left, failed), `tags`, `incarnation`, `protocol` |
//! | `GET /v1/events` | received user events `[{index, name, payload, encoding, ltime, coalesce}]`; `?index=N&wait=5s` blocks until one past N arrives; `X-Gossiper-Index` is the newest index; with `Accept: text/event-stream`, Server-Sent Events (`sse`) |
//! | `POST /v1/event/NAME` | sends a user event, the body its payload (`?coalesce=true` optional): `{name, ltime}` |
//! | `POST /v1/query/NAME` | asks a Serf query (`serf query`), the body its payload, `?node=`, `?tag=KEY=REGEXP`, `?timeout=`, `?ack=false`, `?relay-factor=` (see `query`): after the timeout, `{name, ltime, id, acks, responses}`; with `?stream=true`, NDJSON lines as acks and answers arrive |
//! | `GET /v1/keys` | every member's keys (`serf keys -list`, see `keys`): `{ok, num_nodes, num_resp, num_err, messages, keys: {KEY: nodes}, primary_keys}` |
//! | `POST /v1/keys/install`, `/v1/keys/use`, `/v1/keys/remove` | the body a base64 key: installs it on, makes it the primary of, or removes it from every member (`serf keys -install/-use/-remove`): `{ok, num_nodes, num_resp, num_err, messages}` |
//! | `GET /metrics` | Prometheus text: the node's counters, the health score, members by status |
//! | `GET /ui/` | the gossiper agent's cluster view, which shows a memberlist agent's members and events |
//!
//! A reply the client does not read for `write_timeout` closes its connection (the gossiper
//! agent's `WriteTimeout`), so a streamed query or event stream nobody reads frees its slots.

mod keys;
mod metrics;
mod query;
mod sse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{EventRecord, MemberlistHandle};
use crate::AgentError;
use crate::http::guard::{check_host, check_token};
use crate::http::values::{parse_duration, query_param};
use crate::http::{HttpConfig, ui};

/// Largest event payload a request may carry (Serf's own limit is 512 with the name).
const MAX_BODY: usize = 9 * 1024;

struct Api {
    handle: MemberlistHandle,
    config: HttpConfig,
    local: SocketAddr,
    parked: Arc<Semaphore>,
}

type Shared = State<Arc<Api>>;

fn reply(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(status: u16, message: impl Into<String>) -> Response {
    reply(status, &json!({ "error": message.into() }))
}

fn agent_error(e: AgentError) -> Response {
    match e {
        AgentError::Stopped => error(503, "agent is stopping"),
        AgentError::Config(m) => error(400, m),
        other => error(500, other.to_string()),
    }
}

/// Serves the API on `listener` until the agent stops.
pub async fn serve(
    handle: MemberlistHandle,
    listener: TcpListener,
    config: HttpConfig,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_header_size(config.max_header_bytes)
        .max_buf_size(16 * 1024);
    let api_write_timeout = config.write_timeout;
    let api = Arc::new(Api {
        parked: Arc::new(Semaphore::new(config.max_parked)),
        handle: handle.clone(),
        config,
        local,
    });
    let app = router(api);
    loop {
        tokio::select! {
            () = handle.stopped() => return Ok(()),
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else { continue };
                let stream = crate::http::write_timeout::WriteTimeout::new(stream, api_write_timeout);
                let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
                let handle = handle.clone();
                tokio::spawn(async move {
                    let mut connection = std::pin::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        () = handle.stopped() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
}

fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/members", get(members))
        .route("/v1/events", get(events))
        .route("/v1/event/{name}", post(send_event))
        .route("/v1/query/{name}", post(query::send_query))
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/install", post(keys::install))
        .route("/v1/keys/use", post(keys::use_key))
        .route("/v1/keys/remove", post(keys::remove))
        .route("/metrics", get(metrics::metrics))
        .route("/ui", get(ui::redirect))
        .route("/ui/", get(ui::index))
        .route("/ui/{*asset}", get(ui::asset))
        .fallback(|req: Request| async move {
            error(404, format!("no such endpoint: {}", req.uri().path()))
        })
        .layer(middleware::from_fn_with_state(api.clone(), front_guard))
        .with_state(api)
}

async fn front_guard(State(api): Shared, request: Request, next: Next) -> Response {
    if let Err((status, message)) = check_host(request.headers(), api.local.ip(), &api.config) {
        return error(status, message);
    }
    next.run(request).await
}

async fn health(State(api): Shared) -> Response {
    let (status, word) = if api.handle.is_stopped() {
        (503, "stopping")
    } else {
        (200, "ok")
    };
    reply(
        status,
        &json!({ "status": word, "name": api.handle.name(), "protocol": "memberlist" }),
    )
}

async fn members(State(api): Shared) -> Response {
    match api.handle.members().await {
        Ok(members) => {
            let list: Vec<Value> = members
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "addr": m.addr.to_string(),
                        "status": m.status.as_str(),
                        "tags": m.tags,
                        "incarnation": m.incarnation,
                        "protocol": m.vsn,
                    })
                })
                .collect();
            reply(200, &Value::Array(list))
        }
        Err(e) => agent_error(e),
    }
}

fn event_json(r: &EventRecord) -> Value {
    let mut o = Map::new();
    o.insert("index".into(), r.index.into());
    o.insert("name".into(), r.event.name.clone().into());
    let (payload, encoding) = match std::str::from_utf8(&r.event.payload) {
        Ok(text) => (text.to_owned(), "utf-8"),
        Err(_) => {
            use base64::Engine;
            (
                base64::engine::general_purpose::STANDARD.encode(&r.event.payload),
                "base64",
            )
        }
    };
    o.insert("payload".into(), payload.into());
    o.insert("encoding".into(), encoding.into());
    o.insert("ltime".into(), r.event.ltime.into());
    o.insert("coalesce".into(), r.event.coalesce.into());
    Value::Object(o)
}

async fn events(
    State(api): Shared,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_stream {
        let Ok(slot) = api.parked.clone().try_acquire_owned() else {
            return error(429, "too many blocking queries and streams wait");
        };
        return sse::stream(&api.handle, slot, event_json);
    }
    let query = query.unwrap_or_default();
    let index = match query_param(&query, "index").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(i)) => i,
        Some(Err(_)) => return error(400, "bad index"),
    };
    let wait = match query_param(&query, "wait") {
        None => None,
        Some(w) => match parse_duration(w) {
            Some(d) => Some(d.min(api.config.max_wait)),
            None => return error(400, format!("bad wait {w:?}: use e.g. 5s, 500ms")),
        },
    };
    if let Some(wait) = wait.filter(|_| query_param(&query, "index").is_some()) {
        let Ok(_slot) = api.parked.clone().try_acquire_owned() else {
            return error(429, "too many blocking queries wait");
        };
        let mut last = api.handle.last_event();
        let _ = tokio::time::timeout(wait, last.wait_for(|&i| i > index)).await;
    }
    match api.handle.events_after(index).await {
        Ok(list) => {
            let newest = list.last().map_or(index, |r| r.index);
            let mut response = reply(200, &Value::Array(list.iter().map(event_json).collect()));
            response
                .headers_mut()
                .insert("x-gossiper-index", HeaderValue::from(newest));
            response
        }
        Err(e) => agent_error(e),
    }
}

async fn send_event(
    State(api): Shared,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    if let Err((status, message)) = check_token(request.headers(), &api.config) {
        return error(status, message);
    }
    let coalesce = query
        .as_deref()
        .and_then(|q| query_param(q, "coalesce"))
        .is_some_and(|v| v != "false");
    let body = Limited::new(request.into_body(), MAX_BODY);
    let payload = match tokio::time::timeout(api.config.body_timeout, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes().to_vec(),
        Ok(Err(_)) => return error(413, format!("payload over {MAX_BODY} bytes")),
        Err(_) => return error(408, "body not sent in time"),
    };
    match api.handle.user_event(&name, payload, coalesce).await {
        Ok(ltime) => reply(200, &json!({ "name": name, "ltime": ltime })),
        Err(e) => agent_error(e),
    }
}
