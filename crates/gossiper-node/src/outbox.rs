//! The caller-owned buffer the engine writes outgoing datagrams into.

use gossiper_types::NodeId;

/// Datagrams the engine wants sent, packed into one reusable byte buffer.
///
/// The runtime owns it, passes it to every `handle_*` call, sends what it holds and
/// [`clear`](Outbox::clear)s it. Clearing keeps the capacity, so in steady state producing a
/// message allocates nothing.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    bytes: Vec<u8>,
    items: Vec<(NodeId, u32, u32)>,
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
        self.items
            .iter()
            .map(|&(to, s, e)| (to, &self.bytes[s as usize..e as usize]))
    }

    /// The `i`-th waiting datagram.
    pub fn get(&self, i: usize) -> Option<(NodeId, &[u8])> {
        self.items
            .get(i)
            .map(|&(to, s, e)| (to, &self.bytes[s as usize..e as usize]))
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
    pub(crate) fn begin(&mut self) -> usize {
        self.bytes.len()
    }

    /// The shared buffer, for writing a datagram opened with `begin`.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Closes the datagram opened at `start`. Returns its length.
    pub(crate) fn commit(&mut self, to: NodeId, start: usize) -> usize {
        let end = self.bytes.len();
        self.items.push((to, start as u32, end as u32));
        end - start
    }

    /// Throws away the datagram opened at `start`.
    pub(crate) fn abort(&mut self, start: usize) {
        self.bytes.truncate(start);
    }
}
