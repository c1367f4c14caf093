//! `agent-bench --serf S [--gossiper G]`: the benchmark of issue 10, a mixed cluster of real
//! Serf agents (`serf agent`, Debian's 0.9.4) and gossiper agents (`gossiper agent --protocol
//! memberlist`) on loopback, all with Serf's LAN timing, measured the same way for both kinds:
//!
//! * **join** — each agent's start (its spawn) until every agent of both kinds lists it
//!   `alive`; every agent is watched by a thread of its own polling its member list every
//!   10 ms (Serf through its RPC, gossiper through `/v1/members`). The seed `s0` is started and
//!   waited for first, so its figure is left out.
//! * **user event → all** — a user event sent from a Serf agent (RPC `event`) and from a
//!   gossiper agent (`POST /v1/event/NAME`), alternately, until all agents have it (Serf:
//!   its RPC `stream` of user events, as `serf monitor` sees them; gossiper: blocking
//!   `/v1/events`); the sender counts too (both log their own event at once).
//! * **kill -9 → failed at all** — agents of each kind killed in the order A B B A A B B A ...
//!   (`--first-kill serf|gossiper` picks A), 2 s apart, each until every live agent lists the
//!   victim `failed` (polled every 25 ms). With `--replace`, a fresh agent of the victim's kind
//!   then joins and is waited for, so each kill sees a cluster of the same size and many kills
//!   can be made; the figures close with each kind's mean, its 95 % interval and the
//!   difference of the means (Welch).
//! * **RSS** — VmRSS from `/proc/PID/status` of every agent after its API or RPC served all
//!   of the above.
//! * **idle bytes** — bytes sent per agent per second over the idle window, counted by the
//!   kernel (`wire_count`); needs root and `nft`, else not measured.
//!
//! Progress goes to stderr; the result to stdout, a table or (`--format json`) one JSON
//! object. Every wait is bounded (60 s to form, 10 s per event, 60 s per kill); the agents
//! are killed when the run ends, or on any failure (a Ctrl-C reaches them through the
//! terminal's process group).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::serf_rpc::SerfRpc;
use super::wire_count::{self, Counted};
use super::{Proc, get, members, mib, missed, percentile, rss_kib};
use gossiper_agent::client::request;

/// What `--serf` runs.
pub struct MixedOptions {
    /// Serf agents (0 for a gossiper-only cluster).
    pub serf: usize,
    /// gossiper agents (0 for a Serf-only cluster).
    pub gossiper: usize,
    /// The `gossiper` binary (default: beside this one).
    pub gossiper_bin: Option<PathBuf>,
    /// User events sent, alternately from each kind.
    pub events: usize,
    /// Kills, alternately of each kind (at most what leaves 2 agents of each kind).
    pub kills: usize,
    /// Whether the first kill is of a gossiper agent (else of a Serf agent).
    pub gossiper_killed_first: bool,
    /// Whether each victim is replaced by a fresh agent of its kind once it is failed at all,
    /// so every kill sees a cluster of the same size.
    pub replace: bool,
    /// The idle window, in seconds.
    pub idle_secs: u64,
    /// JSON instead of a table.
    pub json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Serf,
    Gossiper,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Serf => "serf",
            Kind::Gossiper => "gossiper",
        }
    }

    /// The first letter of its agents' names (`s3`, `g3`).
    fn prefix(self) -> char {
        match self {
            Kind::Serf => 's',
            Kind::Gossiper => 'g',
        }
    }

    fn other(self) -> Kind {
        match self {
            Kind::Serf => Kind::Gossiper,
            Kind::Gossiper => Kind::Serf,
        }
    }
}

/// One agent: the process (for Serf, `api` is its RPC address), its kind, when it started.
struct Agent {
    proc: Proc,
    kind: Kind,
    started: Instant,
    uid: Option<u32>,
}

/// First uid the agents run as (one each) when the bench runs as root.
const FIRST_UID: u32 = 61_000;

/// The uids handed to agents, one each, when the bench runs as root.
struct Uids {
    next: u32,
    root: bool,
}

impl Uids {
    fn next(&mut self) -> Option<u32> {
        self.next += 1;
        self.root.then_some(self.next)
    }
}

/// Agents started so far of each kind, which gives the next one its name.
struct Counts {
    serf: usize,
    gossiper: usize,
}

impl Counts {
    fn next_name(&mut self, kind: Kind) -> String {
        let c = match kind {
            Kind::Serf => &mut self.serf,
            Kind::Gossiper => &mut self.gossiper,
        };
        *c += 1;
        format!("{}{}", kind.prefix(), *c - 1)
    }
}

