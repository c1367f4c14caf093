//! `--detector`, one spelling for every subcommand that runs the cluster protocol (`agent`,
//! `simulate-cluster`; `agent-bench` parses the same two words).

use clap::ValueEnum;
use gossiper_cluster::Detector;
use serde::{Deserialize, Serialize};

/// The failure detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorArg {
    /// SWIM with Lifeguard: one probe per period, indirect probes, suspicion, incarnations;
    /// traffic per node flat in the cluster's size.
    Swim,
    /// A heartbeat per round in every digest, judged by a φ-accrual detector; traffic grows
    /// with the cluster.
    Phi,
}

impl DetectorArg {
    /// The cluster crate's detector.
    pub fn detector(self) -> Detector {
        match self {
            DetectorArg::Swim => Detector::Swim,
            DetectorArg::Phi => Detector::Phi,
        }
    }
}
