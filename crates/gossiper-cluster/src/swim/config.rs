//! [`SwimConfig`]: the knobs of the SWIM state machine, with memberlist-like defaults scaled
//! down to a LAN simulator (100 ms probe period).

use std::time::Duration;

/// How a [`Swim`](super::Swim) behaves. Times in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwimConfig {
    /// Probe period: one member is probed per period (stretched by local health). Default 100.
    pub probe_interval_ms: u64,
    /// How long to wait for a direct ack before asking helpers for indirect probes (stretched
    /// by local health). Must be below the probe interval. Default 50.
    pub probe_timeout_ms: u64,
    /// Helpers asked for an indirect probe (`k` of SWIM). Default 3.
    pub indirect_checks: usize,
    /// Suspicion multiplier: the minimum suspicion timeout is
    /// `suspicion_mult × max(1, log10 N) × probe_interval`. Default 4.
    pub suspicion_mult: u32,
    /// The suspicion timeout starts at `suspicion_max_timeout_mult × min`. Default 6.
    pub suspicion_max_timeout_mult: u32,
    /// Each broadcast is sent `retransmit_mult × ceil(log10(N + 1))` times. Default 4.
    pub retransmit_mult: u32,
    /// Gossip period: pending broadcasts are pushed to `gossip_nodes` random members. Default 100.
    pub gossip_interval_ms: u64,
    /// Members per gossip period. Default 3.
    pub gossip_nodes: usize,
    /// Lifeguard local-health cap: timeouts are multiplied by at most this. Default 8.
    pub awareness_max: u32,
    /// Dead and departed members are forgotten (`MemberRemoved`) after this. Default 600,000.
    pub dead_grace_ms: u64,
    /// Largest payload this state machine produces, in bytes (the datagram MTU minus the
    /// envelope overhead), 256..=65,507. Default 1,300.
    pub max_payload: usize,
    /// Bound of the member table: updates about unknown members beyond it are dropped and
    /// counted. Default 65,536.
    pub max_members: usize,
    /// Members learned second-hand that get a verification ping per probe period (see
    /// `Swim`'s module docs): how fast forged members that never answer are found out.
    /// Default 64.
    pub verify_per_period: usize,
}

impl Default for SwimConfig {
    fn default() -> SwimConfig {
        SwimConfig {
            probe_interval_ms: 100,
            probe_timeout_ms: 50,
            indirect_checks: 3,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            retransmit_mult: 4,
            gossip_interval_ms: 100,
            gossip_nodes: 3,
            awareness_max: 8,
            dead_grace_ms: 600_000,
            max_payload: 1_300,
            max_members: 65_536,
            verify_per_period: 64,
        }
    }
}

impl SwimConfig {
    /// Checks every field's range; the message names the first bad field.
    pub fn validate(&self) -> Result<(), String> {
        fn range<T: PartialOrd + std::fmt::Display>(
            name: &str,
            v: T,
            lo: T,
            hi: T,
        ) -> Result<(), String> {
            if v < lo || v > hi {
                Err(format!("{name} = {v} must be within {lo}..={hi}"))
            } else {
                Ok(())
            }
        }
        range("probe_interval_ms", self.probe_interval_ms, 1, 3_600_000)?;
        range(
            "probe_timeout_ms",
            self.probe_timeout_ms,
            1,
            self.probe_interval_ms.saturating_sub(1).max(1),
        )?;
        if self.probe_timeout_ms >= self.probe_interval_ms {
            return Err("probe_timeout_ms must be below probe_interval_ms".into());
        }
        range("indirect_checks", self.indirect_checks, 0, 16)?;
        range("suspicion_mult", self.suspicion_mult, 1, 100)?;
        range(
            "suspicion_max_timeout_mult",
            self.suspicion_max_timeout_mult,
            1,
            100,
        )?;
        range("retransmit_mult", self.retransmit_mult, 1, 100)?;
        range("gossip_interval_ms", self.gossip_interval_ms, 1, 3_600_000)?;
        range("gossip_nodes", self.gossip_nodes, 1, 64)?;
        range("awareness_max", self.awareness_max, 1, 64)?;
        range("dead_grace_ms", self.dead_grace_ms, 1, u64::MAX / 4_000)?;
        range("max_payload", self.max_payload, 256, 65_507)?;
        range("max_members", self.max_members, 1, 1 << 24)?;
        range("verify_per_period", self.verify_per_period, 1, 1_024)?;
        Ok(())
    }

    pub(crate) fn probe_interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    pub(crate) fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }

    pub(crate) fn gossip_interval(&self) -> Duration {
        Duration::from_millis(self.gossip_interval_ms)
    }

    pub(crate) fn dead_grace(&self) -> Duration {
        Duration::from_millis(self.dead_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(SwimConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut SwimConfig), what: &str| {
            let mut c = SwimConfig::default();
            f(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.contains(what), "{err} should name {what}");
        };
        bad(|c| c.probe_interval_ms = 0, "probe_interval_ms");
        bad(|c| c.probe_timeout_ms = 100, "probe_timeout_ms");
        bad(|c| c.probe_timeout_ms = 0, "probe_timeout_ms");
        bad(|c| c.gossip_interval_ms = 0, "gossip_interval_ms");
        bad(|c| c.max_payload = 255, "max_payload");
        bad(|c| c.awareness_max = 0, "awareness_max");
        bad(|c| c.max_members = 0, "max_members");
        bad(|c| c.verify_per_period = 0, "verify_per_period");
    }
}
