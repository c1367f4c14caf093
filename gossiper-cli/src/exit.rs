//! Errors and exit codes: every failure becomes one line on stderr and a code that means something.

use std::fmt;
use std::process::ExitCode;

/// What a command's exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done (the demo converged).
    Success = 0,
    /// 1: the run failed at runtime (I/O error, unreachable API, ...).
    Failure = 1,
    /// 2: bad arguments (clap uses 2 as well).
    Usage = 2,
    /// 3: the run ended before its goal (the demo did not converge in `--max-duration`).
    NotConverged = 3,
}

/// An error a command reports as one line, with the exit status it implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Which exit code to use.
    pub status: ExitStatus,
    /// The one-line reason.
    pub message: String,
}

impl CliError {
    /// A bad-argument error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            status: ExitStatus::Usage,
            message: message.into(),
        }
    }

    /// A runtime failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Self {
        CliError {
            status: ExitStatus::Failure,
            message: message.into(),
        }
    }

    /// Whoever read our output went away (`gossiper ... | head`): stop quietly with exit 0, as
    /// Unix filters do.
    pub fn output_closed() -> Self {
        CliError {
            status: ExitStatus::Success,
            message: String::new(),
        }
    }

    /// An error writing to stdout: a closed pipe stops quietly, anything else is a failure.
    pub fn from_output(e: &std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::output_closed()
        } else {
            CliError::failure(format!("cannot write output: {e}"))
        }
    }

    /// The goal was not reached in time (exit 3).
    pub fn not_converged(message: impl Into<String>) -> Self {
        CliError {
            status: ExitStatus::NotConverged,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Prints an error as `gossiper: <reason>` and maps the result to an exit code.
pub fn report(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("gossiper: {}", e.message);
            }
            ExitCode::from(e.status as u8)
        }
    }
}
