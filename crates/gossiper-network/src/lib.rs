//! Who to talk to, when, and how the bytes get there.
//!
//! This crate mirrors the Go demo's `network` package. `SelectRandomNeighbor` becomes the
//! [`NeighborSelector`] trait and `GossipInterval` the [`GossipInterval`] trait, each with
//! built-ins; the neighbour lists that the demo wired by hand come from the [`topology`]
//! builders; and [`Transport`] moves encoded messages between nodes.
//!
//! Strategies receive the node's RNG as a `&mut dyn Rng`, so the same seed always gives the same
//! choices, and a user's own strategy plugs in without touching this crate:
//!
//! ```
//! use gossiper_network::{Neighbors, NeighborSelector, UniformRandom};
//! use gossiper_types::NodeId;
//! use rand::SeedableRng;
//!
//! let peers = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
//! let mut picks = Vec::new();
//! UniformRandom.select(NodeId(0), &Neighbors::List(&peers), 2, &mut rng, &mut picks);
//! assert_eq!(picks.len(), 2);
//! assert_ne!(picks[0], picks[1]);
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod interval;
mod neighbors;
pub mod selector;
pub mod topology;
pub mod transport;

pub use interval::{ExponentialInterval, FixedInterval, GossipInterval, JitterInterval};
pub use neighbors::Neighbors;
pub use selector::{LeastRecentlyContacted, NeighborSelector, ShuffledRoundRobin, UniformRandom};
pub use topology::{Topology, TopologyError};
pub use transport::{InMemoryNetwork, InMemoryTransport, Transport, TransportError};
