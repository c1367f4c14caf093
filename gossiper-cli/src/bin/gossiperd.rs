//! The `gossiperd` binary: `gossiper agent` alone, for running the agent as a service. It
//! holds only the agent's code, so it keeps less of itself resident (see
//! `gossiper_cli::DaemonCli`).

use std::process::ExitCode;

fn main() -> ExitCode {
    gossiper_cli::daemon_main_with_args(std::env::args_os())
}
