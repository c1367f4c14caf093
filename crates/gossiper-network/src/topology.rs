//! Topology builders: the neighbour lists the Go demo wired by hand.
//!
//! Gossip only travels along links, so the shape of the graph sets how fast a rumour can spread.
//! What matters is *expansion*: how many uninformed nodes sit one hop away from the informed
//! ones. On a ring the frontier is always just two nodes, so reaching everyone takes about `n / 2`
//! rounds; on a complete graph or a random regular graph every informed set borders many
//! uninformed nodes, and the rumour reaches everyone in `O(log n)` rounds while each node keeps
//! only a handful of neighbours (random regular) or all of them (complete). A grid sits in
//! between (about `√n` rounds), a star is fast but hangs everything on one hub, and the
//! Watts–Strogatz and Barabási–Albert graphs model the small-world and hub-heavy shapes of real
//! networks.
//!
//! Every builder returns a simple undirected graph (no self-loops, no duplicate links) with
//! sorted adjacency lists, and a connected one: random builders that draw a disconnected graph
//! try again with the same RNG, up to 100 times. The same seed always gives the same graph.
//!
//! ```
//! use gossiper_network::Topology;
//! use rand::SeedableRng;
//!
//! let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
//! let graph = Topology::RandomRegular { degree: 4 }.build(100, &mut rng).unwrap();
//! assert!(graph.is_connected());
//! assert_eq!((graph.min_degree(), graph.max_degree()), (4, 4));
//! assert_eq!(graph.edge_count(), 200);
//! ```

use std::fmt;

use gossiper_types::NodeId;
use rand::{Rng, RngExt};

/// How many graphs a random builder draws before giving up on a connected one.
const MAX_ATTEMPTS: u32 = 100;

/// How many times one random-regular draw may restart after pairing itself into a corner.
const REGULAR_RESTARTS: u32 = 100;

/// A graph shape to wire nodes `0..n` in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Topology {
    /// Everyone is everyone's neighbour.
    Complete,
    /// Node i is linked to i-1 and i+1 (mod n).
    Ring,
    /// Node 0 is linked to everyone else; nobody else is linked.
    Star,
    /// A square-ish grid, each node linked to its up/down/left/right neighbours.
    Grid,
    /// Every node has exactly `degree` neighbours, chosen at random.
    RandomRegular {
        /// Neighbours per node.
        degree: usize,
    },
    /// Each pair is linked independently with probability `p` (Erdős–Rényi G(n, p)).
    ErdosRenyi {
        /// Link probability.
        p: f64,
    },
    /// A ring lattice of even degree `k`, each link rewired with probability `beta`.
    WattsStrogatz {
        /// Lattice degree (even).
        k: usize,
        /// Rewiring probability.
        beta: f64,
    },
    /// Preferential attachment: each new node links to `m` existing ones.
    BarabasiAlbert {
        /// Links per new node.
        m: usize,
    },
}

/// Why a topology could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum TopologyError {
    /// A parameter is out of range.
    BadParameter(String),
    /// Every attempt produced a disconnected graph.
    Disconnected {
        /// How many seeds were tried.
        attempts: u32,
    },
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologyError::BadParameter(why) => f.write_str(why),
            TopologyError::Disconnected { attempts } => {
                write!(
                    f,
                    "topology is disconnected after {attempts} attempts; raise its density"
                )
            }
        }
    }
}

impl std::error::Error for TopologyError {}

/// An undirected graph over nodes `0..n`, as sorted adjacency lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    adjacency: Vec<Vec<NodeId>>,
}

