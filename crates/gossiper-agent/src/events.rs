//! What an agent tells its embedder as things happen: membership changes and key changes, and
//! the filtered subscription to the latter (chitchat's `subscribe_event`, as a stream you pull).
//!
//! Every event goes out once on one bounded broadcast channel. A subscriber that falls more
//! than the channel's capacity behind loses the oldest events and is told how many
//! ([`RecvError::Lagged`]); it never slows the agent down.

use gossiper_cluster::ClusterEvent;
use gossiper_types::NodeId;
use tokio::sync::broadcast;

/// A key's value as one replica holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The owner's write counter at this write (1, 2, 3, ...).
    pub version: u64,
    /// The value's bytes; `None` for a deleted key (a tombstone).
    pub value: Option<Vec<u8>>,
}

/// A key written or deleted somewhere in the cluster (this node included), as it reached this
/// node. Reserved keys (`__name`, `__addr`, ...) are not reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// The owner's id.
    pub id: NodeId,
    /// The owner's name (its id in text while its name is not known yet).
    pub node: String,
    /// The key.
    pub key: String,
    /// The new value; `None` when the key was deleted (or its TTL ran out).
    pub value: Option<Vec<u8>>,
    /// The owner's version of this write.
    pub version: u64,
}

/// The kinds of membership change, in a fixed order (the order of [`MemberEventKind::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberEventKind {
    /// A node joined, restarted with a new generation, or came back.
    Up,
    /// A node became suspect.
    Suspect,
    /// A node was declared dead.
    Down,
    /// A node left gracefully.
    Left,
    /// A dead or departed node was forgotten.
    Removed,
}

impl MemberEventKind {
    /// Every kind, in order.
    pub const ALL: [MemberEventKind; 5] = [
        MemberEventKind::Up,
        MemberEventKind::Suspect,
        MemberEventKind::Down,
        MemberEventKind::Left,
        MemberEventKind::Removed,
    ];

    /// `up`, `suspect`, `down`, `left` or `removed` (metrics labels, SSE payloads).
    pub fn label(self) -> &'static str {
        match self {
            MemberEventKind::Up => "up",
            MemberEventKind::Suspect => "suspect",
            MemberEventKind::Down => "down",
            MemberEventKind::Left => "left",
            MemberEventKind::Removed => "removed",
        }
    }

    /// The kind and the node of a protocol event.
    pub fn of(event: ClusterEvent) -> (MemberEventKind, NodeId) {
        match event {
            ClusterEvent::MemberUp(id) => (MemberEventKind::Up, id),
            ClusterEvent::MemberSuspect(id) => (MemberEventKind::Suspect, id),
            ClusterEvent::MemberDown(id) => (MemberEventKind::Down, id),
            ClusterEvent::MemberLeft(id) => (MemberEventKind::Left, id),
            ClusterEvent::MemberRemoved(id) => (MemberEventKind::Removed, id),
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A membership change as this node saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// The member's name (its id in text while its name is not known yet).
    pub name: String,
    /// What happened.
    pub kind: MemberEventKind,
}

/// Anything an agent reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A membership change.
    Member(MemberEvent),
    /// A key change.
    Key(KeyEvent),
}

/// Which key changes a [`Subscription`] yields: those of one node (or all) whose key starts
/// with a prefix (empty: every key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    node: Option<NodeId>,
    prefix: String,
}

impl KeyFilter {
    /// Every key of every node.
    pub fn all() -> KeyFilter {
        KeyFilter::default()
    }

    /// Only keys starting with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> KeyFilter {
        KeyFilter {
            node: None,
            prefix: prefix.into(),
        }
    }

    /// Narrows the filter to keys owned by the node named `name` (matched by the id derived
    /// from it, so it works before the name itself has arrived).
    pub fn on_node(mut self, name: &str) -> KeyFilter {
        self.node = Some(NodeId::from_name(name));
        self
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &KeyEvent) -> bool {
        self.node.is_none_or(|id| id == event.id) && event.key.starts_with(&self.prefix)
    }
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The agent stopped: no event will come.
    #[error("the agent has stopped")]
    Closed,
    /// This subscriber fell behind and missed this many events (of any kind); the next call
    /// resumes with the oldest event still held.
    #[error("missed {0} events")]
    Lagged(u64),
}

/// Key changes passing a [`KeyFilter`], from [`AgentHandle::subscribe`](crate::AgentHandle::subscribe).
#[derive(Debug)]
pub struct Subscription {
    pub(crate) filter: KeyFilter,
    pub(crate) events: broadcast::Receiver<Event>,
}

impl Subscription {
    /// The next key change that passes the filter.
    pub async fn recv(&mut self) -> Result<KeyEvent, RecvError> {
        loop {
            match self.events.recv().await {
                Ok(Event::Key(k)) if self.filter.matches(&k) => return Ok(k),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => return Err(RecvError::Closed),
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(RecvError::Lagged(n)),
            }
        }
    }
}

/// Every event, from [`AgentHandle::events`](crate::AgentHandle::events).
#[derive(Debug)]
pub struct EventStream {
    pub(crate) events: broadcast::Receiver<Event>,
}

impl EventStream {
    /// The next event.
    pub async fn recv(&mut self) -> Result<Event, RecvError> {
        self.events.recv().await.map_err(|e| match e {
            broadcast::error::RecvError::Closed => RecvError::Closed,
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_node_and_prefix() {
        let e = KeyEvent {
            id: NodeId::from_name("a"),
            node: "a".into(),
            key: "svc/web".into(),
            value: None,
            version: 3,
        };
        assert!(KeyFilter::all().matches(&e));
        assert!(KeyFilter::prefix("svc/").matches(&e));
        assert!(!KeyFilter::prefix("db/").matches(&e));
        assert!(KeyFilter::prefix("svc").on_node("a").matches(&e));
        assert!(!KeyFilter::all().on_node("b").matches(&e));
        let labels: Vec<&str> = MemberEventKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels, ["up", "suspect", "down", "left", "removed"]);
        assert!(
            MemberEventKind::ALL
                .iter()
                .enumerate()
                .all(|(i, k)| k.index() == i)
        );
    }
}
