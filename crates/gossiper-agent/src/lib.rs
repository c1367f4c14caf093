//! The gossiper agent as a library: the sans-IO cluster protocol of `gossiper-cluster` run on
//! tokio, with an in-process handle and an optional HTTP API.
//!
//! * [`AgentBuilder`] takes a [`ClusterConfig`](gossiper_cluster::ClusterConfig) and,
//!   optionally, a UDP socket the caller bound; [`start`](AgentBuilder::start) spawns one task
//!   that owns the node, the socket and the clock (see [`engine`]).
//! * [`AgentHandle`] (cheap to clone) is how everything else talks to it: `set`, `get`,
//!   `delete`, `members`, a [`membership`](AgentHandle::membership) watch, key-change
//!   [`subscribe`](AgentHandle::subscribe)ptions filtered by node and key prefix, and a graceful
//!   [`shutdown`](AgentHandle::shutdown).
//! * [`http`] (the `http` cargo feature, on by default): the HTTP/JSON API on axum/hyper,
//!   a client of the handle like any other, with limits on everything a client sends.
//! * [`udp`]: a blocking UDP [`Transport`](gossiper_network::Transport) for the threaded
//!   runtimes (it passes the same conformance suite as the in-memory one).
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod builder;
#[cfg(feature = "http")]
pub mod client;
pub mod engine;
mod error;
mod events;
mod handle;
#[cfg(feature = "http")]
pub mod http;
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
