//! `GET /metrics`: the node's, the runtime's and the API server's counters in Prometheus text.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gossiper_cluster::state::RESERVED_PREFIX;
use gossiper_cluster::{DropReason, MemberStatus};

use super::Api;
use crate::MemberEventKind;

/// Appends one Prometheus counter, its HELP and TYPE lines first. Both agents' `/metrics`
/// write their counters through this.
pub(crate) fn write_counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

pub(crate) async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let snapshot = api
        .handle
        .inspect(|node, _| {
            let keys: usize = node
                .state()
                .nodes()
                .map(|(_, r)| {
                    r.entries()
                        .filter(|(k, e)| !e.deleted && !k.starts_with(RESERVED_PREFIX))
                        .count()
                })
                .sum();
            (
                node.stats().clone(),
                node.status_counts(),
                node.changes(),
                keys,
            )
        })
        .await;
    let Ok((s, counts, changes, keys)) = snapshot else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "agent is stopping\n",
        )
            .into_response();
    };
    let runtime = api.handle.counters();
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| write_counter(&mut out, name, help, v);
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
        "gossiper_key_events_total",
        "Key changes published to subscribers.",
        runtime.key_events,
    );
    counter(
        "gossiper_send_errors_total",
        "Datagrams the OS refused to send.",
        runtime.send_errors,
    );
    counter(
        "gossiper_recv_errors_total",
        "Socket receive errors.",
        runtime.recv_errors,
    );
    let c = &api.counters;
    counter(
        "gossiper_api_connections_total",
        "API connections accepted.",
        c.accepted.load(Ordering::Relaxed),
    );
    counter(
        "gossiper_api_connections_refused_total",
        "API connections closed at accept: the connection limit was reached.",
        c.refused.load(Ordering::Relaxed),
    );
    counter(
        "gossiper_api_heap_trims_total",
        "Times the allocator gave memory back to the system after API connections closed.",
        c.trims.load(Ordering::Relaxed),
    );
    counter(
        "gossiper_api_rejected_total",
        "API requests refused for a limit or a rule (408, 413, 421, 429, 401, 403).",
        c.rejected.load(Ordering::Relaxed),
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
    for kind in MemberEventKind::ALL {
        let _ = writeln!(
            out,
            "gossiper_member_events_total{{event=\"{}\"}} {}",
            kind.label(),
            runtime.member_events[kind as usize]
        );
    }
    let _ = writeln!(
        out,
        "# HELP gossiper_members Members by status, this node included.\n# TYPE gossiper_members gauge"
    );
    for st in MemberStatus::ALL {
        let _ = writeln!(
            out,
            "gossiper_members{{status=\"{}\"}} {}",
            st.name(),
            counts.get(st)
        );
    }
    let parked = api.config.max_parked - api.parked.available_permits();
    let _ = writeln!(
        out,
        "# HELP gossiper_keys Live user keys held, all nodes.\n# TYPE gossiper_keys gauge\ngossiper_keys {keys}\n\
         # HELP gossiper_api_connections_open API connections open.\n# TYPE gossiper_api_connections_open gauge\n\
         gossiper_api_connections_open {}\n\
         # HELP gossiper_api_parked Blocking queries and event streams waiting.\n# TYPE gossiper_api_parked gauge\n\
         gossiper_api_parked {parked}",
        c.open.load(Ordering::Relaxed)
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
