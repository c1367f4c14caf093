//! `agent-bench`: starts N real agent processes on loopback and measures what an operator
//! cares about: membership settling, PUT → every agent, idle bytes per node per second, kill -9
//! detection, false suspicions while idle, and RSS per agent.
//!
//! ```text
//! cargo run --release -p gossiper-agent --bin agent-bench -- --nodes 10,50,100
//! ```
//!
//! Options: `--nodes LIST` (default 10,50,100), `--interval-ms` (100), `--fanout` (3),
//! `--puts` (20), `--idle-secs` (10). The agents are this same binary re-run with `--as-agent`,
//! each bound to a free loopback port.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gossiper_agent::client::request;
use gossiper_agent::{Agent, AgentConfig};

struct Proc {
    name: String,
    child: Child,
    gossip: SocketAddr,
    api: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Options {
    nodes: Vec<usize>,
    interval_ms: u64,
    fanout: u32,
    puts: usize,
    idle_secs: u64,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("agent-bench: {msg}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--as-agent") {
        as_agent(&args[2..]);
        return;
    }
    let mut o = Options {
        nodes: vec![10, 50, 100],
        interval_ms: 100,
        fanout: 3,
        puts: 20,
        idle_secs: 10,
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| fail(format!("{flag} needs a value")));
        let num = |v: &str| {
            v.parse::<u64>()
                .unwrap_or_else(|_| fail(format!("bad value for {flag}: {v}")))
        };
        match flag.as_str() {
            "--nodes" => o.nodes = value.split(',').map(|v| num(v) as usize).collect(),
            "--interval-ms" => o.interval_ms = num(value),
            "--fanout" => o.fanout = num(value) as u32,
            "--puts" => o.puts = num(value) as usize,
            "--idle-secs" => o.idle_secs = num(value),
            _ => fail(format!("unknown option {flag}")),
        }
    }
    if o.nodes.iter().any(|&n| n < 3) {
        fail("--nodes: every size must be at least 3");
    }
    println!(
        "agent-bench: interval {} ms, fanout {}, {} PUTs, {} s idle window",
        o.interval_ms, o.fanout, o.puts, o.idle_secs
    );
    for &n in &o.nodes {
        bench(n, &o);
    }
}

/// Child mode: `--as-agent NAME INTERVAL FANOUT [JOIN]`.
fn as_agent(args: &[String]) {
    let mut c = AgentConfig::new(args.first().cloned().unwrap_or_else(|| fail("name")));
    c.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    c.api = SocketAddr::from(([127, 0, 0, 1], 0));
    c.interval_ms = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(100);
    c.fanout = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(3);
    if let Some(j) = args.get(3) {
        c.join = vec![j.parse().unwrap_or_else(|_| fail("join address"))];
    }
    let agent = Agent::start(c, Arc::new(AtomicBool::new(false))).unwrap_or_else(|e| fail(e));
    println!("{} {}", agent.gossip_addr(), agent.api_addr());
    let _ = agent.wait();
}

fn spawn(name: &str, o: &Options, join: Option<SocketAddr>) -> Proc {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
    let mut cmd = Command::new(exe);
    cmd.args(["--as-agent", name])
        .arg(o.interval_ms.to_string())
        .arg(o.fanout.to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped());
    if let Some(j) = join {
        cmd.arg(j.to_string());
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| fail(e));
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap_or_else(|| fail("no stdout"));
    let _ = BufReader::new(stdout).read_line(&mut line);
    let mut words = line.split_whitespace();
    let gossip = words
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| fail(format!("agent {name} did not start: {line:?}")));
    let api = words
        .next()
        .unwrap_or_else(|| fail("no api address"))
        .to_owned();
    Proc {
        name: name.to_owned(),
        child,
        gossip,
        api,
    }
}

fn get(api: &str, path: &str, timeout: Duration) -> Option<(u16, String)> {
    request(api, "GET", path, b"", timeout).ok()
}

fn members_alive(api: &str) -> Option<(usize, usize)> {
    let (_, text) = get(api, "/v1/members", Duration::from_secs(5))?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let a = v.as_array()?;
    Some((a.len(), a.iter().filter(|m| m["status"] == "alive").count()))
}

