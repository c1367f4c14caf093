//! The `gossiper` command line, as a library.
//!
//! `main.rs` is three lines; everything lives here so that another binary (see
//! `examples/custom-strategy`) can run the same demo with its own neighbour selector and
//! interval. Each subcommand has a module of its own; this file only parses and dispatches.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod demo;
mod exit;

pub use exit::{CliError, ExitStatus};

/// Gossip protocols you can watch, measure and run.
///
/// With no subcommand, runs the demo: a small cluster of in-process nodes gossiping until they
/// agree, printing every node's state as it goes.
#[derive(Debug, Parser)]
#[command(name = "gossiper", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to run; the demo when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Demo options (when no subcommand is given).
    #[command(flatten)]
    pub demo: demo::DemoArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the in-process demo (the default).
    Demo(demo::DemoArgs),
    // Further subcommands are added here, one line each, with a module of their own.
}

/// Parses `args`, runs the chosen command with the built-in strategies, prints any error as one
/// line on stderr, and returns the exit code. `main.rs` is just this.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    init_logging();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let result = match cli.command {
        None => demo::run(&cli.demo, &demo::Strategies::builtin()),
        Some(Command::Demo(args)) => demo::run(&args, &demo::Strategies::builtin()),
    };
    exit::report(result)
}

/// Logs go to stderr through `env_logger`, filtered by `RUST_LOG` (default: warnings only).
pub fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .try_init();
}
