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
use crate::sim::{SimError, run};

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
    config.validate()?;
    run_indexed(runs, threads, progress, &|i| {
        run::<S>(config, run_seed(master, i))
    })
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
    let threads = threads.clamp(1, runs.max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, SimError>>>> =
        Mutex::new((0..runs).map(|_| None).collect());
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
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(unreachable_run))
        .collect()
}

/// Every index below `runs` is claimed by exactly one worker before the scope ends.
fn unreachable_run<T>() -> Result<T, SimError> {
    Err(SimError::Config(crate::config::ConfigError(
        "internal error: a run did not report".into(),
    )))
}

/// The number of threads to use by default: the machine's available parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
