//! The gossiper agent: the sans-IO cluster protocol of `gossiper-node` driven by a UDP socket
//! and a real clock, with an HTTP/JSON control API.
//!
//! * [`udp`] — the UDP [`Transport`](gossiper_network::Transport) (it passes the same
//!   conformance suite as the in-memory one) and address-level send/receive for the agent.
//! * [`Agent`] — one socket, one [`ClusterNode`](gossiper_cluster::ClusterNode), one
//!   gossip thread, one API thread, and one thread that answers every parked blocking query
//!   (not a thread per query). Every input to the protocol goes through one lock.
//! * [`client`] — a tiny HTTP client for the API, used by the CLI and the benchmark.
//!
//! The API: `GET /v1/members`, `GET /v1/state`, `PUT|DELETE /v1/kv/KEY` (optional `?ttl=30s`),
//! `GET /v1/kv/NODE/KEY` (with `?index=V&wait=5s` a blocking query that answers as soon as the
//! key's version exceeds `V`), `GET /metrics` (Prometheus text).
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod agent;
pub mod client;
mod http;
pub mod udp;

pub use agent::{Agent, AgentConfig, AgentError};
pub use http::{parse_duration, percent_decode};
pub use udp::UdpTransport;
