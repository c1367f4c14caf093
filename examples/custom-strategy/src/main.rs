//! The gossiper demo with strategies of your own: the way a user plugs them in.
//!
//! `gossiper_cli` runs the whole demo (flags, cluster, table, exit codes); all a binary of its
//! own has to say is how each node gets its neighbour selector and its gossip interval. Here
//! every node keeps its partners for [`KEEP_ROUNDS`] rounds ([`strategies::StickyPartners`]) and
//! gossips with delays that start at `--min-ms` and double up to `--max-ms`
//! ([`strategies::SlowStart`]). Every other flag means what it means for `gossiper`:
//!
//! ```text
//! cargo run -p custom-strategy -- --nodes 20 --format json
//! ```

mod strategies;

use std::process::ExitCode;
use std::time::Duration;

use gossiper_cli::CliError;
use gossiper_cli::demo::Strategies;

use crate::strategies::{SlowStart, StickyPartners};

/// How many rounds a node keeps the same partners.
const KEEP_ROUNDS: u32 = 3;

fn main() -> ExitCode {
    let strategies = Strategies::builtin()
        // Called once per node, with its id and the parsed flags.
        .with_selector(|_id, _args| Ok(Box::new(StickyPartners::new(KEEP_ROUNDS))))
        .with_interval(|_id, args| {
            let first = Duration::from_millis(args.min_ms);
            let steady = Duration::from_millis(args.max_ms);
            match SlowStart::new(first, steady) {
                Ok(interval) => Ok(Box::new(interval)),
                // A usage error: printed as one line, exit code 2.
                Err(e) => Err(CliError::usage(format!("--min-ms/--max-ms: {e}"))),
            }
        });
    gossiper_cli::main_with_strategies(std::env::args_os(), &strategies)
}
