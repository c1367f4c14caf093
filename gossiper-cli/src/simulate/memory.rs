//! Refusing a batch too large for the machine before anything is allocated.

use gossiper_sim::SimConfig;
use gossiper_types::Register;

use crate::CliError;

/// Refuses, with one line, a batch whose runs would not fit in the memory available: each of
/// the `threads` workers holds one run's nodes at a time.
pub(crate) fn check_memory(
    config: &SimConfig,
    runs: usize,
    threads: Option<usize>,
) -> Result<(), CliError> {
    let threads = threads
        .unwrap_or_else(gossiper_sim::default_threads)
        .min(runs)
        .max(1) as u64;
    let per_run = gossiper_sim::memory::run_bytes::<Register<u64>>(config);
    let need = per_run.saturating_mul(threads);
    let Some(available) = available_memory() else {
        return Ok(());
    };
    if need <= available {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    let fix = if threads > 1 && per_run <= available {
        "use --threads 1 or fewer --nodes"
    } else {
        "use fewer --nodes"
    };
    Err(CliError::usage(format!(
        "--nodes {} needs about {:.1} GiB ({threads} thread(s) x {:.1} GiB per run) but {:.1} GiB \
         of memory is available; {fix}",
        config.nodes,
        gib(need),
        gib(per_run),
        gib(available)
    )))
}

/// The memory the kernel says is available (`MemAvailable` in `/proc/meminfo`), if it says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
