//! The published tables the simulator is held to, and the configurations that re-run them.
//!
//! A closed form (see [`theory`](crate::theory)) says what an idealised model predicts; a
//! paper's table says what its authors' own simulator measured. Reproducing the table number by
//! number is how a reader checks that our engine, under a stated reading of the paper's
//! definitions, is the protocol the paper describes. The numbers live here, once, so that the
//! test that pins them, the example that regenerates `docs/theory.md` and the docs agree.
//!
//! Demers et al., "Epidemic algorithms for replicated database maintenance", PODC 1987, §1.4,
//! n = 1000 sites, one update, each infective site pushing to one random site per cycle:
//!
//! - Table 1: push, feedback, counter k.
//! - Table 2: push, blind, coin k.

use gossiper_node::{
    Feedback, LossOfInterest, Protocol, RumorConfig, RumorDirection, RumorReading,
};

use crate::config::SimConfig;

/// One row of a published table: the parameter `k` and the paper's four measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaperRow {
    /// The counter or coin parameter.
    pub k: u32,
    /// Residue s: fraction of sites that never received the update.
    pub residue: f64,
    /// Traffic m: update messages sent per site.
    pub traffic: f64,
    /// Mean cycle at which a site received the update.
    pub t_ave: f64,
    /// Cycle at which the last site received it.
    pub t_last: f64,
}

const fn row(k: u32, residue: f64, traffic: f64, t_ave: f64, t_last: f64) -> PaperRow {
    PaperRow {
        k,
        residue,
        traffic,
        t_ave,
        t_last,
    }
}

/// The two rumor-mongering tables of Demers et al. (1987).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemersTable {
    /// Table 1: push, feedback, counter.
    FeedbackCounter,
    /// Table 2: push, blind, coin.
    BlindCoin,
}

impl DemersTable {
    /// Both tables, in the paper's order.
    pub const ALL: [DemersTable; 2] = [DemersTable::FeedbackCounter, DemersTable::BlindCoin];

    /// The table's number in the paper.
    pub fn number(self) -> u32 {
        match self {
            DemersTable::FeedbackCounter => 1,
            DemersTable::BlindCoin => 2,
        }
    }

    /// The number of sites the paper simulated.
    pub const NODES: usize = 1_000;

    /// The published rows, k = 1..5.
    pub fn rows(self) -> &'static [PaperRow; 5] {
        const TABLE_1: [PaperRow; 5] = [
            row(1, 0.18, 1.7, 11.0, 16.8),
            row(2, 0.037, 3.3, 12.1, 16.9),
            row(3, 0.011, 4.5, 12.5, 17.4),
            row(4, 0.0036, 5.6, 12.7, 17.5),
            row(5, 0.0012, 6.7, 12.8, 17.7),
        ];
        const TABLE_2: [PaperRow; 5] = [
            row(1, 0.96, 0.04, 19.0, 38.0),
            row(2, 0.20, 1.6, 17.0, 33.0),
            row(3, 0.060, 2.8, 15.0, 32.0),
            row(4, 0.021, 3.9, 14.1, 32.0),
            row(5, 0.008, 4.9, 13.8, 32.0),
        ];
        match self {
            DemersTable::FeedbackCounter => &TABLE_1,
            DemersTable::BlindCoin => &TABLE_2,
        }
    }

    /// The rumor settings of this table's row `k` under `reading`.
    pub fn rumor(self, k: u32, reading: RumorReading) -> RumorConfig {
        let (feedback, loss) = match self {
            DemersTable::FeedbackCounter => (Feedback::Feedback, LossOfInterest::Counter(k)),
            DemersTable::BlindCoin => (Feedback::Blind, LossOfInterest::Coin(k)),
        };
        RumorConfig {
            direction: RumorDirection::Push,
            feedback,
            loss,
            anti_entropy_every: 0,
            reading,
        }
    }

    /// The simulation of this table's row `k` under `reading`: n = 1000, complete graph, fanout
    /// 1, synchronous cycles, no faults.
    pub fn config(self, k: u32, reading: RumorReading) -> SimConfig {
        SimConfig {
            nodes: Self::NODES,
            protocol: Protocol::Rumor(self.rumor(k, reading)),
            ..SimConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_obey_the_papers_own_relation_s_about_e_to_the_minus_m() {
        // A sanity check on the transcription: for push, s ≈ e^{-m} (the paper, §1.4).
        for t in DemersTable::ALL {
            for r in t.rows() {
                let ratio = r.residue / (-r.traffic).exp();
                assert!(
                    (0.7..1.3).contains(&ratio),
                    "table {} k {}",
                    t.number(),
                    r.k
                );
            }
        }
        let c = DemersTable::BlindCoin.config(3, RumorReading::Demers87);
        assert_eq!(c.nodes, 1_000);
        assert!(c.validate().is_ok());
    }
}
