//! What one run will hold in memory, estimated before anything is allocated.
//!
//! A run of 10^8 nodes needs tens of gigabytes; without an estimate the first sign is an
//! allocation failure (or the kernel's OOM killer) minutes in. The estimate counts the few
//! things that grow with the node count, per node: the engine itself, the simulator's two
//! per-node fields, the neighbour lists of an explicit topology, and the messages of one
//! delivery phase (in the synchronous model the outboxes the engines write a phase into, the
//! same phase routed into receiver order, and a counter per node;
//! in-flight slots and heap events in the asynchronous one). Measured against peak RSS at 10^5 and 10^6 nodes (`docs/benchmarks.md`)
//! it errs on the high side by about 10%.

use gossiper_network::Topology;

use crate::config::SimConfig;
use crate::replica::Replica;
use crate::sim::SimNode;

/// Bytes one message occupies in an outbox: its 16-byte datagram record, the 4-byte sender the
/// simulator notes beside it, and the payload, about 32 bytes for the largest message of a
/// `Register<u64>` exchange.
pub const MESSAGE_BYTES: u64 = 16 + 4 + 32;

/// Bytes one message occupies once routed: its 16-byte item in its sending lane's bucket, the
/// same item in receiver order, the byte that says how many copies a faulty network let
/// through, and the payload again.
pub const ROUTED_BYTES: u64 = 16 + 16 + 1 + 32;

/// The mean number of neighbours a node has in `topology` over `n` nodes (0 for the complete
/// graph, which is implicit).
pub fn mean_degree(topology: Topology, n: usize) -> f64 {
    match topology {
        Topology::Complete => 0.0,
        Topology::Ring | Topology::Star => 2.0,
        Topology::Grid => 4.0,
        Topology::RandomRegular { degree } => degree as f64,
        Topology::ErdosRenyi { p } => p * (n.saturating_sub(1)) as f64,
        Topology::WattsStrogatz { k, .. } => k as f64,
        Topology::BarabasiAlbert { m } => 2.0 * m as f64,
    }
}

/// The estimated peak bytes of one run of `config` with replica type `S`.
pub fn run_bytes<S: Replica>(config: &SimConfig) -> u64 {
    let n = config.nodes as f64;
    let engine = std::mem::size_of::<SimNode<S>>() as f64;
    // The liveness flag and the round the node learned the update.
    let bookkeeping = (std::mem::size_of::<bool>() + std::mem::size_of::<f32>()) as f64;
    // Neighbour ids, once in the graph and once in the node's own list, each list with a
    // vector header.
    let degree = mean_degree(config.topology, config.nodes);
    let lists = if degree > 0.0 {
        2.0 * (24.0 + 8.0 * degree)
    } else {
        0.0
    };
    // The outboxes of the answers, the phase being delivered (routed, in receiver order), and
    // the grouping's counter per node.
    let per_message = (MESSAGE_BYTES + ROUTED_BYTES) as f64;
    let messages = f64::from(config.fanout.max(1)) * per_message;
    let grouping = std::mem::size_of::<u32>() as f64;
    (n * (engine + bookkeeping + lists + messages + grouping)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossiper_types::Register;

    #[test]
    fn estimates_grow_with_nodes_fanout_and_degree() {
        let base = SimConfig {
            nodes: 1_000_000,
            ..SimConfig::default()
        };
        let b = run_bytes::<Register<u64>>(&base);
        // About 400 bytes a node: between the engine alone and twice that.
        let engine = std::mem::size_of::<SimNode<Register<u64>>>() as u64;
        assert!(b > engine * 1_000_000 && b < 2 * engine * 1_000_000, "{b}");
        let ten = SimConfig {
            nodes: 10_000_000,
            ..base.clone()
        };
        assert!(run_bytes::<Register<u64>>(&ten) > 9 * b);
        let wide = SimConfig {
            fanout: 3,
            ..base.clone()
        };
        assert!(run_bytes::<Register<u64>>(&wide) > b);
        let regular = SimConfig {
            topology: Topology::RandomRegular { degree: 8 },
            ..base
        };
        assert!(run_bytes::<Register<u64>>(&regular) > b + 100 * 1_000_000);
    }
}
