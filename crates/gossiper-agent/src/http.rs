//! The HTTP/JSON control API: members, state, key-value reads and writes (with Consul-style
//! blocking queries) and Prometheus metrics. Bad requests get a 4xx and a JSON error; nothing a
//! client sends can stop the agent.

use std::fmt::Write as _;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gossiper_cluster::state::RESERVED_PREFIX;
use gossiper_cluster::{ClusterNode, DropReason, MemberStatus, WriteError};
use gossiper_types::NodeId;
use parking_lot::{Mutex, MutexGuard};
use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::agent::Shared;

/// Longest blocking query accepted.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Blocking queries waiting at once; more get 429.
const MAX_BLOCKING: usize = 256;
/// Largest request body read.
const MAX_BODY: usize = 64 * 1024;

type Reply = (u16, String, &'static str);

fn json_reply(status: u16, v: &Value) -> Reply {
    (status, v.to_string(), "application/json")
}

fn error(status: u16, message: impl Into<String>) -> Reply {
    json_reply(status, &json!({ "error": message.into() }))
}

/// A blocking query waiting for its key to change: answered by the waiter thread.
struct Parked {
    request: Request,
    node_name: String,
    id: NodeId,
    key: String,
    index: u64,
    deadline: Instant,
}

/// Blocking queries in wait. Pushed to only while holding the node lock, so the waiter (which
/// scans and waits on `Shared::changed` under that lock) never misses a wake-up.
#[derive(Default)]
struct Waiting {
    parked: Mutex<Vec<Parked>>,
    /// Set when the API stops: the waiter answers what is left and exits.
    done: AtomicBool,
}

/// Serves requests until the server is unblocked (when the agent stops).
///
/// One thread (this one) reads every request and answers all but blocking queries that must
/// wait; those are parked for one waiter thread, which answers each when its key changes or its
/// wait ends. So a burst of blocking queries costs a list entry each, not a thread each (a
/// thread per query left a cached stack and often a malloc arena behind, ~20 KiB of RSS each).
pub(crate) fn serve(shared: &Arc<Shared>, server: &Server) {
    let waiting = Arc::new(Waiting::default());
    let waiter = {
        let (shared, waiting) = (shared.clone(), waiting.clone());
        std::thread::Builder::new()
            .name("api-wait".into())
            .stack_size(128 * 1024)
            .spawn(move || wait_loop(&shared, &waiting))
    };
    if waiter.is_err() {
        log::warn!("cannot spawn the blocking-query thread: blocking queries answer at once");
        waiting.done.store(true, Ordering::SeqCst);
    }
    for request in server.incoming_requests() {
        handle(shared, &waiting, request);
    }
    {
        let _node = shared.node.lock();
        waiting.done.store(true, Ordering::SeqCst);
    }
    shared.changed.notify_all();
    if let Ok(w) = waiter {
        let _ = w.join();
    }
}

/// The waiter: answers parked queries whose key passed their index, whose wait ran out, or all
/// of them when the agent stops.
fn wait_loop(shared: &Shared, waiting: &Waiting) {
    let mut node = shared.node.lock();
    loop {
        let now = Instant::now();
        let stopping = shared.stop.load(Ordering::SeqCst) || waiting.done.load(Ordering::SeqCst);
        let mut answer = Vec::new();
        let next_deadline = {
            let mut parked = waiting.parked.lock();
            let mut i = 0;
            while i < parked.len() {
                let p = &parked[i];
                let version = node
                    .state()
                    .node(p.id)
                    .and_then(|r| r.entry(&p.key))
                    .map_or(0, |e| e.version);
                if version > p.index || now >= p.deadline || stopping {
                    let p = parked.swap_remove(i);
                    let reply = kv_reply(&node, &p.node_name, p.id, &p.key);
                    answer.push((p.request, reply));
                } else {
                    i += 1;
                }
            }
            parked.iter().map(|p| p.deadline).min()
        };
        if !answer.is_empty() {
            // Write the replies without the lock, then look again: what changed meanwhile
            // was not waited for.
            MutexGuard::unlocked(&mut node, || {
                for (request, reply) in answer {
                    respond(request, reply);
                }
            });
            continue;
        }
        if waiting.done.load(Ordering::SeqCst) {
            return;
        }
        match next_deadline {
            Some(d) => {
                shared.changed.wait_until(&mut node, d);
            }
            None => shared.changed.wait(&mut node),
        }
    }
}

fn respond(request: Request, (status, body, content_type): Reply) {
    let mut response = Response::from_string(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        response = response.with_header(h);
    }
    let _ = request.respond(response);
}

fn handle(shared: &Shared, waiting: &Waiting, mut request: Request) {
    let method = request.method().clone();
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let segments: Vec<String> = match path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect::<Option<Vec<_>>>()
    {
        Some(s) => s,
        None => return respond(request, error(400, "bad percent-encoding in path")),
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let reply = match (&method, segs.as_slice()) {
        (Method::Get, ["v1", "members"]) => members(shared),
        (Method::Get, ["v1", "state"]) => state(shared),
        (Method::Get, ["metrics"]) => metrics(shared),
        (Method::Put, ["v1", "kv", key]) => {
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body);
            match read {
                Err(e) => error(400, format!("cannot read body: {e}")),
                Ok(_) if body.len() > MAX_BODY => error(413, "body too large"),
                Ok(_) => put(shared, key, &body, query),
            }
        }
        (Method::Delete, ["v1", "kv", key]) => delete(shared, key),
        (Method::Get, ["v1", "kv", node, key]) => match get(shared, waiting, node, key, query) {
            Get::Reply(r) => r,
            Get::Park(p) => {
                // Checked and parked under the node lock: the waiter cannot miss a change.
                let _node = shared.node.lock();
                let mut parked = waiting.parked.lock();
                if waiting.done.load(Ordering::SeqCst) {
                    error(503, "agent is stopping")
                } else if parked.len() >= MAX_BLOCKING {
                    error(429, "too many blocking queries")
                } else {
                    parked.push(p.with(request));
                    drop(parked);
                    shared.changed.notify_all();
                    return;
                }
            }
        },
        (_, ["v1", "members"] | ["v1", "state"] | ["metrics"] | ["v1", "kv", ..]) => {
            error(405, format!("method {method} not allowed on {path}"))
        }
        _ => error(404, format!("no such endpoint: {path}")),
    };
    respond(request, reply);
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

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn members(shared: &Shared) -> Reply {
    let node = shared.node.lock();
    let now = shared.now();
    let list: Vec<Value> = node
        .members(now)
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
    json_reply(200, &Value::Array(list))
}

fn state(shared: &Shared) -> Reply {
    let node = shared.node.lock();
    let mut all = serde_json::Map::new();
    for (id, rec) in node.state().nodes() {
        let mut keys = serde_json::Map::new();
        for (k, e) in rec.entries() {
            if e.deleted || k.starts_with(RESERVED_PREFIX) {
                continue;
            }
            keys.insert(
                k.to_owned(),
                json!({ "value": String::from_utf8_lossy(&e.value), "version": e.version }),
            );
        }
        let name = node
            .member_name(id)
            .map_or_else(|| id.to_string(), str::to_owned);
        all.insert(name, Value::Object(keys));
    }
    json_reply(200, &Value::Object(all))
}

fn write_error(e: WriteError) -> Reply {
    match e {
        WriteError::BadKey(_) => error(400, e.to_string()),
        WriteError::ValueTooLarge { .. } => error(413, e.to_string()),
        WriteError::VersionsExhausted => error(409, e.to_string()),
    }
}

fn put(shared: &Shared, key: &str, body: &[u8], query: &str) -> Reply {
    let ttl = match query_param(query, "ttl") {
        None => None,
        Some(t) => match parse_duration(t) {
            Some(d) if !d.is_zero() => Some(d),
            _ => return error(400, format!("bad ttl {t:?}: use e.g. 30s, 500ms, 5m")),
        },
    };
    let mut node = shared.node.lock();
    if node.has_left() {
        return error(503, "agent is leaving");
    }
    let now = shared.now();
    let result = node.set(now, key, body, ttl);
    shared.flush(&mut node);
    drop(node);
    shared.changed.notify_all();
    match result {
        Ok(version) => json_reply(200, &json!({ "key": key, "version": version })),
        Err(e) => write_error(e),
    }
}

fn delete(shared: &Shared, key: &str) -> Reply {
    let mut node = shared.node.lock();
    let now = shared.now();
    let result = node.delete(now, key);
    shared.flush(&mut node);
    drop(node);
    shared.changed.notify_all();
    match result {
        Ok(Some(version)) => json_reply(200, &json!({ "key": key, "version": version })),
        Ok(None) => error(404, format!("no key {key:?} on this node")),
        Err(e) => write_error(e),
    }
}

/// What a `GET /v1/kv/NODE/KEY` comes to: a reply now, or a blocking query to park.
enum Get {
    Reply(Reply),
    Park(ToPark),
}

/// A blocking query before it has its request.
struct ToPark {
    node_name: String,
    id: NodeId,
    key: String,
    index: u64,
    deadline: Instant,
}

impl ToPark {
    fn with(self, request: Request) -> Parked {
        Parked {
            request,
            node_name: self.node_name,
            id: self.id,
            key: self.key,
            index: self.index,
            deadline: self.deadline,
        }
    }
}

fn get(shared: &Shared, waiting: &Waiting, node_name: &str, key: &str, query: &str) -> Get {
    let index = match query_param(query, "index") {
        None => None,
        Some(i) => match i.parse::<u64>() {
            Ok(i) => Some(i),
            Err(_) => return Get::Reply(error(400, format!("bad index {i:?}"))),
        },
    };
    let wait = match query_param(query, "wait") {
        None => Duration::from_secs(300),
        Some(w) => match parse_duration(w) {
            Some(d) => d.min(MAX_WAIT),
            None => {
                return Get::Reply(error(
                    400,
                    format!("bad wait {w:?}: use e.g. 5s, 500ms, 1m"),
                ));
            }
        },
    };
    let id = NodeId::from_name(node_name);
    let deadline = Instant::now() + wait;
    let node = shared.node.lock();
    let version = node
        .state()
        .node(id)
        .and_then(|r| r.entry(key))
        .map_or(0, |e| e.version);
    match index {
        Some(index)
            if version <= index
                && Instant::now() < deadline
                && !shared.stop.load(Ordering::SeqCst)
                && !waiting.done.load(Ordering::SeqCst) =>
        {
            Get::Park(ToPark {
                node_name: node_name.to_owned(),
                id,
                key: key.to_owned(),
                index,
                deadline,
            })
        }
        _ => Get::Reply(kv_reply(&node, node_name, id, key)),
    }
}

/// The current value of `key` on node `id` (200), or 404 with the version it had.
fn kv_reply(node: &ClusterNode, node_name: &str, id: NodeId, key: &str) -> Reply {
    let entry = node.state().node(id).and_then(|r| r.entry(key));
    let version = entry.map_or(0, |e| e.version);
    match entry {
        Some(e) if !e.deleted => json_reply(
            200,
            &json!({
                "node": node_name,
                "key": key,
                "value": String::from_utf8_lossy(&e.value),
                "version": e.version,
            }),
        ),
        _ => json_reply(
            404,
            &json!({
                "error": format!("no key {key:?} on node {node_name:?}"),
                "version": version,
            }),
        ),
    }
}

fn metrics(shared: &Shared) -> Reply {
    let node = shared.node.lock();
    let s = node.stats().clone();
    let counts = node.status_counts();
    let keys: usize = node
        .state()
        .nodes()
        .map(|(_, r)| {
            r.entries()
                .filter(|(k, e)| !e.deleted && !k.starts_with(RESERVED_PREFIX))
                .count()
        })
        .sum();
    let changes = node.changes();
    drop(node);
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        "gossiper_packets_in_total",
        "Datagrams received.",
        s.packets_in,
    );
    counter("gossiper_bytes_in_total", "Bytes received.", s.bytes_in);
    counter(
        "gossiper_packets_out_total",
        "Datagrams sent.",
        s.packets_out,
    );
    counter("gossiper_bytes_out_total", "Bytes sent.", s.bytes_out);
    counter(
        "gossiper_gossip_rounds_total",
        "Gossip rounds started.",
        s.rounds,
    );
    counter(
        "gossiper_forwarded_total",
        "Fresh writes forwarded to further peers.",
        s.forwarded,
    );
    counter(
        "gossiper_no_route_total",
        "Messages with no known address.",
        s.no_route,
    );
    counter(
        "gossiper_state_changes_total",
        "Changes to the replicated state.",
        changes,
    );
    counter(
        "gossiper_send_errors_total",
        "Datagrams the OS refused to send.",
        shared.send_errors.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP gossiper_dropped_packets_total Datagrams dropped, by reason.\n# TYPE gossiper_dropped_packets_total counter"
    );
    for r in DropReason::ALL {
        let _ = writeln!(
            out,
            "gossiper_dropped_packets_total{{reason=\"{}\"}} {}",
            r.label(),
            s.dropped(r)
        );
    }
    let _ = writeln!(
        out,
        "# HELP gossiper_member_events_total Membership changes seen.\n# TYPE gossiper_member_events_total counter"
    );
    for (i, event) in ["up", "suspect", "down", "left", "removed"]
        .iter()
        .enumerate()
    {
        let _ = writeln!(
            out,
            "gossiper_member_events_total{{event=\"{event}\"}} {}",
            shared.member_events[i].load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP gossiper_members Members by status, this node included.\n# TYPE gossiper_members gauge"
    );
    for (st, n) in MemberStatus::ALL.iter().map(|&st| (st, counts.get(st))) {
        let _ = writeln!(out, "gossiper_members{{status=\"{}\"}} {n}", st.name());
    }
    let _ = writeln!(
        out,
        "# HELP gossiper_keys Live user keys held, all nodes.\n# TYPE gossiper_keys gauge\ngossiper_keys {keys}"
    );
    (200, out, "text/plain; version=0.0.4")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_escapes_parse() {
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
        assert_eq!(query_param("index", "index"), Some(""));
    }
}
