//! The caller-owned buffer the engine writes outgoing datagrams into.

use std::ops::Range;

use gossiper_types::NodeId;

/// One waiting datagram as the outbox stores it: who it is for, where its bytes sit in
/// [`Outbox::bytes`], and what the engine knows of it without decoding it. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    to: NodeId,
    start: u32,
    /// End offset; the top bit says whether it carries a non-empty delta.
    end_and_flag: u32,
}

/// The top bit of [`Datagram::end_and_flag`]: the datagram carries a non-empty delta.
const CARRIES_DELTA: u32 = 1 << 31;

impl Datagram {
    /// Who it is for.
    pub fn to(&self) -> NodeId {
        self.to
    }

    /// Where its bytes sit in [`Outbox::bytes`].
    pub fn range(&self) -> Range<usize> {
        self.start as usize..(self.end_and_flag & !CARRIES_DELTA) as usize
    }

    /// Whether it carries a non-empty delta (a Push, PullReply, Ack, Rumor, or a SynAck whose
    /// delta half is not empty): what a simulator counts as traffic, known here so that it
    /// never decodes a message just to count it.
    pub fn carries_delta(&self) -> bool {
        self.end_and_flag & CARRIES_DELTA != 0
    }
}

/// Datagrams the engine wants sent, packed into one reusable byte buffer.
///
/// The runtime owns it, passes it to every `handle_*` call, sends what it holds and
/// [`clear`](Outbox::clear)s it. Clearing keeps the capacity, so in steady state producing a
/// message allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    bytes: Vec<u8>,
    items: Vec<Datagram>,
    /// Scratch for the peers a node picks in one round. It lives here, in the runtime's single
    /// buffer, rather than in each of a million engines.
    pub(crate) picks: Vec<NodeId>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Number of datagrams waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The waiting datagrams, in the order they were written.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (NodeId, &[u8])> + '_ {
        self.items.iter().map(|d| (d.to, &self.bytes[d.range()]))
    }

    /// The waiting datagrams as stored, in the order they were written: a caller that keeps
    /// the outbox's bytes ([`bytes`](Outbox::bytes)) refers to a datagram by its range instead
    /// of copying it.
    pub fn datagrams(&self) -> &[Datagram] {
        &self.items
    }

    /// Every waiting datagram's bytes, back to back.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `i`-th waiting datagram.
    pub fn get(&self, i: usize) -> Option<(NodeId, &[u8])> {
        self.items.get(i).map(|d| (d.to, &self.bytes[d.range()]))
    }

    /// Forgets every datagram, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    /// Total bytes waiting.
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Opens a datagram to `to`; write its bytes into the returned buffer, then call
    /// [`commit`](Outbox::commit) or [`abort`](Outbox::abort). Returns the start offset.
    #[inline]
    pub(crate) fn begin(&mut self) -> usize {
        self.bytes.len()
    }

    /// The shared buffer, for writing a datagram opened with `begin`.
    #[inline]
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Closes the datagram opened at `start`, noting whether it carries a non-empty delta.
    /// Returns its length.
    #[inline]
    pub(crate) fn commit(&mut self, to: NodeId, start: usize, carries_delta: bool) -> usize {
        let end = self.bytes.len();
        debug_assert!(
            end < CARRIES_DELTA as usize,
            "an outbox holds less than 2 GiB"
        );
        let flag = if carries_delta { CARRIES_DELTA } else { 0 };
        self.items.push(Datagram {
            to,
            start: start as u32,
            end_and_flag: end as u32 | flag,
        });
        end - start
    }

    /// Throws away the datagram opened at `start`.
    #[inline]
    pub(crate) fn abort(&mut self, start: usize) {
        self.bytes.truncate(start);
    }
}
