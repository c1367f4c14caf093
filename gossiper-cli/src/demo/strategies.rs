//! The customisation point: how each node gets its neighbour selector and gossip interval.

use std::fmt;
use std::time::Duration;

use clap::ValueEnum;
use gossiper_network::{
    ExponentialInterval, FixedInterval, GossipInterval, JitterInterval, LeastRecentlyContacted,
    NeighborSelector, ShuffledRoundRobin, UniformRandom,
};
use gossiper_types::NodeId;

use super::args::{DemoArgs, IntervalKind, SelectorKind};
use crate::CliError;

/// Makes the neighbour selector of one node.
pub type SelectorFactory =
    Box<dyn Fn(NodeId, &DemoArgs) -> Result<Box<dyn NeighborSelector>, CliError> + Send + Sync>;

/// Makes the gossip interval of one node.
pub type IntervalFactory =
    Box<dyn Fn(NodeId, &DemoArgs) -> Result<Box<dyn GossipInterval>, CliError> + Send + Sync>;

/// The customisation point: how each node gets its neighbour selector and gossip interval.
///
/// Factories are called once per node, with the node's id and the parsed flags, so a strategy
/// can differ per node and read any flag. Return [`CliError::usage`] for flags it cannot
/// accept; the demo prints it as one line and exits 2.
pub struct Strategies {
    selector: SelectorFactory,
    interval: IntervalFactory,
}

impl fmt::Debug for Strategies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Strategies").finish_non_exhaustive()
    }
}

impl Default for Strategies {
    fn default() -> Self {
        Strategies::builtin()
    }
}

impl Strategies {
    /// `--selector` and `--interval` mapped to the built-ins ([`builtin_selector`],
    /// [`builtin_interval`]).
    pub fn builtin() -> Self {
        Strategies {
            selector: Box::new(builtin_selector),
            interval: Box::new(builtin_interval),
        }
    }

    /// Replaces the selector factory; `--selector` is then ignored unless `f` reads it.
    pub fn with_selector<F>(mut self, f: F) -> Self
    where
        F: Fn(NodeId, &DemoArgs) -> Result<Box<dyn NeighborSelector>, CliError>
            + Send
            + Sync
            + 'static,
    {
        self.selector = Box::new(f);
        self
    }

    /// Replaces the interval factory; `--interval` is then ignored unless `f` reads it.
    pub fn with_interval<F>(mut self, f: F) -> Self
    where
        F: Fn(NodeId, &DemoArgs) -> Result<Box<dyn GossipInterval>, CliError>
            + Send
            + Sync
            + 'static,
    {
        self.interval = Box::new(f);
        self
    }

    /// The selector for node `id`.
    pub fn selector(
        &self,
        id: NodeId,
        args: &DemoArgs,
    ) -> Result<Box<dyn NeighborSelector>, CliError> {
        (self.selector)(id, args)
    }

    /// The interval for node `id`.
    pub fn interval(
        &self,
        id: NodeId,
        args: &DemoArgs,
    ) -> Result<Box<dyn GossipInterval>, CliError> {
        (self.interval)(id, args)
    }
}

/// The built-in selector `--selector` names.
pub fn builtin_selector(
    _id: NodeId,
    args: &DemoArgs,
) -> Result<Box<dyn NeighborSelector>, CliError> {
    Ok(match args.selector {
        SelectorKind::Random => Box::new(UniformRandom),
        SelectorKind::RoundRobin => Box::new(ShuffledRoundRobin::new()),
        SelectorKind::LeastRecent => Box::new(LeastRecentlyContacted::new()),
    })
}

/// The built-in interval `--interval` names, with `--interval-ms`, `--min-ms` and `--max-ms`.
pub fn builtin_interval(_id: NodeId, args: &DemoArgs) -> Result<Box<dyn GossipInterval>, CliError> {
    let ms = Duration::from_millis;
    let built: Result<Box<dyn GossipInterval>, _> = match args.interval {
        IntervalKind::Fixed => FixedInterval::new(ms(args.interval_ms)).map(|i| Box::new(i) as _),
        IntervalKind::Jitter => {
            JitterInterval::new(ms(args.min_ms), ms(args.max_ms)).map(|i| Box::new(i) as _)
        }
        IntervalKind::Exp => {
            ExponentialInterval::new(ms(args.interval_ms)).map(|i| Box::new(i) as _)
        }
    };
    built.map_err(|e| {
        let flags = match args.interval {
            IntervalKind::Jitter => "--min-ms/--max-ms",
            IntervalKind::Fixed | IntervalKind::Exp => "--interval-ms",
        };
        let name = args
            .interval
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned());
        CliError::usage(format!("--interval {name}: {e} (set {flags})"))
    })
}