/// What starting a replacement agent needs.
struct Spawner {
    bin: PathBuf,
    seed: String,
    uids: Uids,
    counts: Counts,
}

/// A loopback port free for TCP and UDP.
fn free_port() -> u16 {
    loop {
        let Ok(tcp) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = tcp.local_addr().map(|a| a.port()) else {
            continue;
        };
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
            .unwrap_or(false)
    })
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Starts one agent joining `seed` (none: the seed itself).
fn spawn(
    kind: Kind,
    name: &str,
    bin: &std::path::Path,
    seed: Option<&str>,
    uid: Option<u32>,
) -> Result<Agent, String> {
    let port = free_port();
    let gossip = format!("127.0.0.1:{port}");
    let api = format!("127.0.0.1:{}", free_port());
    let mut cmd = match kind {
        Kind::Serf => {
            let mut c = Command::new("serf");
            c.args(["agent", "-node", name, "-bind", &gossip, "-rpc-addr", &api])
                .arg("-log-level=warn");
            if let Some(s) = seed {
                c.args(["-join", s]);
            }
            c
        }
        Kind::Gossiper => {
            let mut c = Command::new(bin);
            c.args(["agent", "--protocol", "memberlist", "--name", name])
                .args(["--bind", &gossip, "--api", &api])
                .env("RUST_LOG", "error");
            if let Some(s) = seed {
                c.args(["--join", s]);
            }
            c
        }
    };
    if let Some(u) = uid {
        use std::os::unix::process::CommandExt;
        cmd.uid(u).gid(u);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {} agent {name}: {e}", kind.word()))?;
    Ok(Agent {
        proc: Proc {
            name: name.to_owned(),
            child,
            api,
            gossip: gossip.parse().map_err(|e| format!("{e}"))?,
        },
        kind,
        started,
        uid,
    })
}

/// How one agent's member list is read, reusing a Serf RPC connection between polls.
struct Viewer {
    kind: Kind,
    addr: String,
    rpc: Option<SerfRpc>,
}

impl Viewer {
    fn new(a: &Agent) -> Viewer {
        Viewer {
            kind: a.kind,
            addr: a.proc.api.clone(),
            rpc: None,
        }
    }

    /// `(name, status)` of every member this agent lists (Serf's words for both kinds).
    fn members(&mut self) -> Option<Vec<(String, String)>> {
        match self.kind {
            Kind::Gossiper => members(&self.addr),
            Kind::Serf => {
                if self.rpc.is_none() {
                    self.rpc = SerfRpc::connect(&self.addr, Duration::from_secs(2)).ok();
                }
                let r = self.rpc.as_mut()?.members();
                if r.is_err() {
                    self.rpc = None;
                }
                r.ok()
            }
        }
    }
}

/// Polls `viewer` every `every` until `done` holds for its list or `limit` passes from
/// `since`; returns the first time each member was listed with status `status`.
fn watch(
    mut viewer: Viewer,
    status: &'static str,
    every: Duration,
    since: Instant,
    limit: Duration,
    done: impl Fn(&HashMap<String, Instant>) -> bool,
) -> HashMap<String, Instant> {
    let mut first: HashMap<String, Instant> = HashMap::new();
    while since.elapsed() < limit {
        if let Some(list) = viewer.members() {
            let now = Instant::now();
            for (n, s) in list {
                if s == status {
                    first.entry(n).or_insert(now);
                }
            }
            if done(&first) {
                break;
            }
        }
        std::thread::sleep(every);
    }
    first
}

/// [`watch`] on every agent at once, a thread each; the first times, in `agents`' order.
fn watch_all(
    agents: &[Agent],
    status: &'static str,
    every: Duration,
    since: Instant,
    limit: Duration,
    done: impl Fn(&HashMap<String, Instant>) -> bool + Clone + Send + 'static,
) -> Vec<HashMap<String, Instant>> {
    let pollers: Vec<_> = agents
        .iter()
        .map(|a| {
            let (viewer, done) = (Viewer::new(a), done.clone());
            std::thread::spawn(move || watch(viewer, status, every, since, limit, done))
        })
        .collect();
    pollers
        .into_iter()
        .map(|p| p.join().unwrap_or_default())
        .collect()
}

/// Median and max of `v` (NaN when empty).
fn med_max(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 1.0))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Everything measured, as the JSON printed.
struct Run {
    out: serde_json::Map<String, Value>,
}

impl Run {
    fn put(&mut self, key: &str, v: Value) {
        self.out.insert(key.into(), v);
    }
}

