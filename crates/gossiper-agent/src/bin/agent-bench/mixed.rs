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
//! * **kill -9 → failed at all** — a Serf agent and a gossiper agent killed alternately, 2 s
//!   apart (`--first-kill serf|gossiper` picks who goes first: later kills take longer), until
//!   every live agent lists the victim `failed` (polled every 25 ms).
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
    /// Serf agents (≥ 2: the seed and one more).
    pub serf: usize,
    /// gossiper agents (≥ 1).
    pub gossiper: usize,
    /// The `gossiper` binary (default: beside this one).
    pub gossiper_bin: Option<PathBuf>,
    /// User events sent, alternately from each kind.
    pub events: usize,
    /// Kills, alternately of each kind (at most what leaves 2 agents of each kind).
    pub kills: usize,
    /// Whether the first kill is of a gossiper agent (else of a Serf agent).
    pub gossiper_killed_first: bool,
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
    if o.serf < 2 || o.gossiper < 1 {
        return Err("--serf needs at least 2 and --gossiper at least 1".into());
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

    // Start: the seed s0, then the others interleaved g0, s1, g1, ... all joining s0.
    let mut uid = FIRST_UID;
    let mut next_uid = || {
        uid += 1;
        root.then_some(uid)
    };
    let mut agents = vec![spawn(Kind::Serf, "s0", &bin, None, next_uid())?];
    let seed = agents[0].proc.gossip.to_string();
    let up = Instant::now();
    while SerfRpc::connect(&agents[0].proc.api, Duration::from_secs(1)).is_err() {
        if up.elapsed() > Duration::from_secs(10) {
            return Err("the seed serf agent s0 did not answer RPC within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut s, mut g) = (1, 0);
    while s < o.serf || g < o.gossiper {
        if g < o.gossiper {
            agents.push(spawn(
                Kind::Gossiper,
                &format!("g{g}"),
                &bin,
                Some(&seed),
                next_uid(),
            )?);
            g += 1;
        }
        if s < o.serf {
            agents.push(spawn(
                Kind::Serf,
                &format!("s{s}"),
                &bin,
                Some(&seed),
                next_uid(),
            )?);
            s += 1;
        }
    }
    join_figures(&agents, &mut run)?;
    std::thread::sleep(Duration::from_secs(2));
    user_events(&agents, o, &mut run);
    idle_window(&agents, o, root, &mut run);
    rss(&agents, &mut run);
    kills(&mut agents, o, &mut run);
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
    let pollers: Vec<_> = agents
        .iter()
        .map(|a| {
            let viewer = Viewer::new(a);
            std::thread::spawn(move || {
                watch(
                    viewer,
                    "alive",
                    Duration::from_millis(10),
                    first_start,
                    Duration::from_secs(60),
                    |seen| seen.len() >= n,
                )
            })
        })
        .collect();
    let views: Vec<HashMap<String, Instant>> = pollers
        .into_iter()
        .map(|p| p.join().unwrap_or_default())
        .collect();
    let mut formed = first_start;
    let mut per_kind: HashMap<&str, Vec<f64>> = HashMap::new();
    for a in agents {
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
        if a.proc.name != "s0" {
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
    eprintln!("all {n} list all {n} alive {formed_ms:.0} ms after s0 started");
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
    for e in 0..o.events {
        let kind = if e % 2 == 0 {
            Kind::Serf
        } else {
            Kind::Gossiper
        };
        let from = match kind {
            Kind::Serf => serfs[1 + (e / 2) % (serfs.len() - 1)],
            Kind::Gossiper => goss[(e / 2) % goss.len()],
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

/// kill -9 one agent of each kind in turn; time until every live agent lists it failed.
fn kills(agents: &mut Vec<Agent>, o: &MixedOptions, run: &mut Run) {
    let mut list = Vec::new();
    for k in 0..o.kills {
        let kind = if (k % 2 == 0) != o.gossiper_killed_first {
            Kind::Serf
        } else {
            Kind::Gossiper
        };
        let left = agents.iter().filter(|a| a.kind == kind).count();
        if left <= 2 {
            missed(format!(
                "kill #{}: no {} agent to spare",
                k + 1,
                kind.word()
            ));
            continue;
        }
        // The newest agent of that kind (never the seed).
        let Some(pos) = agents.iter().rposition(|a| a.kind == kind) else {
            continue;
        };
        let victim = agents.remove(pos);
        let name = victim.proc.name.clone();
        let killed = Instant::now();
        drop(victim); // SIGKILL, reaped
        let watchers: Vec<_> = agents
            .iter()
            .map(|a| {
                let (viewer, name, kind) = (Viewer::new(a), name.clone(), a.kind);
                std::thread::spawn(move || {
                    let seen = watch(
                        viewer,
                        "failed",
                        Duration::from_millis(25),
                        killed,
                        Duration::from_secs(60),
                        |s| s.contains_key(&name),
                    );
                    (
                        kind,
                        seen.get(&name)
                            .map_or(f64::INFINITY, |t| ms(t.saturating_duration_since(killed))),
                    )
                })
            })
            .collect();
        let seen: Vec<(Kind, f64)> = watchers
            .into_iter()
            .map(|w| w.join().unwrap_or((Kind::Serf, f64::INFINITY)))
            .collect();
        let last_of = |k: Kind| {
            seen.iter()
                .filter(|(kk, _)| *kk == k)
                .map(|s| s.1)
                .fold(0.0, f64::max)
        };
        let mut all: Vec<f64> = seen.iter().map(|s| s.1).collect();
        all.sort_by(f64::total_cmp);
        let (first, median, last) = (
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
            "kill -9 {name} ({}): failed at the first agent {first:.0} ms, median {median:.0} ms, \
             all {} live {last:.0} ms (last Serf {:.0} ms, last gossiper {:.0} ms)",
            kind.word(),
            agents.len(),
            last_of(Kind::Serf),
            last_of(Kind::Gossiper)
        );
        list.push(json!({
            "victim": name, "kind": kind.word(), "first_ms": first, "median_ms": median,
            "all_ms": last, "last_serf_ms": last_of(Kind::Serf),
            "last_gossiper_ms": last_of(Kind::Gossiper),
        }));
        std::thread::sleep(Duration::from_secs(2));
    }
    run.put("kill", Value::Array(list));
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