impl Graph {
    /// Checks and wraps hand-made adjacency lists: `adjacency[i]` lists the neighbours of node `i`.
    ///
    /// Every link must appear in both lists, point inside `0..adjacency.len()`, and appear once;
    /// no node may list itself. The lists may come in any order and are sorted here.
    pub fn from_adjacency(mut adjacency: Vec<Vec<NodeId>>) -> Result<Graph, TopologyError> {
        let n = adjacency.len();
        let bad = |why: String| Err(TopologyError::BadParameter(format!("adjacency: {why}")));
        for (i, list) in adjacency.iter_mut().enumerate() {
            list.sort_unstable();
            for (k, &j) in list.iter().enumerate() {
                if j.0 >= n as u64 {
                    return bad(format!("node {i} lists neighbour {}, outside 0..{n}", j.0));
                }
                if j.index() == i {
                    return bad(format!("node {i} lists itself"));
                }
                if k > 0 && list[k - 1] == j {
                    return bad(format!("node {i} lists neighbour {} twice", j.0));
                }
            }
        }
        for (i, list) in adjacency.iter().enumerate() {
            for &j in list {
                if adjacency[j.index()].binary_search(&id(i)).is_err() {
                    return bad(format!(
                        "node {i} lists neighbour {j}, but node {j} does not list node {i}",
                        j = j.0
                    ));
                }
            }
        }
        Ok(Graph { adjacency })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.adjacency.len()
    }
    /// True for the empty graph.
    pub fn is_empty(&self) -> bool {
        self.adjacency.is_empty()
    }
    /// The sorted neighbours of `id`.
    pub fn neighbors(&self, id: NodeId) -> &[NodeId] {
        &self.adjacency[id.index()]
    }
    /// Number of undirected links (each counted once).
    pub fn edge_count(&self) -> usize {
        self.adjacency.iter().map(Vec::len).sum::<usize>() / 2
    }
    /// Number of neighbours of `id`.
    pub fn degree(&self, id: NodeId) -> usize {
        self.adjacency[id.index()].len()
    }
    /// The smallest degree, 0 for the empty graph.
    pub fn min_degree(&self) -> usize {
        self.adjacency.iter().map(Vec::len).min().unwrap_or(0)
    }
    /// The largest degree, 0 for the empty graph.
    pub fn max_degree(&self) -> usize {
        self.adjacency.iter().map(Vec::len).max().unwrap_or(0)
    }
    /// True when every node can reach every other one (a single node, or none, counts).
    pub fn is_connected(&self) -> bool {
        let n = self.len();
        if n <= 1 {
            return true;
        }
        // Breadth-first search from node 0, using the queue Vec itself as the visit order.
        let mut seen = vec![false; n];
        let mut queue = vec![0usize];
        seen[0] = true;
        let mut head = 0;
        while let Some(&u) = queue.get(head) {
            head += 1;
            for v in &self.adjacency[u] {
                if !seen[v.index()] {
                    seen[v.index()] = true;
                    queue.push(v.index());
                }
            }
        }
        queue.len() == n
    }

    /// Wraps lists the builders made (simple by construction), sorting them.
    fn from_lists(mut adjacency: Vec<Vec<NodeId>>) -> Graph {
        for list in &mut adjacency {
            list.sort_unstable();
        }
        Graph { adjacency }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Topology::Complete => f.write_str("complete"),
            Topology::Ring => f.write_str("ring"),
            Topology::Star => f.write_str("star"),
            Topology::Grid => f.write_str("grid"),
            Topology::RandomRegular { degree } => write!(f, "random-regular(degree={degree})"),
            Topology::ErdosRenyi { p } => write!(f, "erdos-renyi(p={p})"),
            Topology::WattsStrogatz { k, beta } => write!(f, "watts-strogatz(k={k}, beta={beta})"),
            Topology::BarabasiAlbert { m } => write!(f, "barabasi-albert(m={m})"),
        }
    }
}

/// Parses `name` or `name:P1[:P2]` (the command line's spelling: `random-regular:3`,
/// `watts-strogatz:4:0.1`) and [`Display`](fmt::Display)'s `name(k=v, ...)`, so that every
/// printed topology parses back to itself.
impl std::str::FromStr for Topology {
    type Err = TopologyError;

    fn from_str(s: &str) -> Result<Topology, TopologyError> {
        let bad = |why: String| TopologyError::BadParameter(why);
        let s = s.trim();
        let (name, params): (&str, Vec<&str>) = match s.split_once('(') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| bad(format!("topology '{s}': missing ')'")))?;
                let values = inner
                    .split(',')
                    .map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v).trim())
                    .filter(|v| !v.is_empty())
                    .collect();
                (name.trim(), values)
            }
            None => {
                let mut parts = s.split(':');
                let name = parts.next().unwrap_or_default();
                (name, parts.collect())
            }
        };
        let takes = match name {
            "complete" | "ring" | "star" | "grid" => 0,
            "random-regular" | "erdos-renyi" | "barabasi-albert" => 1,
            "watts-strogatz" => 2,
            _ => {
                return Err(bad(format!(
                    "unknown topology '{s}': complete, ring, star, grid, random-regular:K, \
                     erdos-renyi:P, watts-strogatz:K:BETA or barabasi-albert:M"
                )));
            }
        };
        if params.len() != takes {
            return Err(bad(format!(
                "topology '{name}' takes {takes} parameter(s), got '{s}'"
            )));
        }
        fn num<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, TopologyError> {
            v.parse()
                .map_err(|_| TopologyError::BadParameter(format!("bad {what} '{v}'")))
        }
        Ok(match name {
            "complete" => Topology::Complete,
            "ring" => Topology::Ring,
            "star" => Topology::Star,
            "grid" => Topology::Grid,
            "random-regular" => Topology::RandomRegular {
                degree: num(params[0], "degree")?,
            },
            "erdos-renyi" => Topology::ErdosRenyi {
                p: num(params[0], "link probability")?,
            },
            "watts-strogatz" => Topology::WattsStrogatz {
                k: num(params[0], "degree")?,
                beta: num(params[1], "rewiring probability")?,
            },
            _ => Topology::BarabasiAlbert {
                m: num(params[0], "links per node")?,
            },
        })
    }
}

