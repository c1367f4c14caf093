//! The flags, grammars and printing that `simulate` and `simulate-cluster` share.
//!
//! Both commands flatten [`FaultArgs`] (latency, loss, duplication, reordering, partition,
//! crash and churn schedules) and [`RunArgs`] (runs, seed, threads, format), so every flag has
//! one spelling, one grammar and one help text; neither command borrows helpers from the other.

mod faults;
mod parse;
pub(crate) mod plot;
mod report;
mod runs;

pub use faults::FaultArgs;
pub(crate) use parse::{parse_duration_us, parse_interval, parse_seconds};
pub(crate) use report::{csv_num, csv_text, failure_with, json_head, push_stat_table, stat_json};
pub use runs::{Format, RunArgs};
