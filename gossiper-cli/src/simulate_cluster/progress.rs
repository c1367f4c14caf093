//! The progress line on a terminal and each run's wall time, fed by the runs' ticks; neither
//! can change a result.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gossiper_sim::Stat;
use gossiper_sim::cluster::ClusterTick;

/// Each run's progress and wall time, fed by the runs' ticks (from their worker threads).
pub(super) struct RunWatch {
    runs: usize,
    duration_ms: u64,
    done: AtomicUsize,
    /// Virtual ms each run reached; `u64::MAX` before it starts.
    at_ms: Vec<AtomicU64>,
    /// When each run started, then its wall ms.
    wall: Mutex<Vec<(Option<Instant>, f64)>>,
}

impl RunWatch {
    pub(super) fn new(runs: usize, duration_ms: u64) -> RunWatch {
        RunWatch {
            runs,
            duration_ms,
            done: AtomicUsize::new(0),
            at_ms: (0..runs).map(|_| AtomicU64::new(u64::MAX)).collect(),
            wall: Mutex::new(vec![(None, f64::NAN); runs]),
        }
    }

    pub(super) fn tick(&self, t: ClusterTick) {
        match t {
            ClusterTick::At(i, ms) => self.at_ms[i].store(ms, Ordering::Relaxed),
            ClusterTick::Started(i) => {
                self.at_ms[i].store(0, Ordering::Relaxed);
                self.wall.lock().unwrap_or_else(|e| e.into_inner())[i].0 = Some(Instant::now());
            }
            ClusterTick::Done(i) => {
                self.at_ms[i].store(u64::MAX, Ordering::Relaxed);
                let mut wall = self.wall.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(t0) = wall[i].0 {
                    wall[i].1 = t0.elapsed().as_secs_f64() * 1e3;
                }
                drop(wall);
                self.done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The progress line: runs done, and the virtual time the runs in progress reached.
    pub(super) fn line(&self) -> String {
        let running: Vec<u64> = self
            .at_ms
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&a| a != u64::MAX)
            .collect();
        let mut line = format!(
            "simulate-cluster: {}/{} runs done",
            self.done.load(Ordering::Relaxed),
            self.runs
        );
        if let (Some(lo), Some(hi)) = (running.iter().min(), running.iter().max()) {
            let s = |ms: u64| format!("{:.1}", ms as f64 / 1e3);
            let (lo, hi) = (s(*lo), s(*hi));
            let reached = if lo == hi { lo } else { format!("{lo}-{hi}") };
            line.push_str(&format!(
                ", virtual time {reached} s of {} s",
                s(self.duration_ms)
            ));
        }
        line
    }

    /// Redraws the progress line on stderr five times a second until `stop` hangs up, then
    /// clears it.
    pub(super) fn show(&self, stop: &mpsc::Receiver<()>) {
        let mut err = std::io::stderr();
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            stop.recv_timeout(Duration::from_millis(200))
        {
            let _ = write!(err, "\r\x1b[2K{}", self.line());
            let _ = err.flush();
        }
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }

    /// Each run's wall ms per virtual second, summarised.
    pub(super) fn wall_ms_per_virtual_s(&self) -> Stat {
        let seconds = self.duration_ms as f64 / 1e3;
        let wall = self.wall.lock().unwrap_or_else(|e| e.into_inner());
        Stat::of(wall.iter().map(|&(_, ms)| ms / seconds))
    }
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), bytes; `None` where
/// the system does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
