//! `agent-bench`: starts N real agent processes on loopback and measures what an operator
//! cares about: membership settling, PUT → every agent, idle bytes per agent per second (payload
//! and on the wire), false suspicions while idle, RSS per agent after a burst of blocking
//! queries, and kill -9 detection.
//!
//! ```text
//! cargo build --release -p gossiper-agent --bin agent-bench
//! target/release/agent-bench --nodes 10,50,100 --detector swim
//! target/release/agent-bench --nodes 100 --detector swim,phi
//! target/release/agent-bench --nodes 100 --detector swim --idle-secs 600 --puts 5
//! ```
//!
//! Options:
//!
//! * `--nodes LIST` cluster sizes, one run each (default `10,50,100`; each ≥ 3).
//! * `--detector LIST` `swim` (default), `phi`, or `swim,phi` for a run of each per size; passed
//!   to every agent.
//! * `--interval-ms MS` probe/gossip interval (100), `--fanout K` (3).
//! * `--puts P` PUTs measured (20), `--idle-secs S` idle window (10).
//! * `--burst B` concurrent blocking queries sent to one agent before RSS is read (100).
//! * `--kills K` agents killed one after another with SIGKILL (3; at most N − 2).
//! * `--partition-secs S` before the kills, cut the agents into two halves for S seconds with
//!   nftables (needs root and `nft`; 0, the default, cuts nothing), heal, and start the kills
//!   `--after-heal-secs H` (5) after the heal: the detection figures then say whether a
//!   partition leaves the detector blind, compared with a run without it.
//!
//! * `--idle-connections C` (1,000; 0 skips it): after the burst, `C` connections that send
//!   nothing are opened to one agent and 200 `GET /v1/members` timed meanwhile (p50, p99).
//! * `--agent-cmd CMD` runs each agent as `CMD --name … --bind 127.0.0.1:0 --api 127.0.0.1:0
//!   --interval-ms … --fanout … --detector … [--join …]` (words split on spaces), e.g.
//!   `--agent-cmd target/release/gossiperd` or `--agent-cmd "target/release/gossiper agent"`:
//!   the binary users run, with its logging, config layers and signal handling. Without it the
//!   agents are this same binary re-run with `--as-agent`, which serves the same library agent
//!   and API but holds less code, so its RSS is lower than what a user sees.
//!
//! Every agent is bound to a free loopback port.
//!
//! What each figure means, in the order printed for each size N and detector:
//!
//! * **formed / settled** — time until every agent lists N − 1 members all alive (agents started
//!   one after another), then until all list N after one more agent starts.
//! * **PUT → all** — a key written at one agent (rotating), until every agent's blocking query
//!   `GET /v1/kv/NODE/KEY?index=0` has returned it; median, p90, max over the PUTs, in ms.
//! * **idle traffic** — bytes sent (and received) per agent per second over the idle window,
//!   from the agents' own `gossiper_bytes_out_total` / `gossiper_packets_out_total`: *payload*
//!   is the UDP payload the agents count; *on the wire* adds the 28 bytes of IPv4 + UDP headers
//!   per datagram (link-layer framing not included). KB = 1000 bytes.
//! * **false suspicions** — over the idle window, summed over all agents: `suspect` and `down`
//!   member events (`gossiper_member_events_total`). Every event there is false: no agent was
//!   stopped. Under SWIM a member goes alive → suspect → dead, so a transient suspicion (refuted
//!   in time) counts as one `suspect` event on each agent that heard of it; a false death counts
//!   as `down`. `up` events are printed too (refutations bring members back). After the window
//!   every agent's `/v1/members` is checked: members not `alive` are counted.
//! * **RSS** — VmRSS from `/proc/PID/status`: all agents before the burst (median, max); then
//!   `--burst` threads each send `GET /v1/kv/NODE/KEY?index=CURRENT&wait=2s` to one agent at
//!   once; once all have answered (each after ~2 s: they block concurrently) that agent's RSS
//!   is read, right away and again 6 s later (after idle HTTP threads have exited), with the
//!   median over all agents.
//! * **partition** (with `--partition-secs`) — UDP between the halves' gossip ports dropped on
//!   the input hook (table `inet gossiper_agent_bench`, deleted on heal and at exit); every
//!   agent must list the other half dead before the heal, then all N alive: the time to that
//!   is printed as *healed*.
//! * **kill -9 detection** — for each kill: time from SIGKILL until every live agent's
//!   `/v1/members` lists the victim `dead` (each agent polled every 25 ms by its own thread):
//!   first, median and last agent, in ms; also the `suspect` / `down` events the kill caused
//!   (a check that the event counters the idle window relies on move).
//!
//! With `--serf S`, it runs the mixed-cluster benchmark of issue 10 instead (module `mixed`:
//! S real Serf agents and `--gossiper G` (default S) `gossiper agent --protocol memberlist`
//! processes, Serf's LAN timing; needs `serf` on PATH and the `gossiper` binary beside this one
//! or `--gossiper-bin PATH`; run it as root for the idle-bytes figure):
//!
//! ```text
//! cargo build --release -p gossiper-cli -p gossiper-agent
//! sudo target/release/agent-bench --serf 10 --gossiper 10 [--events 6] [--kills 4] \
//!     [--first-kill serf|gossiper] [--replace] [--idle-secs 60] [--format table|json]
//! ```
//!
//! `--serf 0` or `--gossiper 0` runs a cluster of one kind only, the seed then `g0` or `s0`;
//! `--replace` replaces each victim with a fresh agent of its kind once every agent lists it
//! failed, so that many kills (`--kills 20`) all see a cluster of the same size, and the kill
//! figures close with each kind's mean and the difference of the means with its 95 % interval.
//!
//! A summary table for all runs closes the output. The exit code is 0 when every figure could be
//! measured, 1 otherwise (an agent that did not start, a cluster that did not settle, a PUT or a
//! blocking query that failed, a victim some agent never declared dead within 60 s). Targets
//! are reported, not enforced.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use gossiper_agent::AgentBuilder;
use gossiper_agent::client::request;
use gossiper_agent::http::{HttpConfig, serve};
use gossiper_cluster::{ClusterConfig, Detector};

