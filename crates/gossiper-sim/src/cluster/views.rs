//! What the live nodes think of a few chosen members, step by step: the record behind
//! `simulate-cluster --html`'s heat map, where a crash and its detection can be seen spreading.
//!
//! Recording is off unless [`ClusterSimConfig::views`](super::ClusterSimConfig) asks for it;
//! off, the run keeps no table and pays one emptiness test per membership event. On, it keeps
//! one byte per (recorded member, observer) fed by the nodes' own membership events, as the
//! crash watches do, and at each step copies the counts: memory is bounded by
//! [`MAX_VIEW_MEMBERS`] × [`MAX_VIEW_STEPS`] cells, whatever the run's length. Like the time
//! series it reads state and draws no random number, so it never changes a run's measures.

use super::ConfigError;

/// Most members one run records.
pub const MAX_VIEW_MEMBERS: usize = 256;
/// Most steps one run records.
pub const MAX_VIEW_STEPS: u64 = 2_000;

/// Which members to record, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRecording {
    /// The recorded members' indices (`n{i}`), at most [`MAX_VIEW_MEMBERS`], each below the node
    /// count.
    pub members: Vec<usize>,
    /// The step, ms: at least 1, and at most [`MAX_VIEW_STEPS`] steps in the run.
    pub every_ms: u64,
}

impl ViewRecording {
    pub(super) fn validate(&self, nodes: usize, duration_ms: u64) -> Result<(), ConfigError> {
        if self.members.len() > MAX_VIEW_MEMBERS {
            return Err(ConfigError(format!(
                "at most {MAX_VIEW_MEMBERS} members can be recorded, not {}",
                self.members.len()
            )));
        }
        if let Some(&m) = self.members.iter().find(|&&m| m >= nodes) {
            return Err(ConfigError(format!(
                "recorded member n{m} is not one of the {nodes} nodes"
            )));
        }
        if self.every_ms == 0 || duration_ms / self.every_ms > MAX_VIEW_STEPS {
            return Err(ConfigError(format!(
                "a view step of {} ms over {duration_ms} ms is not 1 to {MAX_VIEW_STEPS} steps",
                self.every_ms
            )));
        }
        Ok(())
    }
}

/// What the live nodes think of one recorded member at one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberView {
    /// Whether the member itself is up.
    pub live: bool,
    /// Live nodes other than the member: the observers.
    pub observers: u32,
    /// Observers whose last word on it is "alive".
    pub alive: u32,
    /// Observers whose last word on it is "suspect".
    pub suspect: u32,
    /// Observers whose last word on it is "dead".
    pub dead: u32,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewStep {
    /// Virtual time, ms.
    pub at_ms: u64,
    /// One view per recorded member, in [`ViewRecording::members`] order.
    pub members: Vec<MemberView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_bounded_and_name_real_nodes() {
        let r = |members: Vec<usize>, every_ms| ViewRecording { members, every_ms };
        assert!(r(vec![0, 9], 100).validate(10, 20_000).is_ok());
        assert!(r(vec![10], 100).validate(10, 20_000).is_err());
        assert!(r(vec![0], 0).validate(10, 20_000).is_err());
        assert!(r(vec![0], 1).validate(10, 20_000).is_err(), "20,000 steps");
        assert!(
            r((0..=MAX_VIEW_MEMBERS).collect(), 100)
                .validate(1_000, 20_000)
                .is_err()
        );
    }
}
