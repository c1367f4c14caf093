//! Engine-node-rounds per second: whole synchronous push-pull runs on the complete graph, one
//! update to convergence, at 10^4 and 10^5 nodes (10^6: `--example scale`, see
//! docs/benchmarks.md). Criterion's throughput line ("elem/s") is node-rounds per second: nodes
//! × rounds of the run, each a real engine round plus the messages it causes.
//!
//! ```text
//! cargo bench -p gossiper-sim
//! ```
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gossiper_node::Mode;
use gossiper_sim::{SimConfig, run};
use gossiper_types::Register;

fn node_rounds(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_push_pull_run");
    group.sample_size(10);
    for n in [10_000usize, 100_000] {
        let config = SimConfig {
            nodes: n,
            mode: Mode::PushPull,
            ..SimConfig::default()
        };
        // The seed fixes the run, so its round count is known before timing it.
        let rounds = run::<Register<u64>>(&config, 1).map_or(0.0, |r| r.rounds);
        group.throughput(Throughput::Elements((n as f64 * rounds) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &config, |b, config| {
            b.iter(|| run::<Register<u64>>(config, 1).map(|r| r.rounds))
        });
    }
    group.finish();
}

criterion_group!(benches, node_rounds);
criterion_main!(benches);
