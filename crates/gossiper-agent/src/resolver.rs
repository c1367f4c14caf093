//! Seeds given by host name (`seed-1.internal:7946`, `localhost:7946`) are resolved again
//! shortly before every join attempt, and every address a name resolves to (IPv4 and IPv6) is
//! tried: a seed that moved, or a name that did not resolve yet when the agent started, is
//! still found. The lookups run here, in the runtime, on tokio's resolver (the blocking pool);
//! the sans-IO node only ever sees addresses ([`ClusterNode::set_seeds`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use gossiper_cluster::ClusterNode;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long before a join attempt its names are looked up.
const LEAD: Duration = Duration::from_millis(100);
/// Longest time between lookups of names that resolve to nothing.
const MAX_GAP: Duration = Duration::from_secs(10);
/// Longest wait for one name.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How a name is looked up: tokio's resolver, or a test's stand-in.
pub(crate) type Lookup =
    fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// tokio's resolver (the OS's, on the blocking pool).
fn os_lookup(name: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
    Box::pin(async move { Ok(tokio::net::lookup_host(name).await?.collect()) })
}

/// A join address as given: an address, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seed {
    Addr(SocketAddr),
    Name(String),
}

impl Seed {
    /// `HOST:PORT` with an IP (`[::1]:7946` for IPv6) or a host name; `Err` says what is wrong.
    pub(crate) fn parse(s: &str) -> Result<Seed, String> {
        let s = s.trim();
        if let Ok(addr) = s.parse() {
            return Ok(Seed::Addr(addr));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!("join address {s:?} is not HOST:PORT"));
        };
        if port.parse::<u16>().is_err() {
            return Err(format!("join address {s:?} has no valid port"));
        }
        let name_like = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !name_like {
            return Err(format!(
                "join address {s:?}: {host:?} is neither an IP nor a host name"
            ));
        }
        Ok(Seed::Name(s.to_owned()))
    }
}

/// The join seeds of one agent, with the lookup in flight if any.
#[derive(Debug)]
pub(crate) struct Resolver {
    seeds: Vec<Seed>,
    running: Option<JoinHandle<Vec<SocketAddr>>>,
    /// No lookup starts before this (at most one per gossip interval, fewer while lookups
    /// find nothing).
    not_before: Instant,
    min_gap: Duration,
    /// Lookups in a row that found no address.
    empty: u32,
    pub(crate) lookup: Lookup,
}

impl Resolver {
    /// A resolver for `seeds`, or `None` when none is a name (the node has them all then).
    pub(crate) fn new(seeds: Vec<Seed>, interval: Duration) -> Option<Resolver> {
        seeds
            .iter()
            .any(|s| matches!(s, Seed::Name(_)))
            .then(|| Resolver {
                seeds,
                running: None,
                not_before: Instant::now(),
                min_gap: interval.max(Duration::from_millis(10)),
                empty: 0,
                lookup: os_lookup,
            })
    }

    /// When the next lookup should start, given the node's next join attempt (`join_at`,
    /// `None` while it has members): `None` while a lookup runs or none is needed.
    pub(crate) fn wake_at(&self, join_at: Option<Instant>) -> Option<Instant> {
        if self.running.is_some() {
            return None;
        }
        let at = join_at?.checked_sub(LEAD).unwrap_or_else(Instant::now);
        Some(at.max(self.not_before))
    }

    /// Starts a lookup of every name if one is due at `now`.
    pub(crate) fn start_if_due(&mut self, now: Instant, join_at: Option<Instant>) {
        if self.wake_at(join_at).is_none_or(|at| now < at) {
            return;
        }
        // Names that resolve to nothing are asked less and less often, down to one lookup
        // every MAX_GAP.
        let gap = self
            .min_gap
            .saturating_mul(1 << self.empty.min(10))
            .min(MAX_GAP);
        self.not_before = now + gap.max(self.min_gap);
        let seeds = self.seeds.clone();
        self.running = Some(tokio::spawn(resolve_all(seeds, self.lookup)));
    }

    /// Resolves when the running lookup ends, with every address found; never while none
    /// runs.
    pub(crate) async fn finished(resolver: &mut Option<Resolver>) -> Vec<SocketAddr> {
        let Some(lookup) = resolver.as_mut().and_then(|r| r.running.as_mut()) else {
            return std::future::pending().await;
        };
        let found = lookup.await.unwrap_or_default();
        if let Some(r) = resolver {
            r.running = None;
            r.empty = if found.is_empty() { r.empty + 1 } else { 0 };
        }
        found
    }

    /// Hands a lookup's addresses to the node.
    pub(crate) fn apply(node: &mut ClusterNode, now: gossiper_types::Time, found: Vec<SocketAddr>) {
        let before = node.config().seeds.len();
        node.set_seeds(now, found);
        let after = node.config().seeds.len();
        if before != after {
            log::debug!("join seeds: {after} addresses (were {before})");
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.abort();
        }
    }
}

