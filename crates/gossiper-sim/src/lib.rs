//! A deterministic laboratory for gossip protocols, driving the production engine.
//!
//! Gossip protocols are probabilistic: you pick one by measuring it. This crate runs the real
//! [`gossiper_node::Node`] (not a model of it) by the million, on virtual time, with one master
//! seed behind every node's RNG and every fault, so the same seed and configuration always give
//! the same numbers. It offers:
//!
//! - two timing models ([`Timing`]): synchronous rounds, the random phone-call model of the
//!   theory (every node acts once per round against the state at the round's start, and
//!   messages are delivered in phases: openings, then replies, then closings), and asynchronous
//!   timers with message latency;
//! - a faulty network ([`Faults`]): loss, latency (fixed, uniform, exponential), duplication,
//!   reordering, partitions scheduled in time, crashes with restart (state kept or lost), churn;
//! - an invariant checker: no version goes backwards, no node holds a value nobody wrote, and
//!   after the faults stop every live node converges (for protocols that promise it);
//! - the measures of Demers et al. (residue, traffic, t_ave, t_last) plus rounds to convergence,
//!   messages, bytes, duplicates and the informed-fraction curve ([`RunReport`]), and their
//!   mean, spread and range over many runs spread across cores ([`run_many`], [`Summary`];
//!   [`run_each`] keeps failed runs beside the others), one run's synchronous rounds spread over
//!   threads with the same report whatever their number ([`run_threaded`]);
//! - an estimate of a run's memory before it starts ([`memory`]);
//! - the closed forms to compare them with ([`theory`]), and the published tables of Demers et
//!   al. (1987) with the configurations that re-run them ([`paper`]);
//! - the cluster protocol (`ClusterNode`: membership, failure detection, generations) on the
//!   same network model, with its own measures ([`cluster`]).
//!
//! ```
//! use gossiper_node::Mode;
//! use gossiper_sim::{SimConfig, run};
//! use gossiper_types::Register;
//!
//! let config = SimConfig { nodes: 500, mode: Mode::PushPull, ..SimConfig::default() };
//! let report = run::<Register<u64>>(&config, 7).unwrap();
//! assert!(report.converged);
//! assert_eq!(report.residue, 0.0);
//! // Same seed, same run.
//! assert_eq!(run::<Register<u64>>(&config, 7).unwrap(), report);
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod cluster;
pub mod config;
pub mod floor;
pub mod memory;
pub mod metrics;
mod net;
pub mod paper;
pub mod replica;
pub mod runner;
pub mod sim;
pub mod theory;

pub use config::{
    Churn, ConfigError, Crash, Faults, Latency, NodeSet, Partition, SimConfig, SimInterval, Timing,
};
pub use metrics::{RunReport, Stat, Summary};
pub use replica::{Observed, Replica};
pub use runner::{
    default_threads, run_each, run_each_register, run_indexed, run_indexed_each, run_many, run_seed,
};
pub use sim::{SimError, SimNode, Violation, run, run_threaded};
