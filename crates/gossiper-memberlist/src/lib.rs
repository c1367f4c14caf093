//! HashiCorp memberlist 0.2.2 and Serf 0.9.4, sans-IO: what a gossiper node needs to join a
//! real Serf cluster and be listed as one of its own (see `docs/memberlist.md`).
//!
//! * the codec: [`msgpack`] in go-msgpack's shapes, [`messages`] (memberlist's bodies),
//!   [`packet`] (compound, CRC, compression, streams), [`lzw`], [`serf_wire`] (tags, intents,
//!   user events, push-pull state), [`crypto`] (AES-GCM and Serf's keyring);
//! * the state machine: [`Node`] (memberlist's SWIM rules, probes with Lifeguard's local
//!   health ([`awareness`]), gossip, push-pull, with Serf's member statuses, intents, user
//!   events, queries with their [`filter`]s and relays, and key rotation on top), configured by
//!   [`Config`]; the queries it asks are in [`outgoing`], the key rotations it asks of the
//!   cluster in [`key_query`].
//!
//! Like `gossiper-cluster`, nothing here reads a clock, opens a socket, spawns a thread or
//! draws randomness from the OS (`clippy.toml` enforces it): the runtime hands in time,
//! datagrams and stream bytes, and takes out datagrams, streams to open, deadlines and events.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod awareness;
pub mod config;
pub mod crypto;
pub mod filter;
pub mod key_query;
pub mod lzw;
pub mod messages;
pub mod msgpack;
mod node;
pub mod outgoing;
pub mod packet;
pub mod query;
pub mod queue;
mod serf;
pub mod serf_wire;

pub use config::{Config, Timing};
pub use crypto::Keyring;
pub use key_query::{KeyCommand, KeyReport};
pub use node::{Event, MAX_RELAY_FACTOR, Member, Node, Stats, StreamRequest, Transmit, VSN, ip_of};
pub use outgoing::{AskedQuery, QueryParams, QueryReply, QueryResult};
pub use serf::{Clock, SerfStatus, UserEvent};
