//! The `State` trait: what a node gossips, and the three operations anti-entropy needs.

use std::fmt::Debug;

use crate::DecodeError;

/// A replicated value that gossip reconciles.
///
/// Implementations are join-semilattices: [`merge`](State::merge) is commutative, associative
/// and idempotent, so replicas that have seen the same writes hold the same state whatever the
/// order in which gossip delivered them. On top of whole-state merge, a state can summarise
/// itself in a small [`Digest`](State::Digest) and answer a peer's digest with a *delta*: just
/// the entries the peer lacks, cut to a byte budget so it fits one datagram. Deltas are opaque
/// bytes to the engine; the state encodes and validates them itself, which keeps the hot path
/// free of per-message allocation.
pub trait State: Clone + Debug + Send + 'static {
    /// A compact summary of what a replica holds (for example the highest version per owner).
    type Digest: Default + Clone + Debug + PartialEq + Send + 'static;

    /// Joins `other` into `self`. Returns true if `self` changed.
    fn merge(&mut self, other: &Self) -> bool;

    /// Overwrites `out` with this state's digest, reusing its allocation.
    fn digest_into(&self, out: &mut Self::Digest);

    /// Appends the wire form of `digest` to `out`, in at most `budget` bytes. A digest too big
    /// for the budget is sampled: it lists only some of its parts, starting at a place chosen by
    /// `rotation`, and the peer then treats the parts left out as unknown to the sender (so it
    /// may send more than needed, never less).
    fn encode_digest(digest: &Self::Digest, budget: usize, rotation: u64, out: &mut Vec<u8>);

    /// Decodes a digest written by [`encode_digest`](State::encode_digest) into `out`, reusing
    /// its allocation. On error `out` holds an unspecified but valid digest.
    fn decode_digest_into(input: &[u8], out: &mut Self::Digest) -> Result<(), DecodeError>;

    /// Appends to `out` the entries that a replica whose digest is `peer` lacks, writing at most
    /// `budget` bytes. `rotation` varies which part of the state goes first when not everything
    /// fits, so that no part starves (callers pass a random number). Returns how many entries
    /// were written; zero means the peer lacks nothing this delta could carry.
    fn write_delta(
        &self,
        peer: &Self::Digest,
        budget: usize,
        rotation: u64,
        out: &mut Vec<u8>,
    ) -> usize;

    /// Validates a delta written by [`write_delta`](State::write_delta) and, only if all of it
    /// is well-formed, applies it. Returns whether the state changed. On error nothing changed.
    fn apply_delta(&mut self, delta: &[u8]) -> Result<bool, DecodeError>;
}