impl Topology {
    /// Builds the graph for `n` nodes, drawing any randomness from `rng`.
    ///
    /// Fails with [`TopologyError::BadParameter`] when `n` is 0 or a parameter is out of range
    /// for `n`, and with [`TopologyError::Disconnected`] when a random builder drew 100
    /// disconnected graphs in a row.
    pub fn build(&self, n: usize, rng: &mut dyn Rng) -> Result<Graph, TopologyError> {
        self.check(n)?;
        let adjacency = match *self {
            Topology::Complete => complete(n),
            Topology::Ring => ring(n),
            Topology::Star => star(n),
            Topology::Grid => grid(n),
            _ => return self.build_random(n, rng),
        };
        Ok(Graph::from_lists(adjacency))
    }

    /// Draws graphs until one is connected.
    fn build_random(&self, n: usize, rng: &mut dyn Rng) -> Result<Graph, TopologyError> {
        for _ in 0..MAX_ATTEMPTS {
            let adjacency = match *self {
                Topology::RandomRegular { degree } => random_regular(n, degree, rng),
                Topology::ErdosRenyi { p } => Some(erdos_renyi(n, p, rng)),
                Topology::WattsStrogatz { k, beta } => Some(watts_strogatz(n, k, beta, rng)),
                Topology::BarabasiAlbert { m } => Some(barabasi_albert(n, m, rng)),
                Topology::Complete | Topology::Ring | Topology::Star | Topology::Grid => {
                    unreachable!("deterministic topologies are built directly")
                }
            };
            if let Some(adjacency) = adjacency {
                let graph = Graph::from_lists(adjacency);
                if graph.is_connected() {
                    return Ok(graph);
                }
            }
        }
        Err(TopologyError::Disconnected {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Rejects `n` and parameters no graph can be built from, naming the allowed range.
    fn check(&self, n: usize) -> Result<(), TopologyError> {
        let bad = |why: String| Err(TopologyError::BadParameter(why));
        if n == 0 {
            return bad("--nodes must be at least 1".into());
        }
        match *self {
            Topology::Complete | Topology::Ring | Topology::Star | Topology::Grid => Ok(()),
            Topology::RandomRegular { degree } => {
                if degree >= n {
                    bad(format!(
                        "random-regular degree {degree} must be below the node count {n}"
                    ))
                } else if degree % 2 == 1 && n % 2 == 1 {
                    // Each link has two ends, so degree * n must be even.
                    bad(format!(
                        "random-regular degree {degree} must be even when the node count {n} is odd"
                    ))
                } else if degree == 0 && n > 1 {
                    bad(format!(
                        "random-regular degree 0 must be at least 1 for {n} nodes"
                    ))
                } else {
                    Ok(())
                }
            }
            Topology::ErdosRenyi { p } => {
                // Written so that NaN fails too.
                if p > 0.0 && p <= 1.0 {
                    Ok(())
                } else {
                    bad(format!("erdos-renyi p {p} must be in (0, 1]"))
                }
            }
            Topology::WattsStrogatz { k, beta } => {
                if k < 2 || k % 2 == 1 {
                    bad(format!("watts-strogatz k {k} must be even and at least 2"))
                } else if k >= n {
                    bad(format!(
                        "watts-strogatz k {k} must be below the node count {n}"
                    ))
                } else if !(0.0..=1.0).contains(&beta) {
                    bad(format!("watts-strogatz beta {beta} must be in [0, 1]"))
                } else {
                    Ok(())
                }
            }
            Topology::BarabasiAlbert { m } => {
                if m == 0 {
                    bad("barabasi-albert m 0 must be at least 1".into())
                } else if m >= n {
                    bad(format!(
                        "barabasi-albert m {m} must be below the node count {n}"
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

fn id(i: usize) -> NodeId {
    NodeId(i as u64)
}

fn link(adj: &mut [Vec<NodeId>], a: usize, b: usize) {
    adj[a].push(id(b));
    adj[b].push(id(a));
}

fn linked(adj: &[Vec<NodeId>], a: usize, b: usize) -> bool {
    adj[a].contains(&id(b))
}

fn unlink(adj: &mut [Vec<NodeId>], a: usize, b: usize) {
    for (from, to) in [(a, b), (b, a)] {
        if let Some(pos) = adj[from].iter().position(|&x| x == id(to)) {
            adj[from].swap_remove(pos);
        }
    }
}

fn complete(n: usize) -> Vec<Vec<NodeId>> {
    (0..n)
        .map(|i| (0..n).filter(|&j| j != i).map(id).collect())
        .collect()
}

fn ring(n: usize) -> Vec<Vec<NodeId>> {
    let mut adj = vec![Vec::new(); n];
    match n {
        0 | 1 => {}
        // Going round two nodes would link them twice.
        2 => link(&mut adj, 0, 1),
        _ => (0..n).for_each(|i| link(&mut adj, i, (i + 1) % n)),
    }
    adj
}

fn star(n: usize) -> Vec<Vec<NodeId>> {
    let mut adj = vec![Vec::new(); n];
    (1..n).for_each(|i| link(&mut adj, 0, i));
    adj
}

fn grid(n: usize) -> Vec<Vec<NodeId>> {
    // floor(√n) rows of ceil(n / rows) columns, filled row by row; the last row may be short
    // but is never empty, and each of its nodes has a full row above it, so the grid is connected.
    let rows = n.isqrt().max(1);
    let cols = n.div_ceil(rows);
    let mut adj = vec![Vec::new(); n];
    for i in 0..n {
        if (i + 1) % cols != 0 && i + 1 < n {
            link(&mut adj, i, i + 1);
        }
        if i + cols < n {
            link(&mut adj, i, i + cols);
        }
    }
    adj
}

/// A random `degree`-regular graph, or `None` if every restart got stuck.
///
/// Dense requests are built as the complement of a sparse one: the pairing below works best
/// with few links per node, and the complement of a random (n-1-d)-regular graph is a random
/// d-regular graph.
fn random_regular(n: usize, degree: usize, rng: &mut dyn Rng) -> Option<Vec<Vec<NodeId>>> {
    if degree > (n - 1) / 2 {
        let mut sparse = random_regular_sparse(n, n - 1 - degree, rng)?;
        for list in &mut sparse {
            list.sort_unstable();
        }
        return Some(
            (0..n)
                .map(|i| {
                    (0..n)
                        .filter(|&j| j != i && sparse[i].binary_search(&id(j)).is_err())
                        .map(id)
                        .collect()
                })
                .collect(),
        );
    }
    random_regular_sparse(n, degree, rng)
}

/// The Steger–Wormald pairing: every node starts with `degree` free "stubs"; join two random
/// stubs whenever that makes a new, non-loop link, and start over if no such pair is left.
///
/// Plain configuration-model retries (pair everything, then reject the whole graph if any loop
/// or double link appeared) succeed with probability about `e^(-(d²-1)/4)`, hopeless for
/// `d = 10`; rejecting pair by pair almost never needs a restart.
fn random_regular_sparse(n: usize, degree: usize, rng: &mut dyn Rng) -> Option<Vec<Vec<NodeId>>> {
    'restart: for _ in 0..REGULAR_RESTARTS {
        let mut adj = vec![Vec::with_capacity(degree); n];
        let mut stubs: Vec<usize> = (0..n)
            .flat_map(|v| std::iter::repeat_n(v, degree))
            .collect();
        let mut misses = 0;
        while stubs.len() >= 2 {
            let s = stubs.len();
            let i = rng.random_range(0..s);
            let j = rng.random_range(0..s - 1);
            let j = if j >= i { j + 1 } else { j };
            let fits = |a: usize, b: usize, adj: &[Vec<NodeId>]| a != b && !linked(adj, a, b);
            let (i, j) = if fits(stubs[i], stubs[j], &adj) {
                (i, j)
            } else {
                misses += 1;
                if misses < 32 {
                    continue;
                }
                // Many misses in a row: maybe no fitting pair is left. Count them, then pick one
                // uniformly (or start over if there is none).
                let pairs = || {
                    (0..s)
                        .flat_map(move |a| (a + 1..s).map(move |b| (a, b)))
                        .filter(|&(a, b)| fits(stubs[a], stubs[b], &adj))
                };
                let count = pairs().count();
                if count == 0 {
                    continue 'restart;
                }
                let pick = rng.random_range(0..count);
                pairs().nth(pick)?
            };
            misses = 0;
            link(&mut adj, stubs[i], stubs[j]);
            // Remove the higher position first so the lower one does not move.
            stubs.swap_remove(i.max(j));
            stubs.swap_remove(i.min(j));
        }
        return Some(adj);
    }
    None
}

/// G(n, p) by the Batagelj–Brandes geometric skip, in `O(n + m)` time for `m` links.
///
/// Walk the pairs `(v, w)` with `w < v` in order. Instead of flipping a coin for each, jump
/// straight to the next linked pair: the number of failures before a `p`-coin's first success
/// is geometric, `floor(ln(1 - r) / ln(1 - p))` for uniform `r`.
fn erdos_renyi(n: usize, p: f64, rng: &mut dyn Rng) -> Vec<Vec<NodeId>> {
    if p >= 1.0 {
        return complete(n);
    }
    let mut adj = vec![Vec::new(); n];
    let log_q = (-p).ln_1p();
    let (mut v, mut w) = (1usize, 0usize); // the next pair to consider
    while v < n {
        let r: f64 = rng.random();
        // `as` saturates, so a huge skip just runs off the end.
        let skip = ((-r).ln_1p() / log_q).floor() as usize;
        w = w.saturating_add(skip);
        while w >= v && v < n {
            w -= v;
            v += 1;
        }
        if v < n {
            link(&mut adj, v, w);
            w += 1;
        }
    }
    adj
}

/// Each node linked to its `k / 2` nearest nodes on either side of a ring, then each of those
/// links `(u, u + j)` moved, with probability `beta`, to `(u, w)` for a random `w` that is
/// neither `u` nor already a neighbour of `u`. The link count stays `n * k / 2`.
fn watts_strogatz(n: usize, k: usize, beta: f64, rng: &mut dyn Rng) -> Vec<Vec<NodeId>> {
    let mut adj = vec![Vec::with_capacity(k); n];
    for j in 1..=k / 2 {
        for u in 0..n {
            link(&mut adj, u, (u + j) % n);
        }
    }
    // Rewire in the classic order: all distance-1 links first, then distance 2, and so on.
    for j in 1..=k / 2 {
        for u in 0..n {
            let v = (u + j) % n;
            if !rng.random_bool(beta) || adj[u].len() >= n - 1 {
                continue; // kept, or u is linked to everyone and has nowhere to go
            }
            let w = loop {
                let w = rng.random_range(0..n);
                if w != u && !linked(&adj, u, w) {
                    break w;
                }
            };
            unlink(&mut adj, u, v);
            link(&mut adj, u, w);
        }
    }
    adj
}

/// Starts from a complete graph on `m + 1` nodes; each later node links to `m` distinct earlier
/// ones, each picked with probability proportional to its degree.
///
/// `ends` holds both endpoints of every link, so a node appears in it once per link: a uniform
/// pick from `ends` is a degree-weighted pick of a node.
fn barabasi_albert(n: usize, m: usize, rng: &mut dyn Rng) -> Vec<Vec<NodeId>> {
    let mut adj = vec![Vec::new(); n];
    let mut ends = Vec::with_capacity(2 * m * n);
    for a in 0..=m {
        for b in a + 1..=m {
            link(&mut adj, a, b);
            ends.extend([a, b]);
        }
    }
    let mut targets = Vec::with_capacity(m);
    for v in m + 1..n {
        targets.clear();
        while targets.len() < m {
            let t = ends[rng.random_range(0..ends.len())];
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
        for &t in &targets {
            link(&mut adj, v, t);
            ends.extend([v, t]);
        }
    }
    adj
}

#[cfg(test)]
mod tests {
    #[test]
    fn topologies_parse_from_both_spellings_and_display_round_trips() {
        use super::Topology;
        let all = [
            Topology::Complete,
            Topology::Ring,
            Topology::Star,
            Topology::Grid,
            Topology::RandomRegular { degree: 3 },
            Topology::ErdosRenyi { p: 0.25 },
            Topology::WattsStrogatz { k: 4, beta: 0.1 },
            Topology::BarabasiAlbert { m: 2 },
        ];
        for t in all {
            assert_eq!(t.to_string().parse::<Topology>(), Ok(t), "{t}");
        }
        assert_eq!(
            "random-regular:3".parse::<Topology>(),
            Ok(Topology::RandomRegular { degree: 3 })
        );
        assert_eq!(
            "watts-strogatz:4:0.1".parse::<Topology>(),
            Ok(Topology::WattsStrogatz { k: 4, beta: 0.1 })
        );
        let err = |s: &str| s.parse::<Topology>().unwrap_err().to_string();
        assert!(err("moebius").contains("unknown topology"));
        assert!(err("ring:3").contains("takes 0 parameter"));
        assert!(err("random-regular:x").contains("bad degree 'x'"));
        assert!(err("random-regular(degree=3").contains("missing ')'"));
    }

    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    fn rng(seed: u64) -> Pcg64Mcg {
        Pcg64Mcg::seed_from_u64(seed)
    }

    fn build(topology: Topology, n: usize, seed: u64) -> Graph {
        topology
            .build(n, &mut rng(seed))
            .unwrap_or_else(|e| panic!("{topology} on {n} nodes: {e}"))
    }

    /// The shared structural check: `n` nodes, sorted lists of in-range, distinct, non-self,
    /// mutual neighbours, and connected.
    fn assert_well_formed(g: &Graph, n: usize) {
        assert_eq!(g.len(), n);
        for i in 0..n {
            let list = g.neighbors(id(i));
            for (k, &j) in list.iter().enumerate() {
                assert!(j.index() < n, "node {i}: neighbour {j} out of range");
                assert_ne!(j.index(), i, "node {i}: self-loop");
                if k > 0 {
                    assert!(list[k - 1] < j, "node {i}: unsorted or duplicate {list:?}");
                }
                assert!(
                    g.neighbors(j).binary_search(&id(i)).is_ok(),
                    "{i} -> {j} is one-way"
                );
            }
        }
        assert_eq!(Graph::from_adjacency(g.adjacency.clone()).as_ref(), Ok(g));
        assert!(g.is_connected(), "disconnected");
    }

    fn random_topologies() -> [Topology; 6] {
        [
            Topology::RandomRegular { degree: 3 },
            Topology::RandomRegular { degree: 50 },
            Topology::ErdosRenyi { p: 0.1 },
            Topology::WattsStrogatz { k: 4, beta: 0.2 },
            Topology::WattsStrogatz { k: 6, beta: 1.0 },
            Topology::BarabasiAlbert { m: 2 },
        ]
    }

    #[test]
    fn complete_links_everyone() {
        for n in 1..10 {
            let g = build(Topology::Complete, n, 0);
            assert_well_formed(&g, n);
            assert_eq!((g.min_degree(), g.max_degree()), (n - 1, n - 1));
            assert_eq!(g.edge_count(), n * (n - 1) / 2);
        }
    }

    #[test]
    fn ring_has_degree_two() {
        for n in 3..20 {
            let g = build(Topology::Ring, n, 0);
            assert_well_formed(&g, n);
            assert_eq!((g.min_degree(), g.max_degree()), (2, 2));
            assert_eq!(g.neighbors(NodeId(0)), [NodeId(1), id(n - 1)]);
        }
        assert_eq!(build(Topology::Ring, 2, 0).edge_count(), 1);
        assert_eq!(build(Topology::Ring, 1, 0).edge_count(), 0);
    }

    #[test]
    fn star_hangs_on_node_zero() {
        for n in 2..20 {
            let g = build(Topology::Star, n, 0);
            assert_well_formed(&g, n);
            assert_eq!(g.degree(NodeId(0)), n - 1);
            assert!((1..n).all(|i| g.neighbors(id(i)) == [NodeId(0)]));
        }
    }

    #[test]
    fn grid_links_up_down_left_right() {
        // 12 nodes: 3 rows of 4.
        let g = build(Topology::Grid, 12, 0);
        assert_well_formed(&g, 12);
        assert_eq!(g.edge_count(), 3 * 3 + 2 * 4);
        assert_eq!(g.neighbors(NodeId(5)), [1, 4, 6, 9].map(NodeId));
        assert_eq!(g.neighbors(NodeId(3)), [2, 7].map(NodeId));
        // 10 nodes: 3 rows of 4, the last holding 2.
        let g = build(Topology::Grid, 10, 0);
        assert_eq!(g.neighbors(NodeId(9)), [5, 8].map(NodeId));
        assert_eq!(g.neighbors(NodeId(7)), [3, 6].map(NodeId));
        for n in 1..60 {
            let g = build(Topology::Grid, n, 0);
            assert_well_formed(&g, n);
            assert!(g.max_degree() <= 4);
        }
    }

    #[test]
    fn random_regular_is_exactly_regular() {
        for (n, degree) in [
            (10, 3),
            (50, 4),
            (51, 6),
            (200, 10),
            (20, 17),
            (12, 11),
            (2, 1),
        ] {
            for seed in 0..5 {
                let g = build(Topology::RandomRegular { degree }, n, seed);
                assert_well_formed(&g, n);
                assert_eq!(
                    (g.min_degree(), g.max_degree()),
                    (degree, degree),
                    "{n} {degree}"
                );
            }
        }
        assert_eq!(build(Topology::RandomRegular { degree: 0 }, 1, 0).len(), 1);
    }

    #[test]
    fn erdos_renyi_density_and_extremes() {
        let (n, p) = (400, 0.05);
        let pairs = n * (n - 1) / 2;
        let mut total = 0;
        for seed in 0..10 {
            let g = build(Topology::ErdosRenyi { p }, n, seed);
            assert_well_formed(&g, n);
            total += g.edge_count();
        }
        // Expected 3,990 links per graph; over 10 graphs the std is about 195.
        let expected = 10.0 * p * pairs as f64;
        assert!((total as f64 - expected).abs() < 800.0, "total {total}");
        assert_eq!(
            build(Topology::ErdosRenyi { p: 1.0 }, 7, 0),
            build(Topology::Complete, 7, 0)
        );
        assert_eq!(build(Topology::ErdosRenyi { p: 0.5 }, 1, 0).len(), 1);
    }

    #[test]
    fn erdos_renyi_skips_reach_every_pair_evenly() {
        // The raw sampler (no connectivity retry): each of the 10 pairs of 5 nodes should be
        // linked in about 30 % of 4,000 draws (std about 29).
        let mut counts = [[0u32; 5]; 5];
        let mut r = rng(11);
        for _ in 0..4_000 {
            for (v, list) in erdos_renyi(5, 0.3, &mut r).iter().enumerate() {
                for w in list {
                    counts[v][w.index()] += 1;
                }
            }
        }
        for (v, row) in counts.iter().enumerate() {
            for (w, &c) in row.iter().enumerate() {
                if v != w {
                    assert!((1_080..=1_320).contains(&c), "pair {v}-{w}: {c}");
                }
            }
        }
    }

    #[test]
    fn tiny_erdos_renyi_gives_up_disconnected() {
        assert_eq!(
            Topology::ErdosRenyi { p: 0.001 }.build(200, &mut rng(1)),
            Err(TopologyError::Disconnected { attempts: 100 })
        );
    }

    #[test]
    fn watts_strogatz_keeps_mean_degree() {
        for (n, k, beta) in [(30, 4, 0.0), (30, 4, 0.3), (100, 6, 1.0), (7, 6, 0.5)] {
            for seed in 0..5 {
                let g = build(Topology::WattsStrogatz { k, beta }, n, seed);
                assert_well_formed(&g, n);
                assert_eq!(g.edge_count() * 2, n * k, "mean degree");
            }
        }
        // No rewiring: the plain lattice.
        let g = build(Topology::WattsStrogatz { k: 4, beta: 0.0 }, 10, 0);
        assert_eq!(g.neighbors(NodeId(0)), [1, 2, 8, 9].map(NodeId));
        assert_eq!((g.min_degree(), g.max_degree()), (4, 4));
        // Full rewiring moves links away from the lattice.
        let g = build(Topology::WattsStrogatz { k: 4, beta: 1.0 }, 50, 0);
        assert!(g.max_degree() > 4 || g.min_degree() < 4);
    }

    #[test]
    fn barabasi_albert_counts() {
        for (n, m) in [(2, 1), (50, 1), (50, 3), (300, 5), (6, 5)] {
            let g = build(Topology::BarabasiAlbert { m }, n, 3);
            assert_well_formed(&g, n);
            assert_eq!(g.edge_count(), m * (m + 1) / 2 + (n - m - 1) * m);
            assert!(g.min_degree() >= m);
        }
        // Preferential attachment grows hubs.
        assert!(build(Topology::BarabasiAlbert { m: 2 }, 1_000, 0).max_degree() > 30);
    }

    #[test]
    fn same_seed_same_graph_other_seed_other_graph() {
        for t in random_topologies() {
            assert_eq!(build(t, 60, 7), build(t, 60, 7), "{t}");
            assert_ne!(build(t, 60, 7), build(t, 60, 8), "{t}");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases = [
            (Topology::Ring, 0, "--nodes"),
            (Topology::ErdosRenyi { p: 0.5 }, 0, "--nodes"),
            (Topology::RandomRegular { degree: 12 }, 10, "degree 12"),
            (Topology::RandomRegular { degree: 3 }, 9, "even"),
            (Topology::RandomRegular { degree: 0 }, 9, "at least 1"),
            (Topology::RandomRegular { degree: 1 }, 1, "below"),
            (Topology::ErdosRenyi { p: 0.0 }, 10, "p 0"),
            (Topology::ErdosRenyi { p: 1.5 }, 10, "p 1.5"),
            (Topology::ErdosRenyi { p: f64::NAN }, 10, "p NaN"),
            (Topology::WattsStrogatz { k: 3, beta: 0.1 }, 10, "k 3"),
            (Topology::WattsStrogatz { k: 0, beta: 0.1 }, 10, "k 0"),
            (Topology::WattsStrogatz { k: 10, beta: 0.1 }, 10, "below"),
            (Topology::WattsStrogatz { k: 4, beta: -0.1 }, 10, "beta"),
            (
                Topology::WattsStrogatz {
                    k: 4,
                    beta: f64::NAN,
                },
                10,
                "beta",
            ),
            (Topology::BarabasiAlbert { m: 0 }, 10, "m 0"),
            (Topology::BarabasiAlbert { m: 10 }, 10, "m 10"),
        ];
        for (t, n, needle) in cases {
            match t.build(n, &mut rng(0)) {
                Err(TopologyError::BadParameter(msg)) => {
                    assert!(msg.contains(needle), "{t}: {msg:?} lacks {needle:?}");
                    assert!(!msg.contains('\n'));
                    assert!(!msg.starts_with(char::is_uppercase), "{msg}");
                }
                other => panic!("{t} on {n}: {other:?}"),
            }
        }
        assert_eq!(
            Topology::RandomRegular { degree: 12 }
                .build(10, &mut rng(0))
                .map_err(|e| e.to_string()),
            Err("random-regular degree 12 must be below the node count 10".into())
        );
    }

    #[test]
    fn single_node_is_connected() {
        for t in [
            Topology::Complete,
            Topology::Ring,
            Topology::Star,
            Topology::Grid,
            Topology::ErdosRenyi { p: 0.5 },
        ] {
            let g = build(t, 1, 0);
            assert_well_formed(&g, 1);
            assert_eq!(g.max_degree(), 0);
        }
    }

    #[test]
    fn names() {
        let names: Vec<String> = [
            Topology::Complete,
            Topology::Ring,
            Topology::Star,
            Topology::Grid,
            Topology::RandomRegular { degree: 4 },
            Topology::ErdosRenyi { p: 0.05 },
            Topology::WattsStrogatz { k: 4, beta: 0.1 },
            Topology::BarabasiAlbert { m: 3 },
        ]
        .iter()
        .map(Topology::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "complete",
                "ring",
                "star",
                "grid",
                "random-regular(degree=4)",
                "erdos-renyi(p=0.05)",
                "watts-strogatz(k=4, beta=0.1)",
                "barabasi-albert(m=3)"
            ]
        );
    }

    #[test]
    fn from_adjacency_validates_and_sorts() {
        let ids = |v: &[u64]| v.iter().copied().map(NodeId).collect::<Vec<_>>();
        let g = Graph::from_adjacency(vec![ids(&[2, 1]), ids(&[0]), ids(&[0])]);
        let g = g.expect("valid");
        assert_eq!(g.neighbors(NodeId(0)), ids(&[1, 2]));
        assert!(g.is_connected());
        assert_eq!(g.edge_count(), 2);
        for bad in [
            vec![ids(&[1]), ids(&[])],        // one-way
            vec![ids(&[0])],                  // self-loop
            vec![ids(&[1, 1]), ids(&[0, 0])], // duplicate
            vec![ids(&[5]), ids(&[])],        // out of range
        ] {
            assert!(
                matches!(
                    Graph::from_adjacency(bad.clone()),
                    Err(TopologyError::BadParameter(_))
                ),
                "{bad:?}"
            );
        }
        let split = Graph::from_adjacency(vec![ids(&[1]), ids(&[0]), ids(&[3]), ids(&[2])]);
        assert!(!split.expect("valid").is_connected());
        assert!(
            Graph::from_adjacency(Vec::new())
                .expect("empty")
                .is_connected()
        );
    }

    fn any_topology() -> impl Strategy<Value = Topology> {
        prop_oneof![
            Just(Topology::Complete),
            Just(Topology::Ring),
            Just(Topology::Star),
            Just(Topology::Grid),
            (0usize..20).prop_map(|degree| Topology::RandomRegular { degree }),
            (0.0f64..=1.0).prop_map(|p| Topology::ErdosRenyi { p }),
            (0usize..12, 0.0f64..=1.0).prop_map(|(k, beta)| Topology::WattsStrogatz { k, beta }),
            (0usize..10).prop_map(|m| Topology::BarabasiAlbert { m }),
        ]
    }

    proptest! {
        #[test]
        fn every_built_graph_is_well_formed(
            n in 2usize..60,
            topology in any_topology(),
            seed in any::<u64>(),
        ) {
            match topology.build(n, &mut rng(seed)) {
                Ok(g) => assert_well_formed(&g, n),
                Err(TopologyError::BadParameter(msg)) => prop_assert!(!msg.contains('\n')),
                Err(TopologyError::Disconnected { attempts }) => prop_assert_eq!(attempts, 100),
            }
        }
    }
}
