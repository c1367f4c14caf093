//! The gossip engine, and the runtimes that drive it.
//!
//! The Go demo's `Gossip` function slept, picked a neighbour and swapped state. Here that logic is
//! a *sans-IO* state machine, [`Node`]: it is handed the time, incoming datagrams and write
//! commands, and it hands back datagrams to send (written into a caller-owned [`Outbox`]), the
//! next deadline ([`Node::poll_timeout`]) and [`Event`]s. It owns no socket, thread or clock, so
//! the same engine runs under the threaded demo runtime ([`runtime::threaded`]), the
//! deterministic simulator and the UDP agent, and is tested once, by hand, on virtual time:
//!
//! ```
//! use gossiper_network::{FixedInterval, UniformRandom};
//! use gossiper_node::{Mode, Node, NodeConfig, Outbox, Peers};
//! use gossiper_types::{NodeId, Register, Time};
//! use std::time::Duration;
//!
//! let config = NodeConfig { mode: Mode::PushPull, ..NodeConfig::default() };
//! let every = FixedInterval::new(Duration::from_millis(100)).unwrap();
//! let mut a = Node::new(NodeId(0), config, Register::<u64>::new(), UniformRandom, every, 1);
//! let mut b = Node::new(NodeId(1), config, Register::<u64>::new(), UniformRandom, every, 2);
//! a.set_peers(Peers::Complete { n: 2 });
//! b.set_peers(Peers::Complete { n: 2 });
//!
//! let mut out = Outbox::new();
//! a.write(Time::ZERO, &mut out, |s| s.set(NodeId(0), 42));
//! out.clear();
//! a.gossip_now(Time::ZERO, &mut out); // a -> b: Syn(digest)
//!
//! // Deliver by hand until nobody has anything to say.
//! let (mut inbox, mut next) = (out, Outbox::new());
//! while !inbox.is_empty() {
//!     for (to, bytes) in inbox.iter() {
//!         let node = if to == NodeId(0) { &mut a } else { &mut b };
//!         let from = if to == NodeId(0) { NodeId(1) } else { NodeId(0) };
//!         node.handle_message(Time::ZERO, from, bytes, &mut next).unwrap();
//!     }
//!     inbox.clear();
//!     std::mem::swap(&mut inbox, &mut next);
//! }
//! assert_eq!(b.state().value(), Some(&42));
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod config;
mod engine;
mod event;
mod outbox;
pub mod rumor;
pub mod runtime;
mod stats;

#[cfg(test)]
mod scenarios;

pub use config::{ConfigError, Mode, NodeConfig, SharedConfig};
pub use engine::{DropReason, Node, Peers};
pub use event::Event;
pub use outbox::{Datagram, Outbox};
pub use rumor::{Feedback, LossOfInterest, Protocol, RumorConfig, RumorDirection, RumorReading};
pub use stats::{Count, Counters, DropCounts, NoStats, Stats};
