//! What a table shows of each node, and which nodes a table shows.

use gossiper_node::Stats;
use gossiper_types::{KvMap, NodeId};
use serde::Serialize;

use super::args::Format;
use super::plan::{DemoNode, ScheduledWrite};

/// A text table shows at most this many nodes (evenly spaced ids, the first and last included),
/// so that it fits an 80×40 terminal. Each shown node costs one state copy; copying all of them
/// for every table is what made the demo at 1,000 nodes balloon.
pub(super) const MAX_ROWS: usize = 16;

/// One node's row in a printed table.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Row {
    pub(super) id: u64,
    /// Live keys held.
    pub(super) keys: usize,
    /// Sum over owners of the highest version held: grows with every write learned.
    pub(super) versions: u64,
    /// A short hash of the node's digest: equal fingerprints, (almost surely) equal states.
    pub(super) fingerprint: String,
    /// The newest scheduled write this node holds, if any.
    pub(super) newest: Option<String>,
    pub(super) rounds: u64,
    pub(super) messages_sent: u64,
}

/// FNV-1a over every entry of the state (owner, key, version, tombstone flag, value), folded to
/// 32 bits: equal fingerprints mean (almost surely) equal states, whatever the digests say.
pub(super) fn fingerprint(state: &KvMap) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for owner in state.owners() {
        eat(&owner.0.to_le_bytes());
        eat(&state.max_version(owner).to_le_bytes());
        for (key, entry) in state.entries(owner) {
            eat(&(key.len() as u64).to_le_bytes());
            eat(key.as_bytes());
            eat(&entry.version.to_le_bytes());
            eat(&[u8::from(entry.deleted)]);
            eat(&(entry.value.len() as u64).to_le_bytes());
            eat(&entry.value);
        }
    }
    format!("{:08x}", (h ^ (h >> 32)) as u32)
}

pub(super) fn row(id: NodeId, state: &KvMap, stats: &Stats, writes: &[ScheduledWrite]) -> Row {
    let newest = writes
        .iter()
        .rev()
        .find(|w| state.get(NodeId(w.node), &w.key).is_some())
        .map(|w| w.key.clone());
    Row {
        id: id.0,
        keys: state.len(),
        versions: state.total_versions(),
        fingerprint: fingerprint(state),
        newest,
        rounds: stats.rounds,
        messages_sent: stats.messages_sent,
    }
}

pub(super) fn rows_of_nodes(nodes: &[DemoNode], writes: &[ScheduledWrite]) -> Vec<Row> {
    nodes
        .iter()
        .map(|n| row(n.id(), n.state(), n.stats(), writes))
        .collect()
}

/// How many different states the rows show (1 once converged).
pub(super) fn distinct_states(rows: &[Row]) -> usize {
    let mut seen: Vec<&str> = rows.iter().map(|r| r.fingerprint.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// What one table shows: its rows, the totals over every node, and how many distinct states
/// the rows hold.
pub(super) struct View {
    pub(super) rows: Vec<Row>,
    pub(super) totals: Stats,
    /// Distinct states among the `counted` nodes.
    pub(super) distinct: usize,
    /// How many nodes `distinct` looked at: all of them, or the shown sample of a live table.
    pub(super) counted: usize,
    /// Nodes in the cluster (more than `rows` when the table shows a sample).
    pub(super) nodes: usize,
}

impl View {
    /// A view of every node's row, shown whole (JSON) or sampled (text, above `MAX_ROWS`); the
    /// distinct states are counted over every row.
    pub(super) fn of(rows: Vec<Row>, totals: Stats, format: Format) -> View {
        let nodes = rows.len();
        let distinct = distinct_states(&rows);
        let rows = match format {
            Format::Json => rows,
            Format::Text => shown(nodes)
                .into_iter()
                .filter_map(|i| rows.get(i).cloned())
                .collect(),
        };
        View {
            rows,
            totals,
            distinct,
            counted: nodes,
            nodes,
        }
    }
}

/// The nodes a text table shows: all of them up to `MAX_ROWS`, else `MAX_ROWS` evenly spaced
/// indices from the first to the last.
pub(super) fn shown(nodes: usize) -> Vec<usize> {
    if nodes <= MAX_ROWS {
        return (0..nodes).collect();
    }
    (0..MAX_ROWS)
        .map(|k| k * (nodes - 1) / (MAX_ROWS - 1))
        .collect()
}
