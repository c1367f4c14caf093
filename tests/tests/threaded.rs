//! The threaded runtime at scale: 100 nodes, one thread each, converge in every mode.

use std::time::{Duration, Instant};

use gossiper_network::{InMemoryNetwork, JitterInterval, UniformRandom};
use gossiper_node::runtime::threaded::Cluster;
use gossiper_node::{Mode, Node, NodeConfig, Peers};
use gossiper_types::{KvMap, NodeId};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const NODES: u64 = 100;
const WRITES: u64 = 10;

fn cluster(mode: Mode) -> Cluster<KvMap, UniformRandom, JitterInterval> {
    let config = NodeConfig {
        mode,
        push_on_write: true,
        ..NodeConfig::default()
    };
    let every = JitterInterval::new(Duration::from_millis(10), Duration::from_millis(30))
        .expect("valid interval");
    let nodes = (0..NODES)
        .map(|i| {
            let id = NodeId(i);
            let mut state = KvMap::new();
            state.set(
                id,
                &format!("node-{i}"),
                format!("hello from {i}").into_bytes(),
            );
            let mut node = Node::new(id, config, state, UniformRandom, every, 1_000 + i);
            node.set_peers(Peers::Complete { n: NODES });
            node
        })
        .collect();
    Cluster::spawn(nodes, InMemoryNetwork::new(1_400)).expect("cluster starts")
}

#[test]
fn a_hundred_threads_converge_in_every_mode() {
    for mode in [Mode::Push, Mode::Pull, Mode::PushPull] {
        let cluster = cluster(mode);
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        for w in 0..WRITES {
            let at = NodeId(rng.random_range(0..NODES));
            cluster
                .write(at, move |s: &mut KvMap| {
                    s.set(at, &format!("write-{w}"), b"news".to_vec());
                })
                .expect("node running");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let agreed = loop {
            if cluster.writes_applied() == WRITES && cluster.converged() {
                let snaps = cluster.snapshots();
                if snaps.windows(2).all(|w| w[0].state == w[1].state) {
                    break snaps;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{mode}: 100 nodes did not converge in 30 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = cluster.elapsed();
        assert_eq!(agreed.len(), NODES as usize);
        assert_eq!(
            agreed[0]
                .state
                .as_deref()
                .expect("every node shares its state")
                .len(),
            (NODES + WRITES) as usize,
            "{mode}: every key everywhere"
        );
        let totals = cluster.totals();
        let nodes = cluster.stop().expect("threads join");
        assert_eq!(nodes.len(), NODES as usize);
        assert_eq!(totals.dropped.total(), 0, "{mode}: datagrams dropped");
        eprintln!(
            "{mode}: converged in {elapsed:?}, {} rounds, {} messages",
            totals.rounds, totals.messages_sent
        );
    }
}
