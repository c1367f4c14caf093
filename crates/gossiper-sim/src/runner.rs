//! Many independent runs, spread over the machine's cores, gathered in run order.
//!
//! Run `i` uses seed `master + i`, so any single run can be replayed alone with
//! `--runs 1 --seed <its seed>`. Workers take run indices from a shared counter, but every
//! result is stored at its index, so the output never depends on thread scheduling.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::SimConfig;
use crate::metrics::RunReport;
use crate::replica::Replica;
use crate::sim::{SimError, run_threaded};

/// The seed of run `index` of a batch started with `master`.
pub fn run_seed(master: u64, index: usize) -> u64 {
    master.wrapping_add(index as u64)
}

/// Runs `runs` simulations of `config` on up to `threads` threads (at least one), calling
/// `progress` after each run finishes. Returns the reports in run order, or the error of the
/// lowest-numbered failing run.
pub fn run_many<S: Replica>(
    config: &SimConfig,
    master: u64,
    runs: usize,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<RunReport>, SimError> {
    run_each::<S>(config, master, runs, threads, progress)?
        .into_iter()
        .collect()
}

/// Like [`run_many`], but keeps every run's outcome, failed or not, in run order: a batch with
/// one failing run still has the others' results (and the failed run's own measures, when it
/// ran to its end: [`SimError::report`]). Fails only when the configuration is refused.
///
/// Runs go to the threads first; when there are fewer runs than threads, each run spreads its
/// synchronous rounds over the threads left ([`run_threaded`]), which changes nothing in its
/// report.
pub fn run_each<S: Replica>(
    config: &SimConfig,
    master: u64,
    runs: usize,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<Result<RunReport, SimError>>, SimError> {
    config.validate()?;
    let outer = threads.clamp(1, runs.max(1));
    let inner = (threads / outer).max(1);
    Ok(run_indexed_each(runs, outer, progress, &|i| {
        run_threaded::<S>(config, run_seed(master, i), inner)
    }))
}

/// Calls `one(i)` for every `i` in `0..runs` on up to `threads` threads (at least one), calling
/// `progress` after each call returns. Returns the results in index order, or the error of the
/// lowest-numbered failing call. The simulator's runs and the cluster simulator's share it.
pub fn run_indexed<T: Send>(
    runs: usize,
    threads: usize,
    progress: &(dyn Fn() + Sync),
    one: &(dyn Fn(usize) -> Result<T, SimError> + Sync),
) -> Result<Vec<T>, SimError> {
    run_indexed_each(runs, threads, progress, one)
        .into_iter()
        .collect()
}

/// Calls `one(i)` for every `i` in `0..runs` on up to `threads` threads (at least one), calling
/// `progress` after each call returns, and returns every result in index order.
pub fn run_indexed_each<T: Send>(
    runs: usize,
    threads: usize,
    progress: &(dyn Fn() + Sync),
    one: &(dyn Fn(usize) -> T + Sync),
) -> Vec<T> {
    let threads = threads.clamp(1, runs.max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..runs).map(|_| None).collect());
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= runs {
                break;
            }
            let r = one(i);
            results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            progress();
        }
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // Every index below `runs` is claimed by exactly one worker, and `one` returned for each
    // before the scope ended (a panic in `one` propagates out of the scope instead).
    results.into_iter().flatten().collect()
}

/// The number of threads to use by default: the machine's available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// [`run_each`] for the one-`u64`-register state the `gossiper simulate` command measures,
/// monomorphized here rather than in the command-line crate: that crate is optimized for size
/// (so the agent keeps less code resident), and the simulator's hot loop must be compiled with
/// this crate's optimization (callgrind, `--nodes 100000`: 3,314 M instructions when the CLI
/// instantiated it at `opt-level = "s"`, 2,662 M at 3).
#[inline(never)]
pub fn run_each_register(
    config: &SimConfig,
    master: u64,
    runs: usize,
    threads: usize,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<Result<RunReport, SimError>>, SimError> {
    run_each::<gossiper_types::Register<u64>>(config, master, runs, threads, progress)
}
