//! Engine configuration: which anti-entropy mode, how many peers, how big a datagram.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::{LossOfInterest, Protocol};

/// The anti-entropy exchange a round performs (Demers et al., 1987).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// The caller sends what it has; the callee merges. One message per contact.
    Push,
    /// The caller sends its digest; the callee answers with what the caller lacks.
    Pull,
    /// Both: digest, then digest + delta back, then the delta the callee lacks (Syn, SynAck,
    /// Ack). Spreads fastest: O(log n) rounds with O(n log log n) messages.
    #[default]
    PushPull,
}

impl Mode {
    /// A stable lower-case name: `push`, `pull`, `push-pull`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Push => "push",
            Mode::Pull => "pull",
            Mode::PushPull => "push-pull",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a [`Node`](crate::Node) gossips. Copy-sized so a million nodes can each hold one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// Anti-entropy or rumor mongering. Default: anti-entropy.
    pub protocol: Protocol,
    /// Anti-entropy exchange per contact (also the backing exchange of rumor mongering).
    /// Default: push-pull.
    pub mode: Mode,
    /// Peers contacted per round, at least 1. Default 1 (the random phone-call model); 2–3
    /// speeds spread and survives loss at the cost of traffic.
    pub fanout: u32,
    /// Largest datagram the engine writes, in bytes, all of its headers included; deltas are cut
    /// to fit and the rest follows in later rounds. Range 64..=65,507, default 1,400 (safe under
    /// an Ethernet MTU). Runtimes that add an envelope subtract its size first.
    pub max_message_bytes: u32,
    /// Push a local write to `fanout` peers at once instead of waiting for the next round.
    /// Default true: a fresh write then spreads in about one network delay per hop.
    pub push_on_write: bool,
    /// Queue [`Event`](crate::Event)s for [`Node::poll_event`](crate::Node::poll_event).
    /// Default false: the simulator runs a million nodes and reads counters instead.
    pub emit_events: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            protocol: Protocol::AntiEntropy,
            mode: Mode::PushPull,
            fanout: 1,
            max_message_bytes: 1_400,
            push_on_write: true,
            emit_events: false,
        }
    }
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl NodeConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.fanout == 0 {
            return Err(ConfigError("fanout must be at least 1".into()));
        }
        if !(64..=65_507).contains(&self.max_message_bytes) {
            return Err(ConfigError(format!(
                "max message size {} must be within 64..=65507 bytes",
                self.max_message_bytes
            )));
        }
        if let Protocol::Rumor(r) = self.protocol {
            let (LossOfInterest::Counter(k) | LossOfInterest::Coin(k)) = r.loss;
            if k == 0 {
                return Err(ConfigError(
                    "rumor loss-of-interest parameter k must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }
}

impl NodeConfig {
    /// This configuration with out-of-range values clamped, as every engine holds it.
    pub(crate) fn clamped(mut self) -> NodeConfig {
        self.fanout = self.fanout.max(1);
        self.max_message_bytes = self.max_message_bytes.clamp(64, 65_507);
        if let Protocol::Rumor(r) = &mut self.protocol {
            r.loss = match r.loss {
                LossOfInterest::Counter(k) => LossOfInterest::Counter(k.max(1)),
                LossOfInterest::Coin(k) => LossOfInterest::Coin(k.max(1)),
            };
        }
        self
    }
}

/// A [`NodeConfig`], clamped as [`Node::new`](crate::Node::new) clamps it, that any number of
/// engines share: each holds a pointer (8 bytes) where a configuration of its own takes 28, and
/// a million simulated engines read one copy of it. Cloning shares it.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedConfig(Arc<NodeConfig>);

impl SharedConfig {
    /// Shares `config`, out-of-range values clamped.
    pub fn new(config: NodeConfig) -> SharedConfig {
        SharedConfig(Arc::new(config.clamped()))
    }
}

impl Deref for SharedConfig {
    type Target = NodeConfig;
    fn deref(&self) -> &NodeConfig {
        &self.0
    }
}

impl fmt::Debug for SharedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_checked() {
        assert!(NodeConfig::default().validate().is_ok());
        let bad = NodeConfig {
            fanout: 0,
            ..NodeConfig::default()
        };
        assert!(bad.validate().is_err());
        let tiny = NodeConfig {
            max_message_bytes: 10,
            ..NodeConfig::default()
        };
        assert!(
            tiny.validate()
                .unwrap_err()
                .to_string()
                .contains("64..=65507")
        );
        let zero_k = NodeConfig {
            protocol: Protocol::Rumor(crate::RumorConfig {
                loss: LossOfInterest::Coin(0),
                ..Default::default()
            }),
            ..NodeConfig::default()
        };
        assert!(
            zero_k
                .validate()
                .unwrap_err()
                .to_string()
                .contains("k must")
        );
    }
}
