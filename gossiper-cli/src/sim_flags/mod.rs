//! The flags, grammars and printing that `simulate` and `simulate-cluster` share.
//!
//! Both commands flatten [`FaultArgs`] (latency, loss, duplication, reordering, partition,
//! crash and churn schedules), [`RunArgs`] (runs, seed, threads, format) and [`HtmlArgs`]
//! (`--html`, the report page), so every flag has
//! one spelling, one grammar and one help text; neither command borrows helpers from the other.

mod faults;
pub(crate) mod html;
mod parse;
pub(crate) mod plot;
mod report;
mod runs;

pub use faults::FaultArgs;
pub use html::HtmlArgs;
pub(crate) use parse::{parse_duration, parse_duration_us, parse_interval, parse_seconds};
pub(crate) use report::{csv_num, csv_text, failure_with, json_head, push_stat_table, stat_json};
pub use runs::{Format, RunArgs};
