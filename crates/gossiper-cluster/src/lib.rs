//! A real cluster's protocol, sans-IO: membership, failure detection, replicated key-value
//! state and the sealed datagram envelope, above the gossip engine and using only its API.
//!
//! - **Membership and liveness** ([`Swim`], the default [`Detector`]): each probe period a node
//!   pings one member, in a shuffled round-robin; a member that answers neither directly nor
//!   through `k` helpers becomes *suspect*, and *dead* when a suspicion timeout ends that
//!   independent confirmations shorten (Lifeguard); a node's own missed acks stretch its
//!   timeouts; a suspected member refutes by raising its incarnation. Changes ride on probe
//!   traffic, so a node's cost does not grow with the cluster. The other choice,
//!   [`Detector::Phi`], gossips a heartbeat in every digest and judges it with a φ-accrual
//!   detector ([`PhiDetector`]), whose cost grows with N.
//! - **Key-value state** ([`ClusterState`], reconciled by the ordinary
//!   [`Node`](gossiper_node::Node) engine): per-node versioned keys with generations,
//!   tombstones and TTLs, Scuttlebutt style. Fresh writes are pushed at once; anti-entropy
//!   opens with two 8-byte fingerprints (state and live membership), so replicas in sync pay 16
//!   bytes per exchange whatever N is, and a digest is exchanged only on a mismatch.
//! - **The envelope** ([`wire`]): magic, version, cluster hash, sender and generation,
//!   optionally sealed with a keyring (XChaCha20-Poly1305).
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
pub mod replay;
pub mod state;
pub mod swim;
pub mod wire;

#[cfg(test)]
mod tests;

/// Pops the front of a queue, and gives a drained queue's capacity back: a burst (a restore,
/// a join storm) must not leave every one of 10,000 simulated nodes holding its peak.
pub(crate) fn pop_releasing<T>(q: &mut std::collections::VecDeque<T>) -> Option<T> {
    let front = q.pop_front();
    if front.is_none() && q.capacity() > 64 {
        *q = std::collections::VecDeque::new();
    }
    front
}

pub use node::{
    ClusterConfig, ClusterEvent, ClusterNode, ClusterStats, Detector, DropCounts, MemberInfo,
    MemberStatus, StatusCounts, Transmit,
};
pub use phi::PhiDetector;
pub use state::{ClusterDigest, ClusterEntry, ClusterState, NodeRecord, WriteError};
pub use swim::{KnownMember, LocalMember, Swim, SwimConfig, SwimMember, SwimStats};
pub use wire::{Codec, DropReason, Keyring};