fn metric(api: &str, prefix: &str) -> u64 {
    get(api, "/metrics", Duration::from_secs(5))
        .and_then(|(_, t)| {
            t.lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        })
        .unwrap_or(0)
}

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn bench(n: usize, o: &Options) {
    let interval = o.interval_ms as f64;
    println!("\n== N = {n} agents ==");
    let mut procs = vec![spawn("a0", o, None)];
    let seed = procs[0].gossip;
    let first_started = Instant::now();
    for i in 1..n - 1 {
        procs.push(spawn(&format!("a{i}"), o, Some(seed)));
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
    procs.push(spawn(&format!("a{}", n - 1), o, Some(seed)));
    let settled = settle_time(&procs, n, last_started);
    println!(
        "membership settled: {:.0} ms after the last agent started (spawn included)",
        settled.as_secs_f64() * 1e3
    );
    std::thread::sleep(Duration::from_secs(2));

    // PUT at one agent -> every agent returns the key (blocking queries, answered on change).
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
        for w in waiters {
            let (status, at) = w.join().unwrap_or((None, Instant::now()));
            if status != Some(200) {
                fail(format!("an agent did not return {key}: {status:?}"));
            }
            worst = worst.max(at.saturating_duration_since(start));
        }
        lat.push(worst.as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(200));
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p90, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 1.0),
    );
    println!(
        "PUT -> all {n} agents: median {p50:.1} ms ({:.2} intervals), p90 {p90:.1} ms, max {max:.1} ms",
        p50 / interval
    );

    // Idle traffic and false suspicions.
    let out0: u64 = procs
        .iter()
        .map(|p| metric(&p.api, "gossiper_bytes_out_total"))
        .sum();
    let in0: u64 = procs
        .iter()
        .map(|p| metric(&p.api, "gossiper_bytes_in_total"))
        .sum();
    let verdicts = |procs: &[Proc]| -> (u64, u64) {
        procs.iter().fold((0, 0), |(s, d), p| {
            (
                s + metric(&p.api, "gossiper_member_events_total{event=\"suspect\"}"),
                d + metric(&p.api, "gossiper_member_events_total{event=\"down\"}"),
            )
        })
    };
    let (sus0, down0) = verdicts(&procs);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let out1: u64 = procs
        .iter()
        .map(|p| metric(&p.api, "gossiper_bytes_out_total"))
        .sum();
    let in1: u64 = procs
        .iter()
        .map(|p| metric(&p.api, "gossiper_bytes_in_total"))
        .sum();
    let (sus1, down1) = verdicts(&procs);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "idle traffic: {:.1} KB/s sent and {:.1} KB/s received per agent; in {:.0} s idle: {} false dead verdicts, {} transient suspicions (all agents together)",
        (out1 - out0) as f64 / n as f64 / secs / 1e3,
        (in1 - in0) as f64 / n as f64 / secs / 1e3,
        secs,
        down1 - down0,
        sus1 - sus0
    );

    let rss: Vec<u64> = procs.iter().map(|p| rss_kib(p.child.id())).collect();
    let mean = rss.iter().sum::<u64>() as f64 / rss.len() as f64;
    println!(
        "RSS per agent: mean {:.2} MiB, max {:.2} MiB",
        mean / 1024.0,
        *rss.iter().max().unwrap_or(&0) as f64 / 1024.0
    );

    // kill -9 one agent; time until every other agent says dead.
    let victim = procs.pop().unwrap_or_else(|| fail("no agents"));
    let victim_name = victim.name.clone();
    let killed_at = Instant::now();
    drop(victim);
    let watchers: Vec<_> = procs
        .iter()
        .map(|p| {
            let (api, name) = (p.api.clone(), victim_name.clone());
            std::thread::spawn(move || {
                while killed_at.elapsed() < Duration::from_secs(60) {
                    if let Some((_, text)) = get(&api, "/v1/members", Duration::from_secs(5)) {
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                        let dead = v
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|m| m["name"] == name.as_str() && m["status"] == "dead");
                        if dead {
                            return Some(killed_at.elapsed());
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
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
    println!(
        "kill -9 detection: first {:.0} ms, median {:.0} ms, all {} others {:.0} ms",
        percentile(&detect, 0.0),
        percentile(&detect, 0.5),
        n - 1,
        percentile(&detect, 1.0)
    );
    drop(procs);
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
