//! The vocabulary every other gossiper crate speaks.
//!
//! This crate mirrors the Go demo's `types` package: who a node is ([`NodeId`], [`Node`]), what it
//! gossips (the [`State`] trait and the built-in [`Register`] and [`KvMap`]), how states are
//! summarised and reconciled ([`State::Digest`], deltas), what travels on the wire ([`Message`]) and
//! how it is encoded ([`codec`]). It owns no clocks, threads, sockets or randomness: [`Time`] is a
//! value handed in by whoever drives the protocol.
//!
//! ```
//! use gossiper_types::{KvMap, NodeId, State};
//!
//! let mut a = KvMap::new();
//! a.set(NodeId(1), "colour", b"blue".to_vec());
//! let mut b = KvMap::new();
//! b.set(NodeId(2), "shape", b"round".to_vec());
//!
//! // Anti-entropy by digest and delta: b tells a what it has, a answers with what b lacks.
//! let mut digest = Default::default();
//! b.digest_into(&mut digest);
//! let mut delta = Vec::new();
//! a.write_delta(&digest, 1_400, 0, &mut delta);
//! assert!(b.apply_delta(&delta).unwrap());
//! assert_eq!(b.get(NodeId(1), "colour").unwrap().value, b"blue");
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod codec;
mod error;
mod id;
pub mod kv;
mod message;
pub mod register;
pub mod seed;
mod state;
mod time;

pub use error::DecodeError;
pub use id::{Node, NodeId};
pub use kv::{KvDigest, KvEntry, KvMap};
pub use message::{Message, MessageKind};
pub use register::{Register, RegisterDigest};
pub use state::State;
pub use time::Time;
