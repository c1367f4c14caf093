//! HashiCorp memberlist 0.2.2 and Serf 0.9.4, sans-IO: what a gossiper node needs to join a
//! real Serf cluster and be listed as one of its own (see `docs/memberlist.md`).
//!
//! * the codec: [`msgpack`] in go-msgpack's shapes, [`messages`] (memberlist's bodies),
//!   [`packet`] (compound, CRC, compression, streams), [`lzw`], [`serf_wire`] (tags, intents,
//!   user events, push-pull state);
//!
//! Like `gossiper-cluster`, nothing here reads a clock, opens a socket, spawns a thread or
//! draws randomness from the OS (`clippy.toml` enforces it): the runtime hands in time,
//! datagrams and stream bytes, and takes out datagrams, streams to open, deadlines and events.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod lzw;
pub mod messages;
pub mod msgpack;
pub mod packet;
pub mod serf_wire;