mod mixed;
mod serf_rpc;
mod wire_count;

/// IPv4 (20) + UDP (8) header bytes per datagram.
const IP_UDP_HEADERS: u64 = 28;

struct Proc {
    name: String,
    child: Child,
    api: String,
    gossip: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Options {
    nodes: Vec<usize>,
    detectors: Vec<Detector>,
    interval_ms: u64,
    fanout: u32,
    puts: usize,
    idle_secs: u64,
    burst: usize,
    kills: usize,
    partition_secs: u64,
    after_heal_secs: u64,
    /// The agent command (`--agent-cmd`), split in words; empty: `--as-agent`.
    agent_cmd: Vec<String>,
    /// Idle connections held open while the API's latency is measured (`--idle-connections`).
    idle_connections: usize,
    /// `--serf S`: the mixed-cluster benchmark instead.
    serf: usize,
    gossiper: Option<usize>,
    gossiper_bin: Option<std::path::PathBuf>,
    events: usize,
    gossiper_killed_first: bool,
    /// `--replace`: each victim of the mixed benchmark is replaced by a fresh agent.
    replace: bool,
    idle_set: bool,
    kills_set: bool,
    json: bool,
}

/// Everything measured for one size and detector (NaN: not measured).
#[derive(Default)]
struct Figures {
    n: usize,
    detector: &'static str,
    put_p50_ms: f64,
    put_max_ms: f64,
    idle_secs: f64,
    payload_out_bps: f64,
    wire_out_bps: f64,
    wire_in_bps: f64,
    datagrams_out_ps: f64,
    idle_suspect: u64,
    idle_down: u64,
    idle_not_alive: usize,
    rss_before_median_kib: u64,
    rss_burst_kib: u64,
    rss_burst_later_kib: u64,
    rss_after_median_kib: u64,
    burst_ok: usize,
    burst_wall_ms: f64,
    kills_last_ms: Vec<f64>,
}

/// Set when a figure could not be measured; the exit code follows it.
static INCOMPLETE: AtomicBool = AtomicBool::new(false);

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("agent-bench: {msg}");
    std::process::exit(1)
}

fn missed(msg: impl std::fmt::Display) {
    eprintln!("agent-bench: not measured: {msg}");
    INCOMPLETE.store(true, Ordering::SeqCst);
}

