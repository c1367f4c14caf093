//! Counters every engine keeps: what the Go demo printed, and what the benchmarks read.

/// Datagrams dropped on receipt, by reason. Each was rejected before touching any state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Empty, truncated, or with a malformed digest or delta.
    pub malformed: u64,
    /// A message kind this version does not know.
    pub unknown_kind: u64,
    /// Larger than `max_message_bytes`.
    pub oversized: u64,
    /// Claiming to come from this very node.
    pub from_self: u64,
}

impl DropCounts {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.malformed + self.unknown_kind + self.oversized + self.from_self
    }
}

/// Per-node counters, monotonically increasing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Gossip rounds this node started.
    pub rounds: u64,
    /// Datagrams written to the outbox.
    pub messages_sent: u64,
    /// Datagrams handed in, dropped ones included.
    pub messages_received: u64,
    /// Bytes written to the outbox.
    pub bytes_sent: u64,
    /// Bytes handed in, dropped ones included.
    pub bytes_received: u64,
    /// Times the state changed (local writes and merges).
    pub state_changes: u64,
    /// Received datagrams that carried nothing new.
    pub useless_deliveries: u64,
    /// Rumors sent (rumor mongering's update-carrying messages).
    pub rumors_sent: u64,
    /// Times this node lost interest in its hot rumor (rumor mongering).
    pub rumors_lost_interest: u64,
    /// Dropped datagrams, by reason.
    pub dropped: DropCounts,
}

impl Stats {
    /// Adds `other` into `self` (for cluster-wide totals).
    pub fn accumulate(&mut self, other: &Stats) {
        self.rounds += other.rounds;
        self.messages_sent += other.messages_sent;
        self.messages_received += other.messages_received;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.state_changes += other.state_changes;
        self.useless_deliveries += other.useless_deliveries;
        self.rumors_sent += other.rumors_sent;
        self.rumors_lost_interest += other.rumors_lost_interest;
        self.dropped.malformed += other.dropped.malformed;
        self.dropped.unknown_kind += other.dropped.unknown_kind;
        self.dropped.oversized += other.dropped.oversized;
        self.dropped.from_self += other.dropped.from_self;
    }
}
