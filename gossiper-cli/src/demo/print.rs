//! The demo's output: a readable table or one JSON object per line.

use std::fmt;
use std::io::Write;
use std::time::Duration;

use gossiper_node::Mode;
use gossiper_types::NodeId;
use serde::Serialize;

use super::args::{DemoArgs, Format};
use super::plan::{Plan, ScheduledWrite};
use super::rows::{Row, View};
use crate::CliError;

/// Width of the progress bar in the text table.
pub(super) const BAR_WIDTH: usize = 20;

/// The JSON lines the demo prints, one object each, told apart by `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Line<'a> {
    /// The plan: deterministic for a given set of flags.
    Start {
        nodes: usize,
        topology: String,
        links: usize,
        neighbors: Vec<Vec<u64>>,
        mode: &'static str,
        fanout: u32,
        selector: &'static str,
        interval: String,
        seed: u64,
        writes: &'a [ScheduledWrite],
    },
    /// A scheduled write was handed to its node.
    Write { t_ms: u64, node: u64, key: &'a str },
    /// Every node's state at one moment.
    Snapshot {
        t_ms: u64,
        rounds: u64,
        messages: u64,
        bytes: u64,
        distinct_states: usize,
        /// How many nodes the totals and `distinct_states` cover: all of them, or the sample
        /// of `nodes` that a live table of more than 16 nodes reads.
        counted: usize,
        nodes: &'a [Row],
    },
    /// How the run ended.
    Summary(&'a Summary),
}

/// The final line: `converged`, `elapsed_ms`, `rounds`, `messages` and `bytes` at least.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    pub(super) converged: bool,
    /// When the watcher saw agreement (or gave up), in ms since the cluster started.
    pub(super) elapsed_ms: u64,
    /// When the last node last learned something, in ms (the true convergence time).
    pub(super) converged_at_ms: Option<u64>,
    /// Gossip rounds, over all nodes.
    pub(super) rounds: u64,
    /// Datagrams sent, over all nodes.
    pub(super) messages: u64,
    /// Bytes sent, over all nodes.
    pub(super) bytes: u64,
    pub(super) nodes: usize,
    /// Live keys every node holds (on convergence; else the most any node holds).
    pub(super) keys: usize,
    pub(super) writes: u32,
    pub(super) distinct_states: usize,
    pub(super) seed: u64,
}

/// Where output goes, in the chosen format.
pub(super) struct Printer<W: Write> {
    pub(super) out: W,
    pub(super) format: Format,
}

impl<W: Write> Printer<W> {
    pub(super) fn json(&mut self, line: &Line<'_>) -> Result<(), CliError> {
        let text = serde_json::to_string(line)
            .map_err(|e| CliError::failure(format!("cannot encode json: {e}")))?;
        self.line(format_args!("{text}"))
    }

    pub(super) fn line(&mut self, args: fmt::Arguments<'_>) -> Result<(), CliError> {
        writeln!(self.out, "{args}")
            .and_then(|()| self.out.flush())
            .map_err(|e| CliError::from_output(&e))
    }

    pub(super) fn start(&mut self, args: &DemoArgs, plan: &Plan) -> Result<(), CliError> {
        let mode: Mode = args.mode.into();
        match self.format {
            Format::Json => self.json(&Line::Start {
                nodes: args.nodes,
                topology: plan.topology.to_string(),
                links: plan.graph.edge_count(),
                neighbors: (0..plan.graph.len() as u64)
                    .map(|i| {
                        plan.graph
                            .neighbors(NodeId(i))
                            .iter()
                            .map(|n| n.0)
                            .collect()
                    })
                    .collect(),
                mode: mode.name(),
                fanout: args.fanout,
                selector: plan.selector_name,
                interval: plan.interval_name.clone(),
                seed: args.seed,
                writes: &plan.writes,
            }),
            Format::Text => {
                self.line(format_args!(
                    "gossiper demo: {} nodes on {} ({} links)",
                    args.nodes,
                    plan.topology,
                    plan.graph.edge_count(),
                ))?;
                self.line(format_args!(
                    "{mode}, fanout {}, selector {}, interval {}, seed {}",
                    args.fanout, plan.selector_name, plan.interval_name, args.seed
                ))?;
                let window = plan.writes.last().map_or(0, |w| w.at_ms);
                self.line(format_args!(
                    "{} writes by {:.1} s; a table every {} ms until all agree (at most {} s)",
                    plan.writes.len(),
                    window as f64 / 1_000.0,
                    args.print_every_ms,
                    args.max_duration
                ))
            }
        }
    }