fn parse_detector(s: &str) -> Detector {
    match s {
        "swim" => Detector::Swim,
        "phi" => Detector::Phi,
        _ => fail(format!("unknown detector {s:?}: use swim or phi")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--as-agent") {
        as_agent(&args[2..]);
        return;
    }
    let mut o = Options {
        nodes: vec![10, 50, 100],
        detectors: vec![Detector::Swim],
        interval_ms: 100,
        fanout: 3,
        puts: 20,
        idle_secs: 10,
        burst: 100,
        kills: 3,
        partition_secs: 0,
        after_heal_secs: 5,
        agent_cmd: Vec::new(),
        idle_connections: 1_000,
        serf: 0,
        gossiper: None,
        gossiper_bin: None,
        events: 6,
        gossiper_killed_first: false,
        replace: false,
        idle_set: false,
        kills_set: false,
        json: false,
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!(
                "agent-bench [--nodes 10,50,100] [--detector swim|phi|swim,phi] [--interval-ms 100] \
                 [--fanout 3] [--puts 20] [--idle-secs 10] [--burst 100] [--kills 3] \
                 [--partition-secs 0] [--after-heal-secs 5] [--agent-cmd CMD] [--idle-connections 1000]\n\
                 agent-bench --serf 10 [--gossiper 10] [--gossiper-bin PATH] [--events 6] \
                 [--kills 4] [--first-kill serf|gossiper] [--replace] [--idle-secs 60] \
                 [--format table|json]\n\
                 (see the doc comment of crates/gossiper-agent/src/bin/agent-bench/main.rs)"
            );
            return;
        }
        if flag == "--replace" {
            o.replace = true;
            continue;
        }
        let value = it
            .next()
            .unwrap_or_else(|| fail(format!("{flag} needs a value")));
        let num = |v: &str| {
            v.parse::<u64>()
                .unwrap_or_else(|_| fail(format!("bad value for {flag}: {v}")))
        };
        match flag.as_str() {
            "--nodes" => o.nodes = value.split(',').map(|v| num(v) as usize).collect(),
            "--detector" => o.detectors = value.split(',').map(parse_detector).collect(),
            "--interval-ms" => o.interval_ms = num(value),
            "--fanout" => o.fanout = num(value) as u32,
            "--puts" => o.puts = num(value) as usize,
            "--idle-secs" => {
                o.idle_secs = num(value);
                o.idle_set = true;
            }
            "--burst" => o.burst = num(value) as usize,
            "--kills" => {
                o.kills = num(value) as usize;
                o.kills_set = true;
            }
            "--serf" => o.serf = num(value) as usize,
            "--gossiper" => o.gossiper = Some(num(value) as usize),
            "--gossiper-bin" => o.gossiper_bin = Some(value.into()),
            "--events" => o.events = num(value) as usize,
            "--first-kill" => {
                o.gossiper_killed_first = match value.as_str() {
                    "gossiper" => true,
                    "serf" => false,
                    _ => fail(format!("--first-kill {value}: use serf or gossiper")),
                }
            }
            "--format" => {
                o.json = match value.as_str() {
                    "json" => true,
                    "table" => false,
                    _ => fail(format!("--format {value}: use table or json")),
                }
            }
            "--partition-secs" => o.partition_secs = num(value),
            "--after-heal-secs" => o.after_heal_secs = num(value),
            "--idle-connections" => o.idle_connections = num(value) as usize,
            "--agent-cmd" => {
                o.agent_cmd = value.split_whitespace().map(str::to_owned).collect();
                if o.agent_cmd.is_empty() {
                    fail("--agent-cmd needs a command");
                }
            }
            _ => fail(format!("unknown option {flag}")),
        }
    }
    if o.serf > 0 || o.gossiper.is_some() {
        return run_mixed(&o);
    }
    if o.nodes.iter().any(|&n| n < 3) {
        fail("--nodes: every size must be at least 3");
    }
    println!(
        "agent-bench: interval {} ms, fanout {}, {} PUTs, {} s idle window, burst of {} blocking \
         queries, {} kills",
        o.interval_ms, o.fanout, o.puts, o.idle_secs, o.burst, o.kills
    );
    let mut all = Vec::new();
    for &d in &o.detectors {
        for &n in &o.nodes {
            all.push(bench(n, d, &o));
        }
    }
    summary(&all);
    if INCOMPLETE.load(Ordering::SeqCst) {
        eprintln!("agent-bench: some figures could not be measured (see above)");
        std::process::exit(1);
    }
}

/// `--serf S`: the mixed Serf + gossiper cluster (module `mixed`).
fn run_mixed(o: &Options) {
    let m = mixed::MixedOptions {
        serf: o.serf,
        gossiper: o.gossiper.unwrap_or(o.serf),
        gossiper_bin: o.gossiper_bin.clone(),
        events: o.events,
        gossiper_killed_first: o.gossiper_killed_first,
        replace: o.replace,
        kills: if o.kills_set { o.kills } else { 4 },
        idle_secs: if o.idle_set { o.idle_secs } else { 60 },
        json: o.json,
    };
    if let Err(e) = mixed::run(&m) {
        fail(e);
    }
    if INCOMPLETE.load(Ordering::SeqCst) {
        eprintln!("agent-bench: some figures could not be measured (see above)");
        std::process::exit(1);
    }
}

