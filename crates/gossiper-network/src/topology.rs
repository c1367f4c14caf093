//! Topology builders: the neighbour lists the Go demo wired by hand.
//!
//! (Being written: see the builders below.)

use std::fmt;

use gossiper_types::NodeId;
use rand::Rng;

/// A graph shape to wire nodes `0..n` in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Topology {
    /// Everyone is everyone's neighbour.
    Complete,
    /// Node i is linked to i-1 and i+1 (mod n).
    Ring,
    /// Node 0 is linked to everyone else; nobody else is linked.
    Star,
    /// A square-ish grid, each node linked to its up/down/left/right neighbours.
    Grid,
    /// Every node has exactly `degree` neighbours, chosen at random.
    RandomRegular {
        /// Neighbours per node.
        degree: usize,
    },
    /// Each pair is linked independently with probability `p` (Erdős–Rényi G(n, p)).
    ErdosRenyi {
        /// Link probability.
        p: f64,
    },
    /// A ring lattice of even degree `k`, each link rewired with probability `beta`.
    WattsStrogatz {
        /// Lattice degree (even).
        k: usize,
        /// Rewiring probability.
        beta: f64,
    },
    /// Preferential attachment: each new node links to `m` existing ones.
    BarabasiAlbert {
        /// Links per new node.
        m: usize,
    },
}

/// Why a topology could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum TopologyError {
    /// A parameter is out of range.
    BadParameter(String),
    /// Every attempt produced a disconnected graph.
    Disconnected {
        /// How many seeds were tried.
        attempts: u32,
    },
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologyError::BadParameter(why) => f.write_str(why),
            TopologyError::Disconnected { attempts } => {
                write!(
                    f,
                    "topology is disconnected after {attempts} attempts; raise its density"
                )
            }
        }
    }
}

impl std::error::Error for TopologyError {}

/// An undirected graph over nodes `0..n`, as sorted adjacency lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    adjacency: Vec<Vec<NodeId>>,
}

impl Graph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.adjacency.len()
    }
    /// True for the empty graph.
    pub fn is_empty(&self) -> bool {
        self.adjacency.is_empty()
    }
    /// The sorted neighbours of `id`.
    pub fn neighbors(&self, id: NodeId) -> &[NodeId] {
        &self.adjacency[id.index()]
    }
}

impl Topology {
    /// Builds the graph for `n` nodes.
    pub fn build(&self, n: usize, _rng: &mut dyn Rng) -> Result<Graph, TopologyError> {
        let _ = n;
        Err(TopologyError::BadParameter("not yet".into()))
    }
}
