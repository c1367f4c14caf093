//! The embedding API, in process: real agents on loopback UDP in one tokio runtime, every wait
//! bounded.

use std::net::SocketAddr;
use std::time::Duration;

use gossiper_agent::{AgentBuilder, AgentError, AgentHandle, KeyFilter, RecvError};
use gossiper_cluster::{ClusterConfig, MemberStatus, WriteError};

const LIMIT: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn config(name: &str, seed: Option<&AgentHandle>) -> ClusterConfig {
    let mut c = ClusterConfig::new(name, loopback(), 0);
    c.interval_ms = 50;
    c.seeds.extend(seed.map(AgentHandle::gossip_addr));
    c
}

async fn cluster(n: usize) -> Vec<AgentHandle> {
    let first = AgentBuilder::new(config("n0", None))
        .seed(0)
        .start()
        .await
        .expect("start n0");
    let mut nodes = vec![first];
    for i in 1..n {
        let c = config(&format!("n{i}"), Some(&nodes[0]));
        nodes.push(
            AgentBuilder::new(c)
                .seed(i as u64)
                .start()
                .await
                .expect("start"),
        );
    }
    for node in &nodes {
        let mut members = node.membership();
        let settled =
            members.wait_for(|m| m.len() == n && m.iter().all(|m| m.status == MemberStatus::Alive));
        tokio::time::timeout(LIMIT, settled)
            .await
            .expect("membership settles")
            .expect("agent runs");
    }
    nodes
}

#[tokio::test(flavor = "current_thread")]
async fn subscriptions_see_only_their_node_and_prefix() {
    let nodes = cluster(3).await;
    let mut sub = nodes[2].subscribe(KeyFilter::prefix("svc/").on_node("n0"));
    let mut everything = nodes[2].subscribe(KeyFilter::all());
    nodes[0].set("other/x", "1").await.expect("set");
    nodes[1].set("svc/b", "2").await.expect("set");
    let v = nodes[0]
        .set("svc/a", b"\xff\x00bin".to_vec())
        .await
        .expect("set");
    let change = tokio::time::timeout(LIMIT, sub.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!(
        (change.node.as_str(), change.key.as_str(), change.version),
        ("n0", "svc/a", v)
    );
    assert_eq!(
        change.value.as_deref(),
        Some(&b"\xff\x00bin"[..]),
        "bytes intact"
    );
    let deleted = nodes[0].delete("svc/a").await.expect("delete");
    assert!(deleted.is_some_and(|d| d > v));
    let change = tokio::time::timeout(LIMIT, sub.recv())
        .await
        .expect("in time")
        .expect("event");
    assert_eq!((change.key.as_str(), change.value), ("svc/a", None));
    // The unfiltered subscription saw all four changes, in each owner's order.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let e = tokio::time::timeout(LIMIT, everything.recv())
            .await
            .expect("in time");
        let e = e.expect("event");
        seen.push(format!("{}:{}", e.node, e.key));
    }
    seen.sort();
    assert_eq!(seen, ["n0:other/x", "n0:svc/a", "n0:svc/a", "n1:svc/b"]);
    assert_eq!(
        nodes[2].get("n1", "svc/b").await.expect("get").as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(nodes[2].get("n0", "svc/a").await.expect("get"), None);
    let keys = nodes[2].keys("n0").await.expect("keys").expect("n0 known");
    assert_eq!(keys.len(), 1, "tombstones are not listed: {keys:?}");
    assert!(nodes[2].keys("nobody").await.expect("keys").is_none());
    for n in &nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_graceful_shutdown_is_seen_as_left_and_ends_subscriptions() {
    let nodes = cluster(2).await;
    let mut sub = nodes[0].subscribe(KeyFilter::all());
    nodes[1].shutdown().await;
    assert!(nodes[1].is_stopped());
    nodes[1].shutdown().await; // harmless twice
    assert!(matches!(
        nodes[1].set("k", "v").await,
        Err(AgentError::Stopped)
    ));
    assert!(matches!(nodes[1].members().await, Err(AgentError::Stopped)));
    let mut members = nodes[0].membership();
    let left = members.wait_for(|m| {
        m.iter()
            .any(|m| m.name == "n1" && m.status == MemberStatus::Left)
    });
    tokio::time::timeout(LIMIT, left)
        .await
        .expect("in time")
        .expect("runs");
    nodes[0].shutdown().await;
    let end = tokio::time::timeout(LIMIT, sub.recv())
        .await
        .expect("in time");
    assert_eq!(end, Err(RecvError::Closed));
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_every_handle_leaves_too() {
    let mut nodes = cluster(2).await;
    let gone = nodes.pop().expect("two");
    let watcher = gone.clone();
    drop(gone);
    assert!(!watcher.is_stopped(), "a clone keeps it running");
    drop(watcher);
    let mut members = nodes[0].membership();
    let left = members.wait_for(|m| {
        m.iter()
            .any(|m| m.name == "n1" && m.status == MemberStatus::Left)
    });
    tokio::time::timeout(LIMIT, left)
        .await
        .expect("in time")
        .expect("runs");
    nodes[0].shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn limits_and_bad_configurations_are_clear_errors() {
    let a = AgentBuilder::new(config("a", None))
        .max_value_bytes(100)
        .start()
        .await
        .expect("start");
    assert_eq!(a.info().max_value_bytes, 100);
    let e = a.set("k", vec![0; 101]).await.expect_err("too large");
    assert!(
        matches!(e, AgentError::ValueTooLarge { len: 101, max: 100 }),
        "{e}"
    );
    assert!(e.to_string().contains("limit of 100 bytes"), "{e}");
    assert!(a.set("k", vec![0; 100]).await.is_ok());
    let e = a.set("__name", "x").await.expect_err("reserved");
    assert!(matches!(e, AgentError::Write(WriteError::BadKey(_))), "{e}");
    a.shutdown().await;

    let e = AgentBuilder::new(config("b", None))
        .max_value_bytes(5_000)
        .start()
        .await
        .expect_err("too large for the MTU");
    assert!(
        matches!(e, AgentError::Config(_)) && e.to_string().contains("at most"),
        "{e}"
    );
    let unspecified = ClusterConfig::new("c", SocketAddr::from(([0, 0, 0, 0], 0)), 0);
    let e = AgentBuilder::new(unspecified)
        .start()
        .await
        .expect_err("no address");
    assert!(e.to_string().contains("--advertise"), "{e}");
    let mut bad = config("d", None);
    bad.fanout = 0;
    let e = AgentBuilder::new(bad).start().await.expect_err("fanout 0");
    assert!(matches!(e, AgentError::Config(_)), "{e}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_socket_the_caller_bound_is_the_one_used() {
    let socket = std::net::UdpSocket::bind(loopback()).expect("bind");
    let addr = socket.local_addr().expect("addr");
    let a = AgentBuilder::new(config("a", None))
        .socket(socket)
        .start()
        .await
        .expect("start");
    assert_eq!(a.gossip_addr(), addr);
    let mut c = config("b", None);
    c.seeds = vec![addr];
    let b = AgentBuilder::new(c).start().await.expect("start");
    let mut members = b.membership();
    let joined = members.wait_for(|m| m.iter().any(|m| m.name == "a" && m.addr == Some(addr)));
    tokio::time::timeout(LIMIT, joined)
        .await
        .expect("in time")
        .expect("runs");
    a.shutdown().await;
    b.shutdown().await;
}
