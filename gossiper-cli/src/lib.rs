//! The `gossiper` command line, as a library.
//!
//! `main.rs` is three lines; everything lives here so that another binary (see
//! `examples/custom-strategy`) can run the same demo with its own neighbour selector and
//! interval. Each subcommand has a module of its own; this file only parses and dispatches.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub mod agent;
pub mod client;
pub mod cluster;
pub mod demo;
pub mod detector;
mod exit;
pub mod keygen;
pub mod keys;
pub mod logging;
pub mod memberlist;
pub mod query;
pub mod sim_flags;
pub mod simulate;
pub mod simulate_cluster;

pub use exit::{CliError, ExitStatus};

/// Gossip protocols you can watch, measure and run.
///
/// With no subcommand, runs the demo: a small cluster of in-process nodes gossiping until they
/// agree, printing every node's state as it goes.
#[derive(Debug, Parser)]
#[command(name = "gossiper", version, propagate_version = true, long_about = None)]
#[command(about = "Gossip protocols you can watch (the demo), measure (simulate) and run (agent).")]
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
    /// Run a cluster agent over UDP with its HTTP API (leaves gracefully on SIGINT/SIGTERM).
    Agent(agent::AgentArgs),
    /// List an agent's members and their status.
    Members(client::ApiArgs),
    /// Set a key on an agent.
    Set(client::SetArgs),
    /// Read a node's key through an agent (optionally a blocking query).
    Get(client::GetArgs),
    /// Delete a key on an agent.
    Delete(client::DeleteArgs),
    /// Start a local cluster of agents as child processes.
    Cluster(cluster::ClusterArgs),
    /// Write a new cluster key file (mode 0600) for --key-file.
    Keygen(keygen::KeygenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Measure a protocol on many simulated nodes (deterministic, with faults).
    Simulate(simulate::SimulateArgs),
    /// Measure the cluster protocol (membership, failure detection) on simulated nodes.
    SimulateCluster(simulate_cluster::SimulateClusterArgs),
    /// Send a Serf user event through a `--protocol memberlist` agent.
    Event(memberlist::EventArgs),
    /// Ask a Serf query through a `--protocol memberlist` agent, as `serf query` does.
    Query(query::QueryArgs),
    /// Install, use, remove or list the cluster's encryption keys through a
    /// `--protocol memberlist` agent, as `serf keys` does.
    Keys(keys::KeysArgs),
    // Further subcommands are added here, one line each, with a module of their own.
}

/// Parses `args`, runs the chosen command with the built-in strategies, prints any error as one
/// line on stderr, and returns the exit code. `main.rs` is just this.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    main_with_strategies(args, &demo::Strategies::builtin())
}

/// [`main_with_args`] with your own neighbour selector and gossip interval: what a binary of
/// your own calls after building its [`demo::Strategies`] (see `examples/custom-strategy`).
pub fn main_with_strategies<I, T>(args: I, strategies: &demo::Strategies) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let (cli, matches) = match parse::<Cli, _, _>(args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    // The agent sets up its own logging once it has read its settings.
    if !matches!(cli.command, Some(Command::Agent(_))) {
        init_logging();
    }
    let result = match cli.command {
        None => demo::run(&cli.demo, strategies),
        Some(Command::Demo(args)) => demo::run(&args, strategies),
        Some(Command::Agent(args)) => match matches.subcommand_matches("agent") {
            Some(m) => agent::run(args, m),
            None => Err(CliError::failure("the agent's arguments went missing")),
        },
        Some(Command::Members(args)) => client::members(&args),
        Some(Command::Set(args)) => client::set(&args),
        Some(Command::Get(args)) => client::get(&args),
        Some(Command::Delete(args)) => client::delete(&args),
        Some(Command::Cluster(args)) => cluster::run(&args),
        Some(Command::Keygen(args)) => keygen::run(&args),
        Some(Command::Event(args)) => memberlist::event(&args),
        Some(Command::Query(args)) => query::run(&args),
        Some(Command::Keys(args)) => keys::run(&args),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "gossiper", &mut script);
            // Into a buffer first: a closed stdout must not panic inside the generator.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(())
        }
        Some(Command::Simulate(args)) => simulate::run(&args),
        Some(Command::SimulateCluster(args)) => simulate_cluster::run(&args),
    };
    exit::report(result)
}

/// The `gossiperd` binary: `gossiper agent` as a program of its own, with the same flags,
/// variables and config keys. It links only the agent, so it keeps less code resident than the
/// `gossiper` binary, which also holds the demo and both simulators (docs/benchmarks.md has
/// the resident memory of each).
#[derive(Debug, Parser)]
#[command(name = "gossiperd", version, long_about = None)]
#[command(
    about = "The gossiper agent: one cluster member over UDP with its HTTP API (the same as `gossiper agent`)."
)]
pub struct DaemonCli {
    /// The agent's options, as `gossiper agent` takes them.
    #[command(flatten)]
    pub agent: agent::AgentArgs,
}

/// Parses `args` as `gossiperd` does, runs the agent, and returns the exit code: what
/// `src/bin/gossiperd.rs` calls.
pub fn daemon_main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match parse::<DaemonCli, _, _>(args) {
        Ok((cli, matches)) => exit::report(agent::run(cli.agent, &matches)),
        Err(code) => code,
    }
}

/// Parses `args` into `C` and its matches; on `--help`/`--version` prints them and returns
/// success, on a usage error prints it as one line and returns its exit code (2).
fn parse<C, I, T>(args: I) -> Result<(C, clap::ArgMatches), ExitCode>
where
    C: CommandFactory + FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = C::command()
        .try_get_matches_from(args)
        .and_then(|m| C::from_arg_matches(&m).map(|cli| (cli, m)));
    match parsed {
        Ok(parsed) => Ok(parsed),
        Err(e) if e.exit_code() == 0 => {
            // --help and --version: clap prints them to stdout.
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            // A usage error: one line on stderr like every other error, exit 2.
            eprintln!("gossiper: {}", one_line(&e.render().to_string()));
            Err(ExitCode::from(e.exit_code().clamp(1, 255) as u8))
        }
    }
}

/// Folds clap's multi-line usage error into one line: the reason and any hint, without the
/// usage block and the "for more information" footer.
fn one_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(if part.starts_with('[') { " " } else { "; " });
        }
        out.push_str(part);
    }
    out
}

/// Logs go to stderr through `env_logger`, filtered by `RUST_LOG` (default: warnings only).
pub fn init_logging() {
    init_logging_as("warn", agent::LogFormat::Text);
}

/// [`init_logging`] with another default filter, as text or as one JSON object a line
/// (`{"ts", "level", "target", "msg"}`).
pub fn init_logging_as(default_filter: &str, format: agent::LogFormat) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| default_filter.to_owned());
    logging::init(&filter, format);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fold_into_one_line() {
        let err = Cli::try_parse_from(["gossiper", "--selector", "nope"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("invalid value 'nope' for '--selector"),
            "{line}"
        );
        assert!(
            line.contains("round-robin"),
            "names the possible values: {line}"
        );
        let err = Cli::try_parse_from(["gossiper", "--nodez", "3"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(
            line.contains("'--nodez'") && line.contains("--nodes"),
            "{line}"
        );
    }
}

/// The README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