/// Every address of every seed, in the order given, without repeats.
async fn resolve_all(seeds: Vec<Seed>, lookup: Lookup) -> Vec<SocketAddr> {
    let mut found = Vec::new();
    for seed in seeds {
        let addrs = match seed {
            Seed::Addr(a) => vec![a],
            Seed::Name(name) => {
                match tokio::time::timeout(LOOKUP_TIMEOUT, lookup(name.clone())).await {
                    Ok(Ok(addrs)) => addrs,
                    Ok(Err(e)) => {
                        log::warn!("cannot resolve join address {name}: {e}");
                        Vec::new()
                    }
                    Err(_) => {
                        log::warn!(
                            "cannot resolve join address {name}: no answer in {LOOKUP_TIMEOUT:?}"
                        );
                        Vec::new()
                    }
                }
            }
        };
        for a in addrs {
            if !found.contains(&a) {
                found.push(a);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_addresses_are_ips_or_host_names_with_a_port() {
        assert_eq!(
            Seed::parse("127.0.0.1:7946"),
            Ok(Seed::Addr("127.0.0.1:7946".parse().unwrap()))
        );
        assert_eq!(
            Seed::parse("[::1]:7946"),
            Ok(Seed::Addr("[::1]:7946".parse().unwrap()))
        );
        assert_eq!(
            Seed::parse("seed-1.internal:7946"),
            Ok(Seed::Name("seed-1.internal:7946".into()))
        );
        for bad in [
            "seed",
            "seed:",
            "seed:99999",
            ":7946",
            "a b:1",
            "::1:7946x",
            "[::1]",
        ] {
            assert!(Seed::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn localhost_resolves_to_every_loopback_address_it_has() {
        let found = resolve_all(
            vec![
                Seed::Name("localhost:7946".into()),
                Seed::Addr("127.0.0.1:7946".parse().unwrap()),
            ],
            os_lookup,
        )
        .await;
        assert!(
            found.contains(&"127.0.0.1:7946".parse().unwrap()),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 7946),
            "{found:?}"
        );
        let mut unique = found.clone();
        unique.dedup();
        assert_eq!(unique.len(), found.len(), "no repeats: {found:?}");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn lookups_start_just_before_a_join_attempt_and_at_most_once_an_interval() {
        let interval = Duration::from_millis(200);
        let mut r = Resolver::new(vec![Seed::Name("localhost:1".into())], interval).unwrap();
        let now = Instant::now();
        assert_eq!(r.wake_at(None), None, "a node with members needs no lookup");
        let attempt = now + Duration::from_secs(1);
        assert_eq!(r.wake_at(Some(attempt)), Some(attempt - LEAD));
        r.start_if_due(now, Some(attempt));
        assert!(r.running.is_none(), "not due yet");
        r.start_if_due(attempt - LEAD, Some(attempt));
        assert!(r.running.is_some());
        assert_eq!(r.wake_at(Some(attempt)), None, "one lookup at a time");
        let mut slot = Some(r);
        let _ = Resolver::finished(&mut slot).await;
        let r = slot.unwrap();
        assert!(r.running.is_none());
        // An attempt already due: the next lookup waits for the interval to pass.
        assert_eq!(r.wake_at(Some(now)), Some(attempt - LEAD + interval));
        assert!(
            Resolver::new(vec![Seed::Addr("127.0.0.1:1".parse().unwrap())], interval).is_none()
        );
        // Lookups that find nothing back off: 8 intervals after three in a row.
        let mut r = r;
        r.empty = 3;
        let t = r.not_before;
        r.start_if_due(t, Some(t));
        assert!(r.running.is_some());
        assert_eq!(r.not_before, t + interval * 8);
    }
}

#[cfg(test)]
mod agent_tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use gossiper_cluster::{ClusterConfig, MemberStatus};

    use super::*;
    use crate::AgentBuilder;

    /// What the fake name `seed.test` resolves to now, and how often it was asked.
    static SEED_ADDRS: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());
    static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

    fn fake_lookup(
        name: String,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
        LOOKUPS.fetch_add(1, Ordering::Relaxed);
        let addrs = SEED_ADDRS.lock().map(|a| a.clone()).unwrap_or_default();
        Box::pin(async move {
            assert_eq!(name, "seed.test:1");
            if addrs.is_empty() {
                Err(io::Error::new(io::ErrorKind::NotFound, "no such host yet"))
            } else {
                Ok(addrs)
            }
        })
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_seed_name_is_resolved_again_before_attempts_until_it_names_a_live_node() {
        let config = |name: &str| {
            let mut c = ClusterConfig::new(name, "127.0.0.1:0".parse().unwrap(), 0);
            c.interval_ms = 20;
            c.join_backoff_max_ms = 40;
            c
        };
        let joiner = AgentBuilder::new(config("joiner"))
            .join(["seed.test:1"])
            .lookup(fake_lookup)
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = LOOKUPS.load(Ordering::Relaxed);
        assert!(asked >= 3, "looked up again and again: {asked}");
        assert_eq!(
            joiner.members().await.unwrap().len(),
            1,
            "alone while the name is unknown"
        );
        // The name now resolves to a dead address and to a live node: the live one is joined.
        let seed = AgentBuilder::new(config("seed")).start().await.unwrap();
        *SEED_ADDRS.lock().unwrap() = vec!["127.0.0.1:9".parse().unwrap(), seed.gossip_addr()];
        let mut members = joiner.membership();
        let joined = members.wait_for(|m| {
            m.iter()
                .any(|m| m.name == "seed" && m.status == MemberStatus::Alive)
        });
        tokio::time::timeout(Duration::from_secs(5), joined)
            .await
            .unwrap()
            .unwrap();
        // Joined: no more lookups.
        let asked = LOOKUPS.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            LOOKUPS.load(Ordering::Relaxed) <= asked + 1,
            "no lookups while it has members"
        );
        joiner.shutdown().await;
        seed.shutdown().await;
    }
}
