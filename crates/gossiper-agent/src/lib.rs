//! The gossiper agent as a library: the sans-IO cluster protocol of `gossiper-cluster` run on
//! tokio, with an in-process handle and an optional HTTP API.
//!
//! * [`AgentBuilder`] takes a [`ClusterConfig`](gossiper_cluster::ClusterConfig) and,
//!   optionally, a UDP socket the caller bound; [`start`](AgentBuilder::start) spawns one task
//!   that owns the node, the socket and the clock (the `engine` module).
//! * [`AgentHandle`] (cheap to clone) is how everything else talks to it: `set`, `get`,
//!   `delete`, `members`, a [`membership`](AgentHandle::membership) watch, key-change
//!   [`subscribe`](AgentHandle::subscribe)ptions filtered by node and key prefix, and a graceful
//!   [`shutdown`](AgentHandle::shutdown).
//! * [`http`] (the `http` cargo feature, on by default): the HTTP/JSON API on axum/hyper,
//!   a client of the handle like any other, with limits on everything a client sends.
//! * [`udp`]: a blocking UDP [`Transport`](gossiper_network::Transport) for the threaded
//!   runtimes (it passes the same conformance suite as the in-memory one).
//!
//! Embedding two nodes in one program (a service runs one per process, the same way):
//!
//! ```
//! use std::time::Duration;
//! use gossiper_agent::{AgentBuilder, KeyFilter};
//! use gossiper_cluster::{ClusterConfig, MemberStatus};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Port 0: a free port, which peers are told. Generation 0: the wall clock's.
//! let a = AgentBuilder::new(ClusterConfig::new("a", "127.0.0.1:0".parse()?, 0)).start().await?;
//! let mut config = ClusterConfig::new("b", "127.0.0.1:0".parse()?, 0);
//! config.seeds = vec![a.gossip_addr()];
//! let b = AgentBuilder::new(config).start().await?;
//!
//! // b hears of every key a writes under "svc/".
//! let mut changes = b.subscribe(KeyFilter::prefix("svc/").on_node("a"));
//! a.set("svc/web", "10.0.0.7:80").await?;
//! let change = tokio::time::timeout(Duration::from_secs(10), changes.recv()).await??;
//! assert_eq!((change.key.as_str(), change.value.as_deref()), ("svc/web", Some(&b"10.0.0.7:80"[..])));
//! assert_eq!(b.get("a", "svc/web").await?.as_deref(), Some(&b"10.0.0.7:80"[..]));
//!
//! // a leaves gracefully: b's membership watch shows it as left, not dead.
//! a.shutdown().await;
//! let mut members = b.membership();
//! let left = members.wait_for(|m| m.iter().any(|m| m.name == "a" && m.status == MemberStatus::Left));
//! tokio::time::timeout(Duration::from_secs(10), left).await??;
//! b.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod builder;
#[cfg(feature = "http")]
pub mod client;
mod engine;
mod error;
mod events;
mod handle;
#[cfg(feature = "http")]
mod heap;
#[cfg(feature = "http")]
pub mod http;
pub mod memberlist;
mod ratelog;
mod resolver;
pub mod udp;

pub use builder::{AgentBuilder, DEFAULT_MAX_VALUE_BYTES};
pub use error::AgentError;
pub use events::{
    Entry, Event, EventStream, KeyEvent, KeyFilter, MemberEvent, MemberEventKind, RecvError,
    Subscription,
};
pub use handle::{AgentHandle, AgentInfo, RuntimeCounters};
#[cfg(feature = "http")]
pub use http::{parse_duration, percent_decode};
pub use udp::UdpTransport;