/// Child mode: `--as-agent NAME INTERVAL FANOUT DETECTOR [JOIN]`: one agent with its HTTP API
/// on a current-thread tokio runtime, until killed.
fn as_agent(args: &[String]) {
    let name = args.first().cloned().unwrap_or_else(|| fail("name"));
    let mut c = ClusterConfig::new(name, SocketAddr::from(([127, 0, 0, 1], 0)), 0);
    c.interval_ms = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(100);
    c.fanout = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(3);
    c.detector = parse_detector(args.get(3).map_or("swim", String::as_str));
    if let Some(j) = args.get(4) {
        c.seeds = vec![j.parse().unwrap_or_else(|_| fail("join address"))];
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let served = runtime.block_on(async {
        let agent = AgentBuilder::new(c)
            .start()
            .await
            .unwrap_or_else(|e| fail(e));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap_or_else(|e| fail(e));
        let api = listener.local_addr().unwrap_or_else(|e| fail(e));
        println!("{} {api}", agent.gossip_addr());
        serve(agent, listener, HttpConfig::default()).await
    });
    if let Err(e) = served {
        fail(e);
    }
}

fn spawn(
    name: &str,
    o: &Options,
    detector: Detector,
    join: Option<SocketAddr>,
) -> (Proc, SocketAddr) {
    let mut cmd = if let Some((program, words)) = o.agent_cmd.split_first() {
        let mut cmd = Command::new(program);
        cmd.args(words)
            .args([
                "--name",
                name,
                "--bind",
                "127.0.0.1:0",
                "--api",
                "127.0.0.1:0",
            ])
            .args(["--interval-ms", &o.interval_ms.to_string()])
            .args(["--fanout", &o.fanout.to_string()])
            .args(["--detector", detector.name()]);
        if let Some(j) = join {
            cmd.args(["--join", &j.to_string()]);
        }
        cmd
    } else {
        let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
        let mut cmd = Command::new(exe);
        cmd.args(["--as-agent", name])
            .arg(o.interval_ms.to_string())
            .arg(o.fanout.to_string())
            .arg(detector.name());
        if let Some(j) = join {
            cmd.arg(j.to_string());
        }
        cmd
    };
    cmd.env("RUST_LOG", "error").stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| fail(e));
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap_or_else(|| fail("no stdout"));
    let _ = BufReader::new(stdout).read_line(&mut line);
    // `--as-agent` prints "GOSSIP API"; the agent binaries print
    // "gossiper agent NAME: gossip GOSSIP api http://API".
    let ready = line.replace("http://", "");
    let mut words = ready
        .split_whitespace()
        .filter(|w| w.parse::<SocketAddr>().is_ok());
    let gossip = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| fail(format!("agent {name} did not start: {line:?}")));
    let api = words
        .next()
        .unwrap_or_else(|| fail("no api address"))
        .to_owned();
    (
        Proc {
            name: name.to_owned(),
            child,
            api,
            gossip,
        },
        gossip,
    )
}

fn get(api: &str, path: &str, timeout: Duration) -> Option<(u16, String)> {
    request(api, "GET", path, b"", timeout).ok()
}