/// Runs the mixed benchmark; false if some figure could not be measured.
pub fn run(o: &MixedOptions) -> Result<(), String> {
    if o.serf + o.gossiper < 3 {
        return Err("--serf and --gossiper need at least 3 agents together".into());
    }
    let bin = match &o.gossiper_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("gossiper"),
    };
    if !bin.exists() {
        return Err(format!(
            "no gossiper binary at {} (cargo build --release -p gossiper-cli, or --gossiper-bin)",
            bin.display()
        ));
    }
    let serf_version = Command::new("serf")
        .arg("version")
        .output()
        .map_err(|e| format!("serf: {e} (apt-get install serf)"))?;
    let serf_version = String::from_utf8_lossy(&serf_version.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let root = is_root();
    let mut run = Run {
        out: serde_json::Map::new(),
    };
    run.put("serf_agents", o.serf.into());
    run.put("gossiper_agents", o.gossiper.into());
    run.put("serf_version", serf_version.clone().into());
    run.put("load_at_start", load().into());
    eprintln!(
        "mixed cluster: {} Serf agents ({serf_version}) + {} gossiper agents ({}), Serf LAN \
         timing; load {}",
        o.serf,
        o.gossiper,
        bin.display(),
        load()
    );

    // Start: the seed (s0, or g0 in a gossiper-only cluster), then the others interleaved
    // g0, s1, g1, ... all joining the seed.
    let mut uids = Uids {
        next: FIRST_UID,
        root,
    };
    let seed_kind = if o.serf > 0 {
        Kind::Serf
    } else {
        Kind::Gossiper
    };
    let seed_name = format!("{}0", seed_kind.prefix());
    let mut agents = vec![spawn(seed_kind, &seed_name, &bin, None, uids.next())?];
    let seed = agents[0].proc.gossip.to_string();
    let up = Instant::now();
    let mut viewer = Viewer::new(&agents[0]);
    while viewer.members().is_none() {
        if up.elapsed() > Duration::from_secs(10) {
            return Err(format!(
                "the seed agent {seed_name} did not answer within 10 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut counts = Counts {
        serf: usize::from(seed_kind == Kind::Serf),
        gossiper: usize::from(seed_kind == Kind::Gossiper),
    };
    while counts.serf < o.serf || counts.gossiper < o.gossiper {
        for kind in [Kind::Gossiper, Kind::Serf] {
            let (have, want) = match kind {
                Kind::Serf => (counts.serf, o.serf),
                Kind::Gossiper => (counts.gossiper, o.gossiper),
            };
            if have < want {
                let name = counts.next_name(kind);
                agents.push(spawn(kind, &name, &bin, Some(&seed), uids.next())?);
            }
        }
    }
    let spawner = Spawner {
        bin,
        seed,
        uids,
        counts,
    };
    join_figures(&agents, &mut run)?;
    std::thread::sleep(Duration::from_secs(2));
    user_events(&agents, o, &mut run);
    idle_window(&agents, o, root, &mut run);
    rss(&agents, &mut run);
    kills(&mut agents, o, spawner, &mut run);
    run.put("load_at_end", load().into());
    drop(agents);
    if o.json {
        println!("{}", Value::Object(run.out));
    } else {
        print_table(&run.out);
    }
    Ok(())
}

/// Join times: every agent watched until it lists all agents alive.
fn join_figures(agents: &[Agent], run: &mut Run) -> Result<(), String> {
    let n = agents.len();
    let first_start = agents[0].started;
    let views = watch_all(
        agents,
        "alive",
        Duration::from_millis(10),
        first_start,
        Duration::from_secs(60),
        move |seen| seen.len() >= n,
    );
    let mut formed = first_start;
    let mut per_kind: HashMap<&str, Vec<f64>> = HashMap::new();
    for (ai, a) in agents.iter().enumerate() {
        let mut last = a.started;
        for (i, v) in views.iter().enumerate() {
            match v.get(&a.proc.name) {
                Some(&t) => last = last.max(t),
                None => {
                    return Err(format!(
                        "{} never listed {} alive within 60 s",
                        agents[i].proc.name, a.proc.name
                    ));
                }
            }
        }
        formed = formed.max(last);
        if ai != 0 {
            per_kind
                .entry(a.kind.word())
                .or_default()
                .push(ms(last - a.started));
        }
    }
    let mut j = serde_json::Map::new();
    for kind in [Kind::Serf, Kind::Gossiper] {
        let v = per_kind.remove(kind.word()).unwrap_or_default();
        let (med, max) = med_max(v.clone());
        eprintln!(
            "join, {} agents: start -> alive at all {n}: median {med:.0} ms, max {max:.0} ms",
            kind.word()
        );
        j.insert(
            kind.word().into(),
            json!({ "median_ms": med, "max_ms": max, "each_ms": v }),
        );
    }
    let formed_ms = ms(formed - first_start);
    eprintln!(
        "all {n} list all {n} alive {formed_ms:.0} ms after {} started",
        agents[0].proc.name
    );
    j.insert("formed_ms".into(), formed_ms.into());
    run.put("join", Value::Object(j));
    Ok(())
}

/// Receipt times of user events, by `(agent index, event name)`.
type Receipts = Arc<Mutex<HashMap<(usize, String), Instant>>>;

/// A thread per agent that records every user event it receives until `stop`.
fn event_watchers(
    agents: &[Agent],
    receipts: &Receipts,
    ready: &Arc<AtomicUsize>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (kind, addr) = (a.kind, a.proc.api.clone());
            let (receipts, ready, stop) = (receipts.clone(), ready.clone(), stop.clone());
            std::thread::spawn(move || {
                let record = |name: String| {
                    if let Ok(mut r) = receipts.lock() {
                        r.entry((i, name)).or_insert_with(Instant::now);
                    }
                };
                match kind {
                    Kind::Serf => {
                        let rpc = SerfRpc::connect(&addr, Duration::from_millis(200))
                            .and_then(|mut r| r.stream_user_events().map(|()| r));
                        let Ok(mut rpc) = rpc else { return };
                        ready.fetch_add(1, Ordering::SeqCst);
                        while !stop.load(Ordering::SeqCst) {
                            match rpc.next_user_event() {
                                Ok(Some(name)) => record(name),
                                Ok(None) => {}
                                Err(_) => return,
                            }
                        }
                    }
                    Kind::Gossiper => {
                        let mut index = 0;
                        let mut first = true;
                        while !stop.load(Ordering::SeqCst) {
                            let path = format!("/v1/events?index={index}&wait=500ms");
                            let Some((200, body)) = get(&addr, &path, Duration::from_secs(5))
                            else {
                                std::thread::sleep(Duration::from_millis(50));
                                continue;
                            };
                            let now = Instant::now();
                            if first {
                                ready.fetch_add(1, Ordering::SeqCst);
                                first = false;
                            }
                            let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                            for e in list.as_array().into_iter().flatten() {
                                index = index.max(e["index"].as_u64().unwrap_or(0));
                                if let Some(name) = e["name"].as_str()
                                    && let Ok(mut r) = receipts.lock()
                                {
                                    r.entry((i, name.to_owned())).or_insert(now);
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

/// User events from each kind in turn; time until every agent has each.
fn user_events(agents: &[Agent], o: &MixedOptions, run: &mut Run) {
    let receipts: Receipts = Arc::default();
    let ready = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watchers = event_watchers(agents, &receipts, &ready, &stop);
    let t = Instant::now();
    while ready.load(Ordering::SeqCst) < agents.len() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if ready.load(Ordering::SeqCst) < agents.len() {
        missed("not every agent's event stream was up within 10 s");
    }
    std::thread::sleep(Duration::from_millis(600)); // every gossiper watcher has parked
    let serfs: Vec<usize> = (0..agents.len())
        .filter(|&i| agents[i].kind == Kind::Serf)
        .collect();
    let goss: Vec<usize> = (0..agents.len())
        .filter(|&i| agents[i].kind == Kind::Gossiper)
        .collect();
    let mut per_origin: HashMap<&str, Vec<Value>> = HashMap::new();
    let mut serf_rpc = None;
    // Senders: every agent but the seed, alternately of each kind present.
    let senders =
        |k: Kind| -> Vec<usize> { (1..agents.len()).filter(|&i| agents[i].kind == k).collect() };
    let (serf_senders, goss_senders) = (senders(Kind::Serf), senders(Kind::Gossiper));
    let kinds: Vec<Kind> = [Kind::Serf, Kind::Gossiper]
        .into_iter()
        .filter(|&k| !senders(k).is_empty())
        .collect();
    for e in 0..o.events {
        let kind = kinds[e % kinds.len()];
        let from = match kind {
            Kind::Serf => serf_senders[(e / kinds.len()) % serf_senders.len()],
            Kind::Gossiper => goss_senders[(e / kinds.len()) % goss_senders.len()],
        };
        let name = format!("bench-{}-{e}", kind.word());
        let sender = &agents[from].proc;
        let sent = Instant::now();
        let ok = match kind {
            Kind::Serf => {
                let rpc = serf_rpc
                    .take()
                    .filter(|(i, _)| *i == from)
                    .map(|(_, r)| Ok(r))
                    .unwrap_or_else(|| SerfRpc::connect(&sender.api, Duration::from_secs(2)));
                rpc.and_then(|mut r| {
                    let res = r.user_event(&name, b"payload");
                    serf_rpc = Some((from, r));
                    res
                })
                .map_err(|e| e.to_string())
            }
            Kind::Gossiper => match request(
                &sender.api,
                "POST",
                &format!("/v1/event/{name}"),
                b"payload",
                Duration::from_secs(5),
            ) {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        };
        if let Err(err) = ok {
            missed(format!("event {name} from {}: {err}", sender.name));
            continue;
        }
        let all = || {
            receipts.lock().map_or(0, |r| {
                (0..agents.len())
                    .filter(|&i| r.contains_key(&(i, name.clone())))
                    .count()
            })
        };
        while all() < agents.len() && sent.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let r = receipts.lock().map(|r| r.clone()).unwrap_or_default();
        let at = |is: &[usize]| {
            is.iter()
                .map(|&i| {
                    r.get(&(i, name.clone()))
                        .map_or(f64::INFINITY, |t| ms(t.saturating_duration_since(sent)))
                })
                .fold(0.0, f64::max)
        };
        let (last_serf, last_goss) = (at(&serfs), at(&goss));
        let all_ms = last_serf.max(last_goss);
        if !all_ms.is_finite() {
            missed(format!(
                "event {name} did not reach every agent within 10 s"
            ));
        }
        eprintln!(
            "user event from {} ({}): all {} agents {all_ms:.0} ms (last Serf {last_serf:.0} ms, \
             last gossiper {last_goss:.0} ms)",
            sender.name,
            kind.word(),
            agents.len()
        );
        per_origin.entry(kind.word()).or_default().push(json!({
            "from": sender.name, "all_ms": all_ms, "last_serf_ms": last_serf,
            "last_gossiper_ms": last_goss,
        }));
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    for w in watchers {
        let _ = w.join();
    }
    let mut ev = serde_json::Map::new();
    for kind in [Kind::Serf, Kind::Gossiper] {
        let list = per_origin.remove(kind.word()).unwrap_or_default();
        let (med, max) = med_max(list.iter().filter_map(|v| v["all_ms"].as_f64()).collect());
        ev.insert(
            format!("from_{}", kind.word()),
            json!({ "median_ms": med, "max_ms": max, "each": list }),
        );
    }
    run.put("user_event", Value::Object(ev));
}

/// Bytes sent per agent per second while idle, counted by nftables.
fn idle_window(agents: &[Agent], o: &MixedOptions, root: bool, run: &mut Run) {
    let counted: Vec<Counted> = agents
        .iter()
        .filter_map(|a| {
            Some(Counted {
                port: a.proc.gossip.port(),
                uid: a.uid?,
            })
        })
        .collect();
    if !root || counted.len() != agents.len() {
        return missed(
            "idle bytes: the bench must run as root (nftables counters, one uid per agent)",
        );
    }
    let guard = match wire_count::install(&counted) {
        Ok(g) => g,
        Err(e) => return missed(format!("idle bytes: {e}")),
    };
    let before = wire_count::read();
    let t0 = Instant::now();
    eprintln!("idle window: {} s", o.idle_secs);
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let after = wire_count::read();
    let secs = t0.elapsed().as_secs_f64();
    drop(guard);
    let (Ok(before), Ok(after)) = (before, after) else {
        return missed("idle bytes: cannot read the nftables counters");
    };
    let mut idle = serde_json::Map::new();
    idle.insert("secs".into(), secs.into());
    for kind in [Kind::Serf, Kind::Gossiper] {
        let (mut bps, mut pps) = (Vec::new(), Vec::new());
        for a in agents.iter().filter(|a| a.kind == kind) {
            let port = a.proc.gossip.port();
            let (b0, p0) = before.get(&port).copied().unwrap_or_default();
            let (b1, p1) = after.get(&port).copied().unwrap_or_default();
            bps.push(b1.saturating_sub(b0) as f64 / secs);
            pps.push(p1.saturating_sub(p0) as f64 / secs);
        }
        let (bm, bx) = med_max(bps);
        let (pm, _) = med_max(pps);
        eprintln!(
            "idle, {} agents: sent {bm:.0} B/s median ({bx:.0} max), {pm:.1} packets/s median",
            kind.word()
        );
        idle.insert(
            kind.word().into(),
            json!({ "bytes_per_s_median": bm, "bytes_per_s_max": bx, "packets_per_s_median": pm }),
        );
    }
    run.put("idle_sent", Value::Object(idle));
}

/// RSS of every agent, per kind.
fn rss(agents: &[Agent], run: &mut Run) {
    let mut r = serde_json::Map::new();
    for kind in [Kind::Serf, Kind::Gossiper] {
        let v: Vec<f64> = agents
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| mib(rss_kib(a.proc.child.id())))
            .collect();
        let (med, max) = med_max(v);
        eprintln!(
            "RSS, {} agents: median {med:.2} MiB, max {max:.2} MiB",
            kind.word()
        );
        r.insert(
            kind.word().into(),
            json!({ "median_mib": med, "max_mib": max }),
        );
    }
    run.put("rss", Value::Object(r));
}

/// kill -9 agents of each kind in turn (A B B A A B B A ..., so that a drift over the series
/// weighs on both kinds alike); time until every live agent lists the victim failed. With
/// `--replace`, a fresh agent of the victim's kind then joins, so every kill sees the cluster
/// at the same size.
fn kills(agents: &mut Vec<Agent>, o: &MixedOptions, mut spawner: Spawner, run: &mut Run) {
    let first = if o.gossiper_killed_first {
        Kind::Gossiper
    } else {
        Kind::Serf
    };
    let mut list = Vec::new();
    for k in 0..o.kills {
        let mut kind = kill_kind(k, first);
        // The seed is never killed; a kind with nobody else left gives its turn away.
        let spare = |kind: Kind| agents[1..].iter().filter(|a| a.kind == kind).count();
        let floor = if o.replace { 1 } else { 2 };
        if spare(kind) < floor {
            kind = kind.other();
        }
        if spare(kind) < floor {
            missed(format!("kill #{}: no agent to spare", k + 1));
            continue;
        }
        // The newest agent of that kind.
        let Some(pos) = agents.iter().rposition(|a| a.kind == kind) else {
            continue;
        };
        let victim = agents.remove(pos);
        let name = victim.proc.name.clone();
        let killed = Instant::now();
        drop(victim); // SIGKILL, reaped
        let target = name.clone();
        let views = watch_all(
            agents,
            "failed",
            Duration::from_millis(25),
            killed,
            Duration::from_secs(60),
            move |s| s.contains_key(&target),
        );
        let seen: Vec<(Kind, f64)> = agents
            .iter()
            .zip(&views)
            .map(|(a, v)| {
                let at = v
                    .get(&name)
                    .map_or(f64::INFINITY, |t| ms(t.saturating_duration_since(killed)));
                (a.kind, at)
            })
            .collect();
        let last_of = |k: Kind| {
            seen.iter()
                .filter(|(kk, _)| *kk == k)
                .map(|s| s.1)
                .fold(0.0, f64::max)
        };
        let mut all: Vec<f64> = seen.iter().map(|s| s.1).collect();
        all.sort_by(f64::total_cmp);
        let (first_ms, median, last) = (
            percentile(&all, 0.0),
            percentile(&all, 0.5),
            percentile(&all, 1.0),
        );
        if !last.is_finite() {
            missed(format!(
                "{name} was not listed failed by every agent within 60 s"
            ));
        }
        eprintln!(
            "kill -9 {name} ({}): failed at the first agent {first_ms:.0} ms, median {median:.0} ms, \
             all {} live {last:.0} ms (last Serf {:.0} ms, last gossiper {:.0} ms)",
            kind.word(),
            agents.len(),
            last_of(Kind::Serf),
            last_of(Kind::Gossiper)
        );
        list.push(json!({
            "victim": name, "kind": kind.word(), "first_ms": first_ms, "median_ms": median,
            "all_ms": last, "last_serf_ms": last_of(Kind::Serf),
            "last_gossiper_ms": last_of(Kind::Gossiper), "live": agents.len(),
        }));
        if o.replace
            && let Err(e) = replace(agents, kind, &mut spawner)
        {
            missed(e);
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let mut summary = serde_json::Map::new();
    for kind in [Kind::Serf, Kind::Gossiper] {
        let v: Vec<f64> = list
            .iter()
            .filter(|k| k["kind"] == kind.word())
            .filter_map(|k| k["all_ms"].as_f64())
            .filter(|x| x.is_finite())
            .collect();
        if let Some(st) = Stats::of(&v) {
            eprintln!(
                "kills of {} agents: {} , failed at all: mean {:.0} ms ± {:.0} (95 %), sd {:.0}, \
                 median {:.0}, min {:.0}, max {:.0}",
                kind.word(),
                st.n,
                st.mean,
                st.half_width(),
                st.sd,
                st.median,
                st.min,
                st.max
            );
            summary.insert(kind.word().into(), st.json());
        }
    }
    if let (Some(s), Some(g)) = (
        Stats::of_json(summary.get("serf")),
        Stats::of_json(summary.get("gossiper")),
    ) {
        let (d, h) = s.welch_diff(&g);
        eprintln!(
            "gossiper victims minus Serf victims: {d:+.0} ms, 95 % interval {:+.0} to {:+.0} ms",
            d - h,
            d + h
        );
        summary.insert(
            "gossiper_minus_serf_ms".into(),
            json!({ "mean": d, "low95": d - h, "high95": d + h }),
        );
    }
    run.put("kill", Value::Array(list));
    run.put("kill_summary", Value::Object(summary));
}

/// The kind of the `k`-th victim: A B B A A B B A ..., A being `first`.
fn kill_kind(k: usize, first: Kind) -> Kind {
    if matches!(k % 4, 0 | 3) {
        first
    } else {
        first.other()
    }
}

/// Starts a fresh agent of `kind` and waits until every agent lists it alive.
fn replace(agents: &mut Vec<Agent>, kind: Kind, sp: &mut Spawner) -> Result<(), String> {
    let name = sp.counts.next_name(kind);
    let fresh = spawn(kind, &name, &sp.bin, Some(&sp.seed), sp.uids.next())?;
    agents.push(fresh);
    let since = Instant::now();
    let target = name.clone();
    let views = watch_all(
        agents,
        "alive",
        Duration::from_millis(25),
        since,
        Duration::from_secs(30),
        move |s| s.contains_key(&target),
    );
    let all = views.iter().all(|v| v.contains_key(&name));
    if !all {
        return Err(format!(
            "the replacement {name} was not listed alive by every agent within 30 s"
        ));
    }
    eprintln!(
        "{name} ({}) replaced the victim: alive at all {} in {:.0} ms",
        kind.word(),
        agents.len(),
        ms(since.elapsed())
    );
    Ok(())
}

/// Mean, spread and extremes of one kind's kill times.
struct Stats {
    n: usize,
    mean: f64,
    sd: f64,
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(v: &[f64]) -> Option<Stats> {
        if v.is_empty() {
            return None;
        }
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            f64::NAN
        };
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        Some(Stats {
            n,
            mean,
            sd: var.sqrt(),
            median: percentile(&s, 0.5),
            min: s[0],
            max: s[n - 1],
        })
    }

    fn json(&self) -> Value {
        json!({ "n": self.n, "mean_ms": self.mean, "sd_ms": self.sd, "median_ms": self.median,
                "min_ms": self.min, "max_ms": self.max, "half_width95_ms": self.half_width() })
    }

    fn of_json(v: Option<&Value>) -> Option<Stats> {
        let v = v?;
        let f = |k: &str| v[k].as_f64();
        Some(Stats {
            n: v["n"].as_u64()? as usize,
            mean: f("mean_ms")?,
            sd: f("sd_ms").unwrap_or(f64::NAN),
            median: f("median_ms")?,
            min: f("min_ms")?,
            max: f("max_ms")?,
        })
    }

    /// Half the width of the mean's 95 % interval (Student's t).
    fn half_width(&self) -> f64 {
        t975(self.n.saturating_sub(1) as f64) * self.sd / (self.n as f64).sqrt()
    }

    /// `other.mean - self.mean` and the half width of its 95 % interval (Welch).
    fn welch_diff(&self, other: &Stats) -> (f64, f64) {
        let (a, b) = (
            self.sd.powi(2) / self.n as f64,
            other.sd.powi(2) / other.n as f64,
        );
        let df = (a + b).powi(2)
            / (a.powi(2) / (self.n as f64 - 1.0) + b.powi(2) / (other.n as f64 - 1.0));
        (other.mean - self.mean, t975(df) * (a + b).sqrt())
    }
}

/// The 97.5 % quantile of Student's t with `df` degrees of freedom (NaN below 1).
fn t975(df: f64) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if df.is_nan() || df < 1.0 {
        return f64::NAN;
    }
    // Rounding down gives the wider interval.
    T.get(df.floor() as usize - 1).copied().unwrap_or(1.96)
}

fn print_table(out: &serde_json::Map<String, Value>) {
    let f = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.0}"));
    let f2 = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.2}"));
    println!(
        "\n== mixed cluster: {} Serf ({}) + {} gossiper agents, Serf LAN timing; load {} at start, \
         {} at end ==",
        out["serf_agents"],
        out["serf_version"].as_str().unwrap_or(""),
        out["gossiper_agents"],
        out["load_at_start"].as_str().unwrap_or(""),
        out["load_at_end"].as_str().unwrap_or("")
    );
    println!("{:<58} {:>16} {:>16}", "", "Serf", "gossiper");
    let j = &out["join"];
    println!(
        "{:<58} {:>16} {:>16}",
        "join: start -> alive at all, median / max (ms)",
        format!(
            "{} / {}",
            f(&j["serf"]["median_ms"]),
            f(&j["serf"]["max_ms"])
        ),
        format!(
            "{} / {}",
            f(&j["gossiper"]["median_ms"]),
            f(&j["gossiper"]["max_ms"])
        )
    );
    let e = &out["user_event"];
    println!(
        "{:<58} {:>16} {:>16}",
        "user event sent from this kind -> all, median / max (ms)",
        format!(
            "{} / {}",
            f(&e["from_serf"]["median_ms"]),
            f(&e["from_serf"]["max_ms"])
        ),
        format!(
            "{} / {}",
            f(&e["from_gossiper"]["median_ms"]),
            f(&e["from_gossiper"]["max_ms"])
        )
    );
    for k in out["kill"].as_array().into_iter().flatten() {
        println!(
            "{:<58} {:>16} {:>16}",
            format!(
                "kill -9 {} ({}) -> failed at all {} ms; last seen by",
                k["victim"].as_str().unwrap_or(""),
                k["kind"].as_str().unwrap_or(""),
                f(&k["all_ms"])
            ),
            format!("{} ms", f(&k["last_serf_ms"])),
            format!("{} ms", f(&k["last_gossiper_ms"]))
        );
    }
    if let Some(sum) = out.get("kill_summary").and_then(Value::as_object) {
        let cell = |k: &str| {
            sum.get(k).map_or("-".to_owned(), |s| {
                format!(
                    "{} ± {} (n {})",
                    f(&s["mean_ms"]),
                    f(&s["half_width95_ms"]),
                    s["n"]
                )
            })
        };
        println!(
            "{:<58} {:>16} {:>16}",
            "kill -9 of this kind -> failed at all, mean ± 95 % (ms)",
            cell("serf"),
            cell("gossiper")
        );
        if let Some(d) = sum.get("gossiper_minus_serf_ms") {
            println!(
                "{:<58} {:>33}",
                "  gossiper victims minus Serf victims, 95 % interval (ms)",
                format!(
                    "{} [{}, {}]",
                    f(&d["mean"]),
                    f(&d["low95"]),
                    f(&d["high95"])
                )
            );
        }
    }
    let r = &out["rss"];
    println!(
        "{:<58} {:>16} {:>16}",
        "RSS per agent, median / max (MiB)",
        format!(
            "{} / {}",
            f2(&r["serf"]["median_mib"]),
            f2(&r["serf"]["max_mib"])
        ),
        format!(
            "{} / {}",
            f2(&r["gossiper"]["median_mib"]),
            f2(&r["gossiper"]["max_mib"])
        )
    );
    let i = &out["idle_sent"];
    println!(
        "{:<58} {:>16} {:>16}",
        format!(
            "idle: bytes sent per agent per s over {} s, median / max",
            f(&i["secs"])
        ),
        format!(
            "{} / {}",
            f(&i["serf"]["bytes_per_s_median"]),
            f(&i["serf"]["bytes_per_s_max"])
        ),
        format!(
            "{} / {}",
            f(&i["gossiper"]["bytes_per_s_median"]),
            f(&i["gossiper"]["bytes_per_s_max"])
        )
    );
    println!(
        "{:<58} {:>16} {:>16}",
        "idle: packets sent per agent per s, median",
        format!(
            "{:.1}",
            i["serf"]["packets_per_s_median"]
                .as_f64()
                .unwrap_or(f64::NAN)
        ),
        format!(
            "{:.1}",
            i["gossiper"]["packets_per_s_median"]
                .as_f64()
                .unwrap_or(f64::NAN)
        )
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_statistics_match_hand_computed_values() {
        let s = Stats::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.n, s.mean, s.sd, s.median), (3, 2.0, 1.0, 2.0));
        // t(0.975, 2) = 4.303: 4.303 · 1 / √3.
        assert!((s.half_width() - 2.4843).abs() < 1e-3, "{}", s.half_width());
        // Equal spreads and sizes: Welch's df = 2(n − 1) = 4, t = 2.776, se = √(2/3).
        let g = Stats::of(&[11.0, 12.0, 13.0]).unwrap();
        let (d, h) = s.welch_diff(&g);
        assert_eq!(d, 10.0);
        assert!((h - 2.776 * (2.0f64 / 3.0).sqrt()).abs() < 1e-3, "{h}");
        assert!(Stats::of(&[]).is_none());
        assert!(Stats::of(&[5.0]).unwrap().half_width().is_nan());
        assert_eq!(t975(1000.0), 1.96);
    }

    #[test]
    fn kills_alternate_a_b_b_a() {
        let order = |first| -> String { (0..8).map(|k| kill_kind(k, first).prefix()).collect() };
        assert_eq!(order(Kind::Serf), "sggssggs");
        assert_eq!(order(Kind::Gossiper), "gssggssg");
    }
}
