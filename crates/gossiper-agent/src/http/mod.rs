//! The HTTP/JSON API (the `http` feature): a client of [`AgentHandle`] like any embedding
//! application, served by hyper on the agent's tokio runtime.
//!
//! No client can stall it, exhaust it or kill it; every limit is an [`HttpConfig`] field:
//!
//! * connections: at most `max_connections` at once; one over that is closed at accept;
//! * request heads: at most `max_header_bytes` (else 431), read within `header_timeout`, which
//!   also closes a keep-alive connection idle that long;
//! * replies: a write that makes no progress for `write_timeout` (a client that asked and
//!   does not read) closes the connection (`write_timeout`);
//! * bodies: `Content-Length` checked against the value limit before anything is read (413),
//!   the body read within `body_timeout` (408), chunked bodies cut at the limit (413);
//! * blocking queries and event streams: at most `max_parked` at once (429), each slot freed
//!   when its client disconnects (hyper drops the handler's future);
//! * `Host` must name the bound address or `localhost` (421), so a browser page on another
//!   name cannot reach the API through DNS rebinding;
//! * with a token set, writes need `Authorization: Bearer TOKEN` (401, 403).
//!
//! Routes and their replies are in `routes`, the `Host` and token checks in `guard`, the
//! Prometheus text in `metrics`, the cluster view's page (`GET /ui/`) in `ui`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::AgentHandle;

pub(crate) mod guard;
pub(crate) mod metrics;
mod routes;
pub(crate) mod ui;
pub(crate) mod values;
pub(crate) mod write_timeout;

pub use values::{parse_duration, percent_decode};

/// Limits and options of the HTTP API.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// When set, `PUT` and `DELETE` need `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Host names accepted in `Host` besides `localhost` and the bound IP.
    pub allowed_hosts: Vec<String>,
    /// Connections served at once (default 1,024).
    pub max_connections: usize,
    /// Blocking queries and event streams waiting at once (default 256).
    pub max_parked: usize,
    /// Largest request head, request line included (default 8 KiB).
    pub max_header_bytes: usize,
    /// Time to send a request head, and longest idle time between requests (default 10 s).
    pub header_timeout: Duration,
    /// Time to send a request body (default 10 s).
    pub body_timeout: Duration,
    /// Longest time a reply may wait for the client to read it before the connection is
    /// closed (default 10 s); it runs only while a write waits.
    pub write_timeout: Duration,
    /// Longest wait of a blocking query (default 600 s); `wait` is clamped to it.
    pub max_wait: Duration,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            token: None,
            allowed_hosts: Vec::new(),
            max_connections: 1_024,
            max_parked: 256,
            max_header_bytes: 8 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_wait: Duration::from_secs(600),
        }
    }
}

/// The API server's own counters, shown by `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ApiCounters {
    /// Connections open now.
    pub(crate) open: AtomicU64,
    /// Connections accepted, ever.
    pub(crate) accepted: AtomicU64,
    /// Connections closed at accept because `max_connections` were open.
    pub(crate) refused: AtomicU64,
    /// Requests answered with a 4xx for breaking a limit or a rule (413, 408, 421, 429, ...).
    pub(crate) rejected: AtomicU64,
    /// A heap trim is scheduled (see [`schedule_heap_trim`]).
    pub(crate) trim_pending: AtomicBool,
    /// When a connection last closed, for the trim's quiet period.
    pub(crate) last_close: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// Heap trims that gave memory back to the system.
    pub(crate) trims: AtomicU64,
}

/// The heap is trimmed once no connection has closed for this long: giving memory back while
/// requests keep coming would only have the allocator take it again (and each trim walks the
/// whole heap, about 0.2 ms).
const TRIM_QUIET: Duration = Duration::from_secs(1);
/// A steady stream of connections still gets its trim this long after the first close.
const TRIM_AT_LATEST: Duration = Duration::from_secs(10);

/// After a connection closes, asks the allocator to give back what the connections freed
/// (see `crate::heap`): once the API has been quiet for [`TRIM_QUIET`], at the latest
/// [`TRIM_AT_LATEST`] after the first close since the last trim.
fn schedule_heap_trim(api: &Arc<Api>) {
    let now = tokio::time::Instant::now();
    *api.counters
        .last_close
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(now);
    if api.counters.trim_pending.swap(true, Ordering::AcqRel) {
        return;
    }
    let api = api.clone();
    tokio::spawn(async move {
        let latest = now + TRIM_AT_LATEST;
        loop {
            let last = api
                .counters
                .last_close
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(now);
            let at = (last + TRIM_QUIET).min(latest);
            if tokio::time::Instant::now() >= at {
                break;
            }
            tokio::time::sleep_until(at).await;
        }
        api.counters.trim_pending.store(false, Ordering::Release);
        if crate::heap::release_free_memory() {
            api.counters.trims.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Everything a request handler needs.
pub(crate) struct Api {
    pub(crate) handle: AgentHandle,
    pub(crate) config: HttpConfig,
    pub(crate) local: SocketAddr,
    pub(crate) parked: Arc<Semaphore>,
    pub(crate) counters: ApiCounters,
}

/// Serves the API on `listener` until the agent stops; then lets open requests finish (parked
/// queries answer, event streams end) for up to a second and closes every connection.
pub async fn serve(
    handle: AgentHandle,
    listener: TcpListener,
    config: HttpConfig,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() && config.token.is_none() {
        log::warn!(
            "the HTTP API on {local} is reachable off this host and anyone there can write: \
             set a token (--api-token-file) or bind it to loopback"
        );
    }
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_header_size(config.max_header_bytes)
        // Bodies are small (one value): no reason to buffer more than this per connection.
        .max_buf_size(8 * 1024)
        .writev(false);
    let api = Arc::new(Api {
        parked: Arc::new(Semaphore::new(config.max_parked)),
        handle: handle.clone(),
        config,
        local,
        counters: ApiCounters::default(),
    });
    let app = routes::router(api.clone());
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = handle.stopped() => break,
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off rather than spin.
                        log::warn!("API accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = connections.clone().try_acquire_owned() else {
                    api.counters.refused.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                api.counters.accepted.fetch_add(1, Ordering::Relaxed);
                let service = TowerToHyperService::new(app.clone());
                let stream = write_timeout::WriteTimeout::new(stream, api.config.write_timeout);
                let connection = http.serve_connection(TokioIo::new(stream), service);
                let (api, handle) = (api.clone(), handle.clone());
                tasks.spawn(async move {
                    api.counters.open.fetch_add(1, Ordering::Relaxed);
                    let mut connection = std::pin::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        () = handle.stopped() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                    api.counters.open.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                    schedule_heap_trim(&api);
                });
            }
            // Reap finished connections so the set stays as small as the open ones.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        tasks.shutdown().await;
    }
    Ok(())
}
