//! A real cluster's protocol, sans-IO: replicated per-node key-value state with generations,
//! heartbeats and tombstones ([`ClusterState`], reconciled by the ordinary [`Node`](gossiper_node::Node)
//! engine), membership with a φ-accrual failure detector ([`ClusterNode`]), and the versioned,
//! optionally sealed datagram envelope ([`wire`]).
//!
//! The UDP agent (`gossiper-agent`) drives a [`ClusterNode`] with a socket and a clock; tests
//! and the simulator drive it with virtual time:
//!
//! ```
//! use gossiper_cluster::{ClusterConfig, ClusterNode, MemberStatus};
//! use gossiper_types::Time;
//! use std::net::SocketAddr;
//!
//! let addrs: [SocketAddr; 2] = ["127.0.0.1:7001".parse().unwrap(), "127.0.0.1:7002".parse().unwrap()];
//! let mut b_config = ClusterConfig::new("b", addrs[1], 1);
//! b_config.seeds = vec![addrs[0]];
//! let mut nodes = [
//!     ClusterNode::new(ClusterConfig::new("a", addrs[0], 1), Time::ZERO, 1).unwrap(),
//!     ClusterNode::new(b_config, Time::ZERO, 2).unwrap(),
//! ];
//! nodes[0].set(Time::ZERO, "colour", b"blue", None).unwrap();
//!
//! // Two seconds of virtual time, every datagram delivered at once.
//! let mut now = Time::ZERO;
//! while now < Time::from_millis(2_000) {
//!     for i in 0..2 {
//!         nodes[i].handle_timeout(now);
//!         while let Some(mut t) = nodes[i].poll_transmit() {
//!             let to = addrs.iter().position(|&a| a == t.to).unwrap();
//!             let _ = nodes[to].handle_datagram(now, addrs[i], &mut t.bytes);
//!         }
//!     }
//!     now = now + std::time::Duration::from_millis(10);
//! }
//! let a = nodes[0].id();
//! assert_eq!(nodes[1].state().node(a).unwrap().get("colour").unwrap().value, b"blue");
//! assert!(nodes[1].members(now).iter().all(|m| m.status == MemberStatus::Alive));
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod node;
pub mod phi;
pub mod state;
pub mod swim;
pub mod wire;

#[cfg(test)]
mod tests;

pub use node::{
    ClusterConfig, ClusterEvent, ClusterNode, ClusterStats, Detector, DropCounts, MemberInfo,
    MemberStatus, Transmit,
};
pub use phi::PhiDetector;
pub use state::{ClusterDigest, ClusterEntry, ClusterState, NodeRecord, WriteError};
pub use swim::{LocalMember, Swim, SwimConfig, SwimMember, SwimStats};
pub use wire::{Codec, DropReason, Keyring};