    pub(super) fn write(&mut self, t_ms: u64, w: &ScheduledWrite) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(&Line::Write {
                t_ms,
                node: w.node,
                key: &w.key,
            }),
            Format::Text => self.line(format_args!(
                "{:>7}  n{} writes {}",
                seconds(t_ms),
                w.node,
                w.key
            )),
        }
    }

    /// One table: the totals, then a row per node in `rows` (all nodes, or the ones shown);
    /// `distinct` counts the different states among `counted` nodes.
    pub(super) fn table(&mut self, t_ms: u64, view: &View, target: u64) -> Result<(), CliError> {
        let View {
            rows,
            totals,
            distinct,
            counted,
            nodes,
        } = view;
        match self.format {
            Format::Json => self.json(&Line::Snapshot {
                t_ms,
                rounds: totals.rounds,
                messages: totals.messages_sent,
                bytes: totals.bytes_sent,
                distinct_states: *distinct,
                counted: *counted,
                nodes: rows,
            }),
            Format::Text => {
                self.line(format_args!(
                    "{:>7}  {} rounds, {} messages, {}; {} distinct state{}",
                    seconds(t_ms),
                    totals.rounds,
                    totals.messages_sent,
                    bytes(totals.bytes_sent),
                    distinct,
                    if *distinct == 1 { "" } else { "s" }
                ))?;
                self.line(format_args!(
                    "  {:>5} {:>5} {:>6}  {:<8}  {:<w$}  {:<8} {:>6}",
                    "node",
                    "keys",
                    "writes",
                    "state",
                    "progress",
                    "newest",
                    "rounds",
                    w = BAR_WIDTH + 2
                ))?;
                for r in rows {
                    self.line(format_args!(
                        "  {:>5} {:>5} {:>6}  {:<8}  {}  {:<8} {:>6}",
                        format!("n{}", r.id),
                        r.keys,
                        r.versions,
                        r.fingerprint,
                        bar(r.versions, target),
                        r.newest.as_deref().unwrap_or("-"),
                        r.rounds
                    ))?;
                }
                if rows.len() < *nodes {
                    let over = if counted < nodes {
                        "; states and totals over them"
                    } else {
                        ""
                    };
                    self.line(format_args!(
                        "  ({} of {} nodes shown{over})",
                        rows.len(),
                        nodes
                    ))?;
                }
                Ok(())
            }
        }
    }

    pub(super) fn summary(&mut self, s: &Summary) -> Result<(), CliError> {
        match self.format {
            Format::Json => self.json(&Line::Summary(s)),
            Format::Text => {
                if s.converged {
                    self.line(format_args!(
                        "converged in {}: {} nodes agree on {} keys",
                        seconds(s.elapsed_ms),
                        s.nodes,
                        s.keys
                    ))?;
                } else {
                    self.line(format_args!(
                        "not converged after {}: {} distinct states among {} nodes",
                        seconds(s.elapsed_ms),
                        s.distinct_states,
                        s.nodes
                    ))?;
                }
                self.line(format_args!(
                    "  {} rounds ({:.1} per node), {} messages, {} bytes",
                    s.rounds,
                    s.rounds as f64 / s.nodes as f64,
                    s.messages,
                    s.bytes
                ))
            }
        }
    }
}

/// Bytes in B, kB or MB (decimal), to keep a table's first line short.
pub(super) fn bytes(b: u64) -> String {
    if b < 10_000 {
        format!("{b} B")
    } else if b < 10_000_000 {
        format!("{} kB", b / 1_000)
    } else {
        format!("{} MB", b / 1_000_000)
    }
}

pub(super) fn seconds(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1_000, ms % 1_000)
}

/// `[#####-----]`: how much of everything ever written a node holds.
pub(super) fn bar(have: u64, target: u64) -> String {
    let filled = (have.min(target) * BAR_WIDTH as u64)
        .checked_div(target)
        .map_or(BAR_WIDTH, |f| f as usize);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
