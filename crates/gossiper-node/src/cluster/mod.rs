//! A real cluster's protocol, sans-IO: replicated per-node key-value state with generations,
//! heartbeats and tombstones ([`ClusterState`], reconciled by the ordinary [`Node`](crate::Node)
//! engine), membership with a φ-accrual failure detector ([`ClusterNode`]), and the versioned,
//! optionally sealed datagram envelope ([`wire`]).
//!
//! The UDP agent (`gossiper-agent`) drives a [`ClusterNode`] with a socket and a clock; tests
//! and the simulator drive it with virtual time:
//!
//! ```
//! use gossiper_node::cluster::{ClusterConfig, ClusterNode, MemberStatus};
//! use gossiper_types::Time;
//!
//! let addr_a = "127.0.0.1:7001".parse().unwrap();
//! let addr_b = "127.0.0.1:7002".parse().unwrap();
//! let mut a = ClusterNode::new(ClusterConfig::new("a", addr_a, 1), Time::ZERO, 1).unwrap();
//! let mut cfg = ClusterConfig::new("b", addr_b, 1);
//! cfg.seeds = vec![addr_a];
//! let mut b = ClusterNode::new(cfg, Time::ZERO, 2).unwrap();
//! a.set(Time::ZERO, "colour", b"blue", None).unwrap();
//!
//! // Run both for two seconds of virtual time, delivering every datagram at once.
//! let mut now = Time::ZERO;
//! while now < Time::from_millis(2_000) {
//!     for (me, other, other_addr) in [(&mut a, &mut b, addr_b), (&mut b, &mut a, addr_a)] {
//!         me.handle_timeout(now);
//!         let from = me.config().addr;
//!         while let Some(mut t) = me.poll_transmit() {
//!             assert_eq!(t.to, other_addr);
//!             let _ = other.handle_datagram(now, from, &mut t.bytes);
//!         }
//!     }
//!     now = now + std::time::Duration::from_millis(10);
//! }
//! let a_id = a.id();
//! assert_eq!(b.state().node(a_id).unwrap().get("colour").unwrap().value, b"blue");
//! assert!(b.members(now).iter().all(|m| m.status == MemberStatus::Alive));
//! ```

mod node;
pub mod phi;
pub mod state;
pub mod wire;

#[cfg(test)]
mod tests;

pub use node::{
    ClusterConfig, ClusterEvent, ClusterNode, ClusterStats, MemberInfo, MemberStatus, Transmit,
};
pub use phi::PhiDetector;
pub use state::{ClusterDigest, ClusterEntry, ClusterState, NodeRecord, WriteError};
pub use wire::{Codec, DropReason, Keyring};
