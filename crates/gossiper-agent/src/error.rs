//! Why an agent could not start, or why a request to it failed: one error type for the
//! library, with the underlying cause kept as its source.

use std::net::SocketAddr;

use gossiper_cluster::WriteError;

/// Why an agent could not start, or why a call on its handle failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The gossip socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The socket failed in another way.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// [`AgentBuilder::start`](crate::AgentBuilder::start) was called outside a tokio runtime.
    #[error("the agent must be started inside a tokio runtime")]
    NoRuntime,
    /// A value is larger than the agent's configured limit
    /// ([`AgentBuilder::max_value_bytes`](crate::AgentBuilder::max_value_bytes)).
    #[error("value of {len} bytes is over this agent's limit of {max} bytes (max-value-bytes)")]
    ValueTooLarge {
        /// The value's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A write was refused by the protocol: a bad key (empty, too long, or reserved).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The agent is leaving or has stopped: it takes no more requests.
    #[error("the agent has stopped")]
    Stopped,
}
