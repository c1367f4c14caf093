//! A node is the only authority about itself. Peers' copies of its own record are never
//! applied ([`ClusterState::set_owner`]); a claim about it that it did not make — a newer
//! generation or more versions in the replicated state, a newer generation in SWIM — is
//! refuted by moving to a generation above the claim, as memberlist refutes a suspicion with a
//! higher incarnation. The new generation supersedes the claim everywhere, and this node's
//! real keys travel with it. Refutations are rate-limited, so a flood of forgeries costs one
//! generation a second, not one per datagram.

use std::time::Duration;

use gossiper_types::Time;

use super::ClusterNode;
use crate::state::MAX_GENERATION;

/// At most one refutation per this many gossip intervals.
const REFUTE_INTERVALS: u32 = 10;

impl ClusterNode {
    /// Collects what the state and SWIM noticed about this node, and refutes it when allowed.
    pub(super) fn note_claims(&mut self, now: Time) {
        let from_state = self.state().take_owner_claim();
        let from_swim = self
            .swim
            .as_deref_mut()
            .and_then(|s| s.take_generation_claim());
        for claim in [from_state, from_swim].into_iter().flatten() {
            self.pending_claim = Some(self.pending_claim.map_or(claim, |c| c.max(claim)));
        }
        let Some(claimed) = self.pending_claim else {
            return;
        };
        if now < self.next_refute || self.left {
            return;
        }
        self.pending_claim = None;
        if claimed < self.generation {
            return; // already refuted by a later generation
        }
        if claimed >= MAX_GENERATION {
            self.stats.claims_unrefutable += 1;
            log::warn!(
                "{}: a peer claims this node at generation {claimed}, beyond what can be refuted",
                self.config.name
            );
            return;
        }
        let generation = claimed + 1;
        self.next_refute = now + Duration::from_millis(self.config.interval_ms) * REFUTE_INTERVALS;
        self.stats.claims_refuted += 1;
        log::warn!(
            "{}: a peer spoke for this node (generation {claimed}); refuting as generation {generation}",
            self.config.name
        );
        self.generation = generation;
        let id = self.id;
        let before = self.digest();
        self.engine
            .write(now, &mut self.outbox, |s| s.bump_generation(id, generation));
        self.outbox.clear();
        if let Some(swim) = self.swim.as_deref_mut() {
            swim.set_generation(generation);
        }
        self.broadcast_local(now, &before);
        self.drain_swim(now);
    }
}
