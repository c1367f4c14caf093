//! Counters every engine keeps: what the Go demo printed, and what the benchmarks read.
//!
//! An engine reports each thing it counts to its [`Counters`] as it happens. [`Stats`], the
//! default, keeps them all; [`NoStats`] keeps none, for a runtime that counts the traffic
//! itself (the simulator counts every message where it routes it), so that a million engines do
//! not each carry 104 bytes of counters nobody reads.

use std::fmt;

use crate::DropReason;

/// One thing an engine counts, reported to its [`Counters`] as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Count {
    /// A gossip round started.
    Round,
    /// A datagram was written to the outbox.
    Sent {
        /// Its length.
        bytes: usize,
    },
    /// A datagram was handed in (a dropped one included).
    Received {
        /// Its length.
        bytes: usize,
    },
    /// The state changed (a local write or a merge).
    StateChange,
    /// A received datagram carried nothing new.
    Useless,
    /// A rumor was sent.
    RumorSent,
    /// The node lost interest in its hot rumor.
    LostInterest,
    /// A received datagram was dropped, for this reason.
    Dropped(DropReason),
}

/// Where an engine counts what it does: [`Stats`] (the default) or [`NoStats`].
pub trait Counters: Clone + fmt::Debug + Default + Send + 'static {
    /// Counts one occurrence of `what`.
    fn count(&mut self, what: Count);
}

/// Counts nothing: zero bytes per engine. For a runtime that counts its engines' traffic
/// itself, as the simulator does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoStats;

impl Counters for NoStats {
    #[inline(always)]
    fn count(&mut self, _what: Count) {}
}

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

impl Counters for Stats {
    #[inline]
    fn count(&mut self, what: Count) {
        match what {
            Count::Round => self.rounds += 1,
            Count::Sent { bytes } => {
                self.messages_sent += 1;
                self.bytes_sent += bytes as u64;
            }
            Count::Received { bytes } => {
                self.messages_received += 1;
                self.bytes_received += bytes as u64;
            }
            Count::StateChange => self.state_changes += 1,
            Count::Useless => self.useless_deliveries += 1,
            Count::RumorSent => self.rumors_sent += 1,
            Count::LostInterest => self.rumors_lost_interest += 1,
            Count::Dropped(reason) => {
                let d = &mut self.dropped;
                match reason {
                    DropReason::Malformed(_) => d.malformed += 1,
                    DropReason::UnknownKind(_) => d.unknown_kind += 1,
                    DropReason::Oversized(_) => d.oversized += 1,
                    DropReason::FromSelf => d.from_self += 1,
                }
            }
        }
    }
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
