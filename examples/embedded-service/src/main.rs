//! Three gossiper nodes embedded in one tokio program: they find each other over loopback UDP,
//! a write at one reaches the others through their key subscriptions, and all three leave
//! gracefully. Run it with `cargo run -p embedded-service`.
//!
//! In a real service each process starts one node (the same builder, a reachable address, a
//! few peers as seeds) and keeps its handle, cheap to clone, for as long as it runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gossiper_agent::{AgentBuilder, AgentError, AgentHandle, KeyFilter};
use gossiper_cluster::{ClusterConfig, MemberInfo, MemberStatus::Alive};

/// Every wait is bounded: a demo must not hang.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Starts one node on a free loopback port (port 0: the OS picks one, and peers are told the
/// real one), joining through `seed` if given: any one member is enough. Generation 0 makes
/// the builder use the wall clock, so a restarted node supersedes its previous run.
async fn start(name: &str, seed: Option<&AgentHandle>) -> Result<AgentHandle, AgentError> {
    let mut config = ClusterConfig::new(name, SocketAddr::from(([127, 0, 0, 1], 0)), 0);
    config.seeds.extend(seed.map(AgentHandle::gossip_addr));
    AgentBuilder::new(config).start().await
}

// One node needs no more than a current-thread runtime; three share one here.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let first = start("node-0", None).await?;
    let second = start("node-1", Some(&first)).await?;
    let others = [second, start("node-2", Some(&first)).await?];
    // The membership watch: wait until every node sees all three alive.
    let all_alive = |m: &Arc<[MemberInfo]>| m.iter().filter(|m| m.status == Alive).count() == 3;
    for node in others.iter().chain([&first]) {
        tokio::time::timeout(TIMEOUT, node.membership().wait_for(all_alive)).await??;
    }
    // Subscribe before writing, so the change cannot slip past: node-0's keys under "config/".
    let filter = KeyFilter::prefix("config/").on_node("node-0");
    let mut subscriptions = others.each_ref().map(|n| n.subscribe(filter.clone()));
    first.set("config/colour", "blue").await?;
    for (node, subscription) in others.iter().zip(&mut subscriptions) {
        // A change carries its owner, key, version and new value (None: deleted).
        let change = tokio::time::timeout(TIMEOUT, subscription.recv()).await??;
        let (key, owner) = (change.key, change.node);
        let value = String::from_utf8_lossy(change.value.as_deref().unwrap_or_default());
        println!("{} saw {key} = {value} from {owner}", node.name());
    }
    for m in first.members().await? {
        println!("{} at {:?} is {}", m.name, m.addr, m.status.name());
    }
    // A graceful leave: the others record "left", not "dead".
    for node in others.iter().chain([&first]) {
        node.shutdown().await;
    }
    println!("all three nodes left");
    Ok(())
}
