//! One push-pull exchange between two engines holding 100 keys each: the engine's hot path.
//!
//! `cargo bench -p gossiper-node` reports ns per exchange for two cases, and before timing
//! prints how many heap allocations one exchange makes (counted by an instrumented global
//! allocator), so "the steady path allocates nothing" is a measured claim.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gossiper_network::{FixedInterval, UniformRandom};
use gossiper_node::{Mode, Node, NodeConfig, Outbox, Peers};
use gossiper_types::{KvMap, NodeId, Time};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type KvNode = Node<KvMap, UniformRandom, FixedInterval>;

/// Two engines that both hold the same 100 keys (50 written by each).
fn pair() -> (KvNode, KvNode) {
    let config = NodeConfig {
        mode: Mode::PushPull,
        push_on_write: false,
        ..NodeConfig::default()
    };
    let every = FixedInterval::new(Duration::from_millis(100)).expect("positive interval");
    let mut a = Node::new(NodeId(0), config, KvMap::new(), UniformRandom, every, 1);
    let mut b = Node::new(NodeId(1), config, KvMap::new(), UniformRandom, every, 2);
    a.set_peers(Peers::Complete { n: 2 });
    b.set_peers(Peers::Complete { n: 2 });
    let mut out = Outbox::new();
    for i in 0..50 {
        a.write(Time::ZERO, &mut out, |s| {
            s.set(NodeId(0), &format!("a-key-{i:02}"), vec![i; 32])
        });
        b.write(Time::ZERO, &mut out, |s| {
            s.set(NodeId(1), &format!("b-key-{i:02}"), vec![i; 32])
        });
    }
    // 100 entries of ~45 bytes need a few 1,400-byte datagrams: exchange until in sync.
    let mut bufs = Buffers::default();
    for _ in 0..20 {
        exchange(&mut a, &mut b, &mut bufs);
    }
    assert!(a.state() == b.state(), "warm-up exchanges sync the pair");
    (a, b)
}

/// Caller-owned outboxes, reused across exchanges as a runtime would.
#[derive(Default)]
struct Buffers {
    to_b: Outbox,
    to_a: Outbox,
}

/// A starts a round; messages bounce until nobody has anything to say. Returns bytes moved.
fn exchange(a: &mut KvNode, b: &mut KvNode, bufs: &mut Buffers) -> usize {
    let mut moved = 0;
    bufs.to_b.clear();
    a.gossip_now(Time::ZERO, &mut bufs.to_b);
    while !bufs.to_b.is_empty() {
        bufs.to_a.clear();
        for (_, bytes) in bufs.to_b.iter() {
            moved += bytes.len();
            let _ = b.handle_message(Time::ZERO, NodeId(0), bytes, &mut bufs.to_a);
        }
        bufs.to_b.clear();
        for (_, bytes) in bufs.to_a.iter() {
            moved += bytes.len();
            let _ = a.handle_message(Time::ZERO, NodeId(1), bytes, &mut bufs.to_b);
        }
    }
    moved
}

fn count_allocations(label: &str, mut f: impl FnMut()) {
    f(); // warm caches and buffers
    let region = Region::new(GLOBAL);
    const RUNS: usize = 1_000;
    for _ in 0..RUNS {
        f();
    }
    let stats = region.change();
    println!(
        "{label}: {:.2} allocations and {:.1} bytes allocated per exchange (over {RUNS})",
        stats.allocations as f64 / RUNS as f64,
        stats.bytes_allocated as f64 / RUNS as f64
    );
}

fn bench(c: &mut Criterion) {
    let (mut a, mut b) = pair();
    let mut bufs = Buffers::default();
    count_allocations("in-sync push-pull (100 keys)", || {
        black_box(exchange(&mut a, &mut b, &mut bufs));
    });
    c.bench_function("push-pull exchange, 100 keys, in sync", |bench| {
        bench.iter(|| black_box(exchange(&mut a, &mut b, &mut bufs)))
    });

    // One fresh write per exchange: the update travels in the SynAck.
    let mut i = 0u8;
    let mut fresh = |a: &mut KvNode, b: &mut KvNode, bufs: &mut Buffers| {
        i = i.wrapping_add(1);
        let mut sink = Outbox::new();
        b.write(Time::ZERO, &mut sink, |s| {
            s.set(NodeId(1), "b-key-00", vec![i; 32])
        });
        exchange(a, b, bufs)
    };
    // The local write alone, to tell its allocations from the exchange's.
    let mut j = 0u8;
    let mut solo = pair().1;
    count_allocations("a local write alone (included below)", || {
        j = j.wrapping_add(1);
        let mut sink = Outbox::new();
        solo.write(Time::ZERO, &mut sink, |s| {
            s.set(NodeId(1), "b-key-00", vec![j; 32])
        });
    });
    count_allocations("one fresh key per push-pull (100 keys)", || {
        black_box(fresh(&mut a, &mut b, &mut bufs));
    });
    c.bench_function("push-pull exchange, 100 keys, one fresh key", |bench| {
        bench.iter(|| black_box(fresh(&mut a, &mut b, &mut bufs)))
    });
    assert!(a.state() == b.state(), "fresh keys all arrived");
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
