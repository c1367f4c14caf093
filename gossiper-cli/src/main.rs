//! The `gossiper` binary: parse arguments, run, turn errors into a one-line message and an exit
//! code. Everything else lives in the `gossiper_cli` library so other binaries can reuse it.

use std::process::ExitCode;

fn main() -> ExitCode {
    gossiper_cli::main_with_args(std::env::args_os())
}
