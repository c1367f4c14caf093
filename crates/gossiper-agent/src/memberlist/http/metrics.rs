//! `GET /metrics` of a memberlist agent, in Prometheus text: the node's counters (what came in,
//! what was refused, queries, relays, key changes), Lifeguard's local health score (memberlist's
//! `memberlist.health.score` gauge) and the members by Serf status.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use gossiper_memberlist::SerfStatus;

use super::{Api, agent_error};

pub(super) async fn metrics(State(api): State<Arc<Api>>) -> Response {
    let (s, score, members) = match api.handle.snapshot().await {
        Ok(v) => v,
        Err(e) => return agent_error(e),
    };
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let name = format!("gossiper_memberlist_{name}_total");
        crate::http::metrics::write_counter(&mut out, &name, help, v);
    };
    counter("datagrams", "Datagrams received.", s.datagrams);
    counter("bad_datagrams", "Datagrams dropped whole.", s.bad_datagrams);
    counter(
        "bad_messages",
        "Messages in datagrams that did not decode.",
        s.bad_messages,
    );
    counter(
        "decrypt_failures",
        "Datagrams or streams no key opened.",
        s.decrypt_failures,
    );
    counter("streams", "Streams answered.", s.streams);
    counter("bad_streams", "Streams refused.", s.bad_streams);
    counter("bad_serf", "Serf messages that did not decode.", s.bad_serf);
    counter(
        "conflicts",
        "Alives refused for a conflicting address.",
        s.conflicts,
    );
    counter("refutes", "Accusations about this node refuted.", s.refutes);
    counter(
        "table_full",
        "Nodes not admitted: the table was full.",
        s.table_full,
    );
    counter("nacks", "Nacks received for this node's probes.", s.nacks);
    counter(
        "degraded_probes",
        "Probes run on a period stretched by the health score.",
        s.degraded_probes,
    );
    counter(
        "query_answers",
        "Queries answered beyond the ack.",
        s.query_answers,
    );
    counter(
        "query_answers_too_large",
        "Answers not sent: over Serf's response size limit.",
        s.query_answers_too_large,
    );
    counter(
        "bad_filters",
        "Queries not acted on: a filter that could not be read or compiled.",
        s.bad_filters,
    );
    counter(
        "relays_sent",
        "Acks and answers relayed through other members.",
        s.relays_sent,
    );
    counter(
        "relays_forwarded",
        "Relayed responses passed on to their destination.",
        s.relays_forwarded,
    );
    counter("relays_refused", "Relays dropped.", s.relays_refused);
    counter(
        "relay_factor_capped",
        "Queries whose relay factor was cut.",
        s.relay_factor_capped,
    );
    counter(
        "query_acks",
        "Acks collected for this node's queries.",
        s.query_acks,
    );
    counter(
        "query_responses",
        "Answers collected for this node's queries.",
        s.query_responses,
    );
    counter(
        "stray_responses",
        "Acks and answers for no open query of this node.",
        s.stray_responses,
    );
    counter(
        "key_changes",
        "Keyring changes made by key queries.",
        s.key_changes,
    );
    counter(
        "key_changes_refused",
        "Key queries refused.",
        s.key_changes_refused,
    );
    counter(
        "query_stream_drops",
        "Streamed query replies left out: their reader was behind.",
        api.handle.stream_drops(),
    );
    let _ = writeln!(
        out,
        "# HELP gossiper_memberlist_health_score Lifeguard's local health: 0 healthy, higher stretches probe timing (memberlist.health.score).\n\
         # TYPE gossiper_memberlist_health_score gauge\ngossiper_memberlist_health_score {score}\n\
         # HELP gossiper_memberlist_members Members by Serf status, this node included.\n\
         # TYPE gossiper_memberlist_members gauge"
    );
    for st in [
        SerfStatus::Alive,
        SerfStatus::Leaving,
        SerfStatus::Left,
        SerfStatus::Failed,
    ] {
        let n = members.iter().filter(|m| m.status == st).count();
        let _ = writeln!(
            out,
            "gossiper_memberlist_members{{status=\"{}\"}} {n}",
            st.as_str()
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