fn members(api: &str) -> Option<Vec<(String, String)>> {
    let (_, text) = get(api, "/v1/members", Duration::from_secs(5))?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(
        v.as_array()?
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or("").to_owned(),
                    m["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
    )
}

fn members_alive(api: &str) -> Option<(usize, usize)> {
    let m = members(api)?;
    Some((m.len(), m.iter().filter(|(_, s)| s == "alive").count()))
}

/// The counters of one agent's `/metrics`, by full name (labels included).
fn scrape(api: &str) -> Option<HashMap<String, u64>> {
    let (status, text) = get(api, "/metrics", Duration::from_secs(5))?;
    if status != 200 {
        return None;
    }
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// The given counters summed over all agents; `None` if an agent did not answer.
fn totals(procs: &[Proc], names: &[&str]) -> Option<Vec<u64>> {
    let mut sum = vec![0; names.len()];
    for p in procs {
        let m = scrape(&p.api)?;
        for (s, name) in sum.iter_mut().zip(names) {
            *s += m.get(*name).copied()?;
        }
    }
    Some(sum)
}

const SUSPECT: &str = "gossiper_member_events_total{event=\"suspect\"}";
const DOWN: &str = "gossiper_member_events_total{event=\"down\"}";
const UP: &str = "gossiper_member_events_total{event=\"up\"}";

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn median_rss(procs: &[Proc]) -> (u64, u64) {
    let mut rss: Vec<u64> = procs.iter().map(|p| rss_kib(p.child.id())).collect();
    rss.sort_unstable();
    (
        rss.get(rss.len() / 2).copied().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
    )
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn bench(n: usize, detector: Detector, o: &Options) -> Figures {
    let interval = o.interval_ms as f64;
    let mut f = Figures {
        n,
        detector: detector.name(),
        put_p50_ms: f64::NAN,
        put_max_ms: f64::NAN,
        ..Figures::default()
    };
    println!("\n== N = {n} agents, detector {} ==", detector.name());
    let (first, seed) = spawn("a0", o, detector, None);
    let mut procs = vec![first];
    let first_started = Instant::now();
    for i in 1..n - 1 {
        procs.push(spawn(&format!("a{i}"), o, detector, Some(seed)).0);
    }
    let spawned = first_started.elapsed();
    // Cluster formation: N-1 agents started one after another, then settled.
    let formed = settle_time(&procs, n - 1, first_started);
    println!(
        "cluster of {} formed: {:.0} ms after the first start ({:.0} ms spent spawning them one by one)",
        n - 1,
        formed.as_secs_f64() * 1e3,
        spawned.as_secs_f64() * 1e3
    );
    // Membership after the last agent starts: one more agent joins a settled cluster.
    let last_started = Instant::now();
    procs.push(spawn(&format!("a{}", n - 1), o, detector, Some(seed)).0);
    let settled = settle_time(&procs, n, last_started);
    println!(
        "membership settled: {:.0} ms after the last agent started (spawn included)",
        settled.as_secs_f64() * 1e3
    );
    std::thread::sleep(Duration::from_secs(2));

    put_latency(&procs, o, &mut f);
    if !f.put_p50_ms.is_nan() {
        println!(
            "PUT -> all {n} agents: median {:.1} ms ({:.2} intervals), max {:.1} ms",
            f.put_p50_ms,
            f.put_p50_ms / interval,
            f.put_max_ms
        );
    }

    idle_window(&procs, o, &mut f);
    rss_after_burst(&procs, o, &mut f);
    api_latency_under_idle(&procs[procs.len() / 2], o.idle_connections);
    if o.partition_secs > 0 {
        partition_and_heal(&procs, o);
    }
    kills(&mut procs, o, &mut f);
    drop(procs);
    f
}

/// PUT at one agent → every agent returns the key (blocking queries, answered on change).
fn put_latency(procs: &[Proc], o: &Options, f: &mut Figures) {
    let n = procs.len();
    let mut lat = Vec::new();
    for r in 0..o.puts {
        let writer = r % n;
        let key = format!("bench{r}");
        let path = format!("/v1/kv/{}/{key}?index=0&wait=20s", procs[writer].name);
        let waiters: Vec<_> = procs
            .iter()
            .map(|p| {
                let (api, path) = (p.api.clone(), path.clone());
                std::thread::spawn(move || {
                    let r = get(&api, &path, Duration::from_secs(30));
                    (r.map(|(s, _)| s), Instant::now())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300)); // let every query block first
        let start = Instant::now();
        match request(
            &procs[writer].api,
            "PUT",
            &format!("/v1/kv/{key}"),
            b"v",
            Duration::from_secs(5),
        ) {
            Ok((200, _)) => {}
            other => fail(format!("PUT failed: {other:?}")),
        }
        let mut worst = Duration::ZERO;
        let mut ok = true;
        for w in waiters {
            let (status, at) = w.join().unwrap_or((None, Instant::now()));
            if status != Some(200) {
                missed(format!("an agent did not return {key}: {status:?}"));
                ok = false;
            }
            worst = worst.max(at.saturating_duration_since(start));
        }
        if ok {
            lat.push(worst.as_secs_f64() * 1e3);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    lat.sort_by(f64::total_cmp);
    if lat.is_empty() {
        if o.puts > 0 {
            missed("no PUT reached every agent");
        }
        return;
    }
    f.put_p50_ms = percentile(&lat, 0.5);
    f.put_max_ms = percentile(&lat, 1.0);
}

/// Idle traffic and false suspicions over the idle window.
fn idle_window(procs: &[Proc], o: &Options, f: &mut Figures) {
    let n = procs.len() as f64;
    let names = [
        "gossiper_bytes_out_total",
        "gossiper_packets_out_total",
        "gossiper_bytes_in_total",
        "gossiper_packets_in_total",
        SUSPECT,
        DOWN,
        UP,
    ];
    let Some(before) = totals(procs, &names) else {
        return missed("an agent's /metrics did not answer before the idle window");
    };
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let Some(after) = totals(procs, &names) else {
        return missed("an agent's /metrics did not answer after the idle window");
    };
    let secs = t0.elapsed().as_secs_f64();
    let d: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let per = |v: u64| v as f64 / n / secs;
    f.idle_secs = secs;
    f.payload_out_bps = per(d[0]);
    f.wire_out_bps = per(d[0] + IP_UDP_HEADERS * d[1]);
    f.wire_in_bps = per(d[2] + IP_UDP_HEADERS * d[3]);
    f.datagrams_out_ps = per(d[1]);
    f.idle_suspect = d[4];
    f.idle_down = d[5];
    let mut not_alive = 0;
    for p in procs {
        match members(&p.api) {
            Some(m) => not_alive += m.iter().filter(|(_, s)| s != "alive").count(),
            None => missed(format!("{}'s /v1/members did not answer", p.name)),
        }
    }
    f.idle_not_alive = not_alive;
    println!(
        "idle traffic per agent over {secs:.0} s: sent {:.2} KB/s payload, {:.2} KB/s on the wire \
         (+{IP_UDP_HEADERS} B IPv4+UDP per datagram, {:.1} datagrams/s); received {:.2} KB/s \
         payload, {:.2} KB/s on the wire",
        f.payload_out_bps / 1e3,
        f.wire_out_bps / 1e3,
        f.datagrams_out_ps,
        per(d[2]) / 1e3,
        f.wire_in_bps / 1e3,
    );
    println!(
        "false suspicions while idle (all agents together): {} suspect events, {} down events \
         (false dead verdicts), {} up events; after the window {not_alive} member entries not \
         alive",
        d[4], d[5], d[6]
    );
}

/// RSS of all agents, then of one agent after `--burst` concurrent blocking queries.
/// Latency of `GET /v1/members` at one agent while `idle` other connections are open there and
/// send nothing (each new request on a fresh connection, 200 of them, one after another).
fn api_latency_under_idle(target: &Proc, idle: usize) {
    if idle == 0 {
        return;
    }
    let held: Vec<std::net::TcpStream> = (0..idle)
        .filter_map(|_| std::net::TcpStream::connect(&target.api).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut ms = Vec::with_capacity(200);
    let mut failed = 0;
    for _ in 0..200 {
        let t = Instant::now();
        match get(&target.api, "/v1/members", Duration::from_secs(5)) {
            Some((200, _)) => ms.push(t.elapsed().as_secs_f64() * 1e3),
            _ => failed += 1,
        }
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "API latency with {} idle connections open at {}: GET /v1/members p50 {:.2} ms, p99 {:.2} ms, \
         max {:.2} ms ({} of 200 failed)",
        held.len(),
        target.name,
        at(0.5),
        at(0.99),
        ms.last().copied().unwrap_or(f64::NAN),
        failed
    );
    if held.len() < idle || failed > 0 {
        missed("API latency under idle connections");
    }
}

fn rss_after_burst(procs: &[Proc], o: &Options, f: &mut Figures) {
    let (med, max) = median_rss(procs);
    f.rss_before_median_kib = med;
    println!(
        "RSS per agent before the burst: median {:.2} MiB, max {:.2} MiB",
        mib(med),
        mib(max)
    );
    let target = &procs[procs.len() / 2];
    let owner = &procs[0].name;
    let key = "bench0";
    let version = get(
        &target.api,
        &format!("/v1/kv/{owner}/{key}"),
        Duration::from_secs(5),
    )
    .and_then(|(_, t)| serde_json::from_str::<serde_json::Value>(&t).ok())
    .and_then(|v| v["version"].as_u64())
    .unwrap_or(0);
    let path = format!("/v1/kv/{owner}/{key}?index={version}&wait=2s");
    let barrier = Arc::new(Barrier::new(o.burst + 1));
    let clients: Vec<_> = (0..o.burst)
        .map(|_| {
            let (api, path, barrier) = (target.api.clone(), path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                get(&api, &path, Duration::from_secs(10)).map(|(s, _)| s)
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut statuses: HashMap<Option<u16>, usize> = HashMap::new();
    for c in clients {
        *statuses.entry(c.join().ok().flatten()).or_default() += 1;
    }
    let wall = start.elapsed();
    f.burst_wall_ms = wall.as_secs_f64() * 1e3;
    f.burst_ok = statuses.get(&Some(200)).copied().unwrap_or(0);
    let pid = target.child.id();
    f.rss_burst_kib = rss_kib(pid);
    let (med, max) = median_rss(procs);
    f.rss_after_median_kib = med;
    std::thread::sleep(Duration::from_secs(6));
    f.rss_burst_later_kib = rss_kib(pid);
    let mut st: Vec<_> = statuses.into_iter().collect();
    st.sort();
    println!(
        "burst: {} concurrent GET {path} at {}: answered in {:.0} ms, statuses {st:?}",
        o.burst, target.name, f.burst_wall_ms
    );
    println!(
        "RSS after the burst: {} {:.2} MiB (6 s later {:.2} MiB); all agents median {:.2} MiB, \
         max {:.2} MiB",
        target.name,
        mib(f.rss_burst_kib),
        mib(f.rss_burst_later_kib),
        mib(med),
        mib(max)
    );
    if f.burst_ok != o.burst {
        missed(format!(
            "{} of {} blocking queries did not return 200",
            o.burst - f.burst_ok,
            o.burst
        ));
    }
}

/// The nftables table the partition lives in.
const NFT_TABLE: &str = "gossiper_agent_bench";

/// Runs `nft -f -` with `script`.
fn nft(script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e} (install nftables; run as root)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("nft: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("nft exited with {status}"))
    }
}

/// Deletes the partition's table when dropped, so that no exit path leaves loopback cut.
struct Partition;

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {NFT_TABLE}\n"));
    }
}

/// Cuts the agents into two halves for `--partition-secs`, checks each side lists the other
/// dead, heals, waits until all list everyone alive, then `--after-heal-secs`.
fn partition_and_heal(procs: &[Proc], o: &Options) {
    let half = procs.len() / 2;
    let ports = |ps: &[Proc]| {
        ps.iter()
            .map(|p| p.gossip.port().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (a, b) = (ports(&procs[..half]), ports(&procs[half..]));
    let script = format!(
        "add table inet {NFT_TABLE}\n\
         add chain inet {NFT_TABLE} input {{ type filter hook input priority 0; policy accept; }}\n\
         add rule inet {NFT_TABLE} input udp sport {{ {a} }} udp dport {{ {b} }} drop\n\
         add rule inet {NFT_TABLE} input udp sport {{ {b} }} udp dport {{ {a} }} drop\n"
    );
    let guard = Partition;
    if let Err(e) = nft(&script) {
        return missed(format!("partition: {e}"));
    }
    let cut_at = Instant::now();
    println!(
        "partition: {half} | {} agents cut apart for {} s",
        procs.len() - half,
        o.partition_secs
    );
    std::thread::sleep(Duration::from_secs(o.partition_secs));
    let side_dead = procs.iter().enumerate().all(|(i, p)| {
        members(&p.api).is_some_and(|m| {
            procs
                .iter()
                .enumerate()
                .filter(|&(j, _)| (j < half) != (i < half))
                .all(|(_, q)| m.iter().any(|(n, s)| *n == q.name && s == "dead"))
        })
    });
    if !side_dead {
        missed("partition: some agent did not list the other side dead before the heal");
    }
    drop(guard);
    let healed_at = Instant::now();
    let healed = settle_time(procs, procs.len(), healed_at);
    println!(
        "partition healed after {:.1} s cut: all {} agents list everyone alive {:.0} ms later",
        healed_at.duration_since(cut_at).as_secs_f64(),
        procs.len(),
        healed.as_secs_f64() * 1e3
    );
    std::thread::sleep(Duration::from_secs(o.after_heal_secs).saturating_sub(healed));
}

/// kill -9 one agent at a time; time until every other agent lists it dead.
fn kills(procs: &mut Vec<Proc>, o: &Options, f: &mut Figures) {
    let kills = o.kills.min(procs.len().saturating_sub(2));
    for k in 0..kills {
        let victim = procs.pop().unwrap_or_else(|| fail("no agents"));
        let Some(before) = totals(procs, &[SUSPECT, DOWN]) else {
            return missed("an agent's /metrics did not answer before a kill");
        };
        let victim_name = victim.name.clone();
        let killed_at = Instant::now();
        drop(victim); // SIGKILL, then reaped
        let watchers: Vec<_> = procs
            .iter()
            .map(|p| {
                let (api, name) = (p.api.clone(), victim_name.clone());
                std::thread::spawn(move || {
                    while killed_at.elapsed() < Duration::from_secs(60) {
                        if let Some(m) = members(&api)
                            && m.iter().any(|(n, s)| *n == name && s == "dead")
                        {
                            return Some(killed_at.elapsed());
                        }
                        std::thread::sleep(Duration::from_millis(25));
                    }
                    None
                })
            })
            .collect();
        let mut detect: Vec<f64> = watchers
            .into_iter()
            .map(|w| {
                w.join()
                    .ok()
                    .flatten()
                    .map_or(f64::INFINITY, |d| d.as_secs_f64() * 1e3)
            })
            .collect();
        detect.sort_by(f64::total_cmp);
        let last = percentile(&detect, 1.0);
        if !last.is_finite() {
            missed(format!(
                "{} agents never listed {victim_name} dead within 60 s",
                detect.iter().filter(|d| !d.is_finite()).count()
            ));
        }
        f.kills_last_ms.push(last);
        std::thread::sleep(Duration::from_millis(500));
        let events = totals(procs, &[SUSPECT, DOWN]).map(|a| {
            (
                a[0].saturating_sub(before[0]),
                a[1].saturating_sub(before[1]),
            )
        });
        println!(
            "kill -9 #{} ({victim_name}): dead at the first agent {:.0} ms, median {:.0} ms, all {} \
             live agents {last:.0} ms; events: {}",
            k + 1,
            percentile(&detect, 0.0),
            percentile(&detect, 0.5),
            procs.len(),
            events.map_or("?".into(), |(s, d)| format!("{s} suspect, {d} down"))
        );
        std::thread::sleep(Duration::from_millis(1_500));
    }
}

fn summary(all: &[Figures]) {
    println!(
        "\n== summary (KB = 1000 B; wire = payload + 28 B IPv4/UDP per datagram; RSS in MiB) ==\n\
         {:>4} {:>5} | {:>8} {:>8} | {:>9} {:>9} {:>7} {:>8} | {:>7} {:>6} {:>9} | {:>6} {:>6} {:>6} {:>6} | kill -9 -> dead at all (ms)",
        "N",
        "det",
        "PUT p50",
        "PUT max",
        "out pay",
        "out wire",
        "dgram/s",
        "in wire",
        "suspect",
        "down",
        "not alive",
        "RSS0",
        "burst",
        "+6 s",
        "median",
    );
    for f in all {
        let kills: Vec<String> = f.kills_last_ms.iter().map(|k| format!("{k:.0}")).collect();
        println!(
            "{:>4} {:>5} | {:>5.1} ms {:>5.1} ms | {:>4.2} KB/s {:>4.2} KB/s {:>7.1} {:>3.2} KB/s | {:>7} {:>6} {:>9} | {:>6.2} {:>6.2} {:>6.2} {:>6.2} | {}",
            f.n,
            f.detector,
            f.put_p50_ms,
            f.put_max_ms,
            f.payload_out_bps / 1e3,
            f.wire_out_bps / 1e3,
            f.datagrams_out_ps,
            f.wire_in_bps / 1e3,
            f.idle_suspect,
            f.idle_down,
            f.idle_not_alive,
            mib(f.rss_before_median_kib),
            mib(f.rss_burst_kib),
            mib(f.rss_burst_later_kib),
            mib(f.rss_after_median_kib),
            kills.join(", ")
        );
    }
}

/// Time from `since` until every agent lists `n` members, all alive (one polling thread per
/// agent, so the figure is not the time it takes to poll them all in turn).
fn settle_time(procs: &[Proc], n: usize, since: Instant) -> Duration {
    let pollers: Vec<_> = procs
        .iter()
        .map(|p| {
            let api = p.api.clone();
            std::thread::spawn(move || {
                while since.elapsed() < Duration::from_secs(60) {
                    if members_alive(&api) == Some((n, n)) {
                        return Some(since.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                None
            })
        })
        .collect();
    let mut settled = Duration::ZERO;
    for p in pollers {
        match p.join().ok().flatten() {
            Some(t) => settled = settled.max(t),
            None => fail("membership did not settle within 60 s"),
        }
    }
    settled
}
