//! The queries a node asks (Serf's `Query`, serf 0.9.4 `serf/serf.go` L506-576 and
//! `serf/query.go`): what to ask and whom ([`QueryParams`]), and what came back by the
//! deadline ([`QueryResult`]). [`Node::query`](crate::Node::query) sends one;
//! [`Event::QueryFinished`](crate::Event::QueryFinished) hands back its result, and a
//! streamed query ([`QueryParams::stream`]) hands back each ack and answer as it comes too
//! ([`Event::QueryReply`](crate::Event::QueryReply)).

use std::time::Duration;

use crate::filter::{Filter, FilterError, compile};
use crate::query::INTERNAL_PREFIX;

/// Serf's `QuerySizeLimit`: the largest query, encoded.
pub const QUERY_SIZE_LIMIT: usize = 1024;
/// Serf's `QueryTimeoutMult`: the default timeout is this × gossip interval × ⌈log10(n+1)⌉.
pub const QUERY_TIMEOUT_MULT: u32 = 16;
/// Longest a query may stay open here, whatever the caller asks.
pub const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(600);
/// Queries of ours open at once at most.
pub const MAX_OPEN_QUERIES: usize = 64;

/// What to ask, and whom (Serf's `QueryParam`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// The query's name (not one of Serf's own `_serf_` names).
    pub name: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Only these nodes answer (`serf query -node`); empty: no node filter.
    pub nodes: Vec<String>,
    /// Only nodes whose tag matches the regular expression answer (`-tag key=regexp`).
    pub tags: Vec<(String, String)>,
    /// Ask every node that passes the filters for an ack (`serf query`'s default).
    pub ack: bool,
    /// Each answer is also relayed through this many other members (`-relay-factor`).
    pub relay_factor: u8,
    /// How long to collect answers; `None`: Serf's default for the cluster's size. At most
    /// [`MAX_QUERY_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// Hand back each ack and answer as it arrives ([`Event::QueryReply`](crate::Event::QueryReply)),
    /// besides the whole result at the end.
    pub stream: bool,
}

impl QueryParams {
    /// A query named `name` with `payload`, asking for acks, no filters, no relays.
    pub fn new(name: impl Into<String>, payload: impl Into<Vec<u8>>) -> QueryParams {
        QueryParams {
            name: name.into(),
            payload: payload.into(),
            ack: true,
            ..QueryParams::default()
        }
    }

    /// The filters on the wire, checked: every tag expression must compile here, and the
    /// name must not be one of Serf's own.
    pub(crate) fn filters(&self) -> Result<Vec<Vec<u8>>, String> {
        if self.name.starts_with(INTERNAL_PREFIX) {
            return Err(format!(
                "query {:?}: names starting with {INTERNAL_PREFIX} are Serf's own",
                self.name
            ));
        }
        let mut out = Vec::new();
        if !self.nodes.is_empty() {
            out.push(Filter::Nodes(self.nodes.clone()).encode());
        }
        for (tag, expr) in &self.tags {
            compile(expr).map_err(|e: FilterError| format!("tag filter {tag}={expr}: {e}"))?;
            out.push(
                Filter::Tag {
                    tag: tag.clone(),
                    expr: expr.clone(),
                }
                .encode(),
            );
        }
        Ok(out)
    }
}

/// What came back for a query by its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// The query's name.
    pub name: String,
    /// Its query-clock time.
    pub ltime: u64,
    /// Its id (with `ltime`, what names it on the wire).
    pub id: u32,
    /// Whether acks were asked for.
    pub ack_requested: bool,
    /// Who acknowledged, in arrival order, each once.
    pub acks: Vec<String>,
    /// Who answered and with what, in arrival order, each once.
    pub responses: Vec<(String, Vec<u8>)>,
}

/// One ack or answer to a streamed query of ours, as it arrived (kept in the result too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryReply {
    /// The query's query-clock time.
    pub ltime: u64,
    /// Its id.
    pub id: u32,
    /// Who sent it.
    pub from: String,
    /// The answer's payload; `None` for an ack.
    pub payload: Option<Vec<u8>>,
}

/// A query asked with [`Node::key_query`](crate::Node::key_query): what names it, and how
/// many members it was asked of (the answers a [`KeyReport`](crate::key_query::KeyReport)
/// waits for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AskedQuery {
    /// Its query-clock time.
    pub ltime: u64,
    /// Its id.
    pub id: u32,
    /// Members memberlist counted when it left (not dead or left, this node included).
    pub members: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_before_anything_is_sent() {
        let mut p = QueryParams::new("uptime", b"".to_vec());
        assert_eq!(p.filters(), Ok(vec![]));
        p.nodes = vec!["g1".into()];
        p.tags = vec![("role".into(), "^ru".into())];
        let f = p.filters().unwrap();
        assert_eq!((f.len(), f[0][0], f[1][0]), (2, 0, 1));
        p.tags.push(("dc".into(), "(".into()));
        assert!(p.filters().unwrap_err().contains("dc=("));
        let internal = QueryParams::new("_serf_ping", vec![]);
        assert!(internal.filters().unwrap_err().contains("Serf's own"));
    }
}
