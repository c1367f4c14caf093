//! What the engine tells its runtime about, besides datagrams to send.

use gossiper_types::NodeId;

/// Something the application may want to react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The state changed: by a local write (`from` = the node itself) or by merging what `from`
    /// sent.
    StateChanged {
        /// Who caused the change.
        from: NodeId,
    },
}
