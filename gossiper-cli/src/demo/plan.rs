//! Everything decided before the first thread starts: the graph, the write schedule and the
//! nodes, all derived from `--seed`.

use gossiper_network::topology::Graph;
use gossiper_network::{GossipInterval, NeighborSelector, Topology};
use gossiper_node::{Node, NodeConfig, Peers};
use gossiper_types::seed::{mix, split};
use gossiper_types::{KvMap, NodeId};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::Serialize;

use super::args::DemoArgs;
use super::strategies::Strategies;
use crate::CliError;

/// Largest datagram, in bytes: the engine's default, safe under an Ethernet MTU.
pub(super) const MTU: u32 = 1_400;

/// Writes are injected during the first this-many milliseconds (or half of `--max-duration`,
/// if that is shorter).
pub(super) const WRITE_WINDOW_MS: u64 = 1_000;

/// The RNG seed of node `id` under `--seed seed`: every node gets its own stream.
pub fn node_seed(seed: u64, id: NodeId) -> u64 {
    split(seed, mix(id.0.wrapping_add(1)))
}

/// Seeds of the demo's own streams, apart from the nodes'.
pub(super) const TOPOLOGY_STREAM: u64 = 0x746f_706f_6c6f_6779; // "topology"
pub(super) const WRITES_STREAM: u64 = 0x7772_6974_6573_0000; // "writes"

/// One scheduled application write.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ScheduledWrite {
    /// When, in milliseconds after the cluster started.
    pub(super) at_ms: u64,
    /// The writing node (and owner of the key).
    pub(super) node: u64,
    /// The key written.
    pub(super) key: String,
}

/// Draws `count` writes at random nodes and times in `[0, window_ms)`, in time order.
pub(super) fn schedule_writes(
    count: u32,
    nodes: usize,
    window_ms: u64,
    seed: u64,
) -> Vec<ScheduledWrite> {
    let mut rng = Pcg64Mcg::seed_from_u64(split(seed, WRITES_STREAM));
    let mut times: Vec<(u64, u64)> = (0..count)
        .map(|_| {
            (
                rng.random_range(0..window_ms.max(1)),
                rng.random_range(0..nodes as u64),
            )
        })
        .collect();
    times.sort_by_key(|&(at, _)| at);
    times
        .into_iter()
        .enumerate()
        .map(|(w, (at_ms, node))| ScheduledWrite {
            at_ms,
            node,
            key: format!("write-{w}"),
        })
        .collect()
}

/// The engine the demo runs: a key-value map, strategies chosen at run time.
pub(super) type DemoNode = Node<KvMap, Box<dyn NeighborSelector>, Box<dyn GossipInterval>>;

/// Everything decided before the first thread starts.
pub(super) struct Plan {
    pub(super) graph: Graph,
    pub(super) topology: Topology,
    pub(super) writes: Vec<ScheduledWrite>,
    pub(super) nodes: Vec<DemoNode>,
    pub(super) selector_name: &'static str,
    pub(super) interval_name: String,
}

/// Checks the flags and builds the graph, the schedule and the nodes.
pub(super) fn plan(args: &DemoArgs, strategies: &Strategies) -> Result<Plan, CliError> {
    args.validate()?;
    let topology = args.topology();
    let mut topo_rng = Pcg64Mcg::seed_from_u64(split(args.seed, TOPOLOGY_STREAM));
    let graph = topology
        .build(args.nodes, &mut topo_rng)
        .map_err(|e| CliError::usage(format!("--topology {topology}: {e}")))?;
    if !graph.is_connected() {
        return Err(CliError::usage(format!(
            "--topology {topology} is disconnected: some nodes could never hear the others"
        )));
    }
    if args.fanout as usize > graph.min_degree() {
        return Err(CliError::usage(format!(
            "--fanout {} exceeds the smallest degree ({}) of {topology}; lower --fanout or pick \
             a denser topology",
            args.fanout,
            graph.min_degree()
        )));
    }
    let config = NodeConfig {
        mode: args.mode.into(),
        fanout: args.fanout,
        max_message_bytes: MTU,
        // A write is pushed to `fanout` peers at once; rounds then carry it the rest of the way.
        push_on_write: true,
        ..NodeConfig::default()
    };
    config
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let window_ms = WRITE_WINDOW_MS.min((args.max_duration * 500.0) as u64);
    let writes = schedule_writes(args.writes, args.nodes, window_ms, args.seed);

    let mut nodes = Vec::with_capacity(args.nodes);
    let (mut selector_name, mut interval_name) = ("", String::new());
    for i in 0..args.nodes as u64 {
        let id = NodeId(i);
        let selector = strategies.selector(id, args)?;
        let interval = strategies.interval(id, args)?;
        if i == 0 {
            // Reported in the header; a factory may still hand other nodes other strategies.
            selector_name = selector.name();
            interval_name = interval.describe();
        }
        let mut state = KvMap::new();
        state.set(
            id,
            &format!("node-{i}"),
            format!("hello from {i}").into_bytes(),
        );
        let mut node = Node::new(
            id,
            config,
            state,
            selector,
            interval,
            node_seed(args.seed, id),
        );
        node.set_peers(match topology {
            Topology::Complete => Peers::Complete {
                n: args.nodes as u64,
            },
            _ => Peers::List(graph.neighbors(id).to_vec()),
        });
        nodes.push(node);
    }
    Ok(Plan {
        graph,
        topology,
        writes,
        nodes,
        selector_name,
        interval_name,
    })
}
