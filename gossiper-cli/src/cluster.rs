//! `gossiper cluster --nodes N`: a local cluster of N agents as child processes on loopback
//! ports, to watch membership and failure detection at work.
//!
//! Its flags are checked before anything starts. When the default ports are taken it picks the
//! next free ones. An agent that dies is reported and the others keep running; commands on
//! stdin stop, kill or restart one (`help` lists them). Ctrl-C or SIGTERM stops them all, each
//! leaving gracefully. The children die with the parent even when it is killed: each watches
//! its stdin, a pipe from the parent, and leaves when it closes.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use gossiper_cluster::{ClusterConfig, Keyring};

use crate::CliError;

/// Default gossip port of the first agent.
const DEFAULT_BASE_PORT: u16 = 7946;
/// Default API port of the first agent.
const DEFAULT_API_BASE_PORT: u16 = 8946;

/// Options of `gossiper cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Number of agents (1..=200).
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Gossip port of the first agent; agent i uses this + i (default 7946, or the next free
    /// run of ports when those are taken).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// API port of the first agent; agent i uses this + i (default 8946, or the next free run).
    #[arg(long)]
    pub api_base_port: Option<u16>,
    /// Cluster name.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Key file handed to every agent.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Gossip round interval in milliseconds (10..=60000).
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Peers contacted per round (1..=16).
    #[arg(long, default_value_t = 3)]
    pub fanout: u32,
}

/// Asks a child to leave gracefully (SIGTERM); the agent then exits 0.
pub fn terminate(child: &Child) {
    signal(child, "TERM");
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Prints a line; a closed stdout (a pipe into `head`) is no reason to stop.
fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Whether `count` ports from `base` are free on loopback (UDP for gossip, TCP for the API).
fn ports_free(base: u16, count: u16, udp: bool) -> bool {
    (0..count).all(|i| {
        let addr = SocketAddr::from(([127, 0, 0, 1], base.saturating_add(i)));
        if udp {
            UdpSocket::bind(addr).is_ok()
        } else {
            TcpListener::bind(addr).is_ok()
        }
    })
}

/// The first port of a run of `count` free ports: `given` (which must then be free), or the
/// default, or the next free run above it.
fn pick_ports(
    flag: &str,
    given: Option<u16>,
    default: u16,
    count: u16,
    udp: bool,
) -> Result<u16, CliError> {
    if u32::from(given.unwrap_or(default)) + u32::from(count) > u32::from(u16::MAX) {
        return Err(CliError::usage(format!(
            "{flag}: ports would run past 65535"
        )));
    }
    if let Some(base) = given {
        if !ports_free(base, count, udp) {
            return Err(CliError::usage(format!(
                "{flag} {base}: a port of {base}..{} is taken",
                u32::from(base) + u32::from(count)
            )));
        }
        return Ok(base);
    }
    let mut base = default;
    while u32::from(base) + u32::from(count) <= u32::from(u16::MAX) {
        if ports_free(base, count, udp) {
            return Ok(base);
        }
        base += count;
    }
    Err(CliError::failure(format!(
        "no run of {count} free ports from {default}"
    )))
}

/// One agent of the cluster, running or not.
struct Member {
    name: String,
    bind: String,
    api: String,
    child: Option<(Child, ChildStdin)>,
}

/// Everything needed to (re)start agent `i`.
struct Plan {
    exe: PathBuf,
    args: ClusterArgs,
    gossip: u16,
    api: u16,
}

impl Plan {
    fn spawn(&self, i: u16) -> Result<(Child, ChildStdin), CliError> {
        let name = format!("node-{i}");
        let mut cmd = Command::new(&self.exe);
        cmd.arg("agent")
            .args(["--name", &name])
            .args(["--bind", &format!("127.0.0.1:{}", self.gossip + i)])
            .args(["--api", &format!("127.0.0.1:{}", self.api + i)])
            .args(["--cluster", &self.args.cluster])
            .args(["--interval-ms", &self.args.interval_ms.to_string()])
            .args(["--fanout", &self.args.fanout.to_string()])
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        // The agents are set by these flags alone: a GOSSIPER_JOIN or GOSSIPER_CONFIG meant for
        // a real agent must not pull this local cluster into it.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GOSSIPER_") {
                cmd.env_remove(key);
            }
        }
        // The first three other agents are its seeds, so any one can be restarted.
        for j in (0..self.args.nodes).filter(|&j| j != i).take(3) {
            cmd.args(["--join", &format!("127.0.0.1:{}", self.gossip + j)]);
        }
        if let Some(k) = &self.args.key_file {
            cmd.arg("--key-file").arg(k);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| CliError::failure(format!("cannot start {name}: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| CliError::failure(format!("{name} has no stdin")))?;
        Ok((child, stdin))
    }
}

/// Checks every flag the agents will get, before any starts.
fn validate(args: &ClusterArgs) -> Result<(), CliError> {
    if !(1..=200).contains(&args.nodes) {
        return Err(CliError::usage("--nodes must be within 1..=200"));
    }
    let mut c = ClusterConfig::new("check", SocketAddr::from(([127, 0, 0, 1], 1)), 1);
    c.interval_ms = args.interval_ms;
    c.fanout = args.fanout;
    c.cluster = args.cluster.clone();
    c.validate().map_err(|e| CliError::usage(e.0))?;
    if let Some(path) = &args.key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
        Keyring::parse(&text)
            .map_err(|e| CliError::usage(format!("bad key file {}: {e}", path.display())))?;
    }
    Ok(())
}

const HELP: &str = "commands: `stop NAME` (leave gracefully), `kill NAME` (SIGKILL, to watch \
                    failure detection), `restart NAME`, `list`, `help`";

/// Starts the agents, prints how to reach them, serves stdin commands, and stops them all on
/// Ctrl-C or SIGTERM.
pub fn run(args: &ClusterArgs) -> Result<(), CliError> {
    validate(args)?;
    let n = args.nodes;
    let gossip = pick_ports("--base-port", args.base_port, DEFAULT_BASE_PORT, n, true)?;
    let api = pick_ports(
        "--api-base-port",
        args.api_base_port,
        DEFAULT_API_BASE_PORT,
        n,
        false,
    )?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find the gossiper binary: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| CliError::failure(format!("cannot install the signal handler: {e}")))?;
    let plan = Plan {
        exe,
        args: args.clone(),
        gossip,
        api,
    };
    let mut members: Vec<Member> = Vec::new();
    say(&format!(
        "{:<10} {:<18} {:<28} try",
        "NAME", "GOSSIP", "API"
    ));
    for i in 0..n {
        let child = match plan.spawn(i) {
            Ok(c) => c,
            Err(e) => {
                stop_all(&mut members);
                return Err(e);
            }
        };
        let m = Member {
            name: format!("node-{i}"),
            bind: format!("127.0.0.1:{}", gossip + i),
            api: format!("127.0.0.1:{}", api + i),
            child: Some(child),
        };
        say(&format!(
            "{:<10} {:<18} http://{:<21} gossiper members --api {}",
            m.name, m.bind, m.api, m.api
        ));
        members.push(m);
    }
    say(&format!(
        "{n} agents running; Ctrl-C stops them all. {HELP}."
    ));
    let commands = read_commands();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        for m in &mut members {
            if let Some((child, _)) = &mut m.child
                && let Ok(Some(status)) = child.try_wait()
            {
                say(&format!(
                    "{} exited ({status}); the others keep running (`restart {}` starts it again)",
                    m.name, m.name
                ));
                m.child = None;
            }
        }
        while let Ok(line) = commands.try_recv() {
            command(&plan, &mut members, &line);
        }
    }
    stop_all(&mut members);
    say("all agents stopped");
    Ok(())
}

/// Lines from stdin, read on a thread of their own (stdin has no timeout).
fn read_commands() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
    if spawned.is_err() {
        log::warn!("cannot read commands from stdin");
    }
    rx
}

fn command(plan: &Plan, members: &mut [Member], line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (verb, name) = match words.as_slice() {
        [] => return,
        ["list"] => {
            for m in members.iter() {
                let state = if m.child.is_some() { "running" } else { "down" };
                say(&format!(
                    "{:<10} {:<18} {:<22} {state}",
                    m.name, m.bind, m.api
                ));
            }
            return;
        }
        [verb @ ("stop" | "kill" | "restart"), name] => (*verb, *name),
        _ => return say(HELP),
    };
    let Some(i) = members.iter().position(|m| m.name == name) else {
        return say(&format!("no agent named {name:?}"));
    };
    let m = &mut members[i];
    match (verb, &m.child) {
        ("stop", Some((child, _))) => terminate(child),
        ("kill", Some((child, _))) => signal(child, "KILL"),
        ("stop" | "kill", None) => say(&format!("{name} is not running")),
        ("restart", Some(_)) => say(&format!("{name} is running; `stop {name}` it first")),
        _ => match plan.spawn(i as u16) {
            Ok(child) => {
                m.child = Some(child);
                say(&format!("{name} restarted"));
            }
            Err(e) => say(&e.to_string()),
        },
    }
}

fn stop_all(members: &mut [Member]) {
    for (child, _) in members.iter().filter_map(|m| m.child.as_ref()) {
        terminate(child);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for m in members.iter_mut() {
        let Some((child, _)) = &mut m.child else {
            continue;
        };
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() >= deadline => {
                    log::warn!("{} did not stop in time; killing it", m.name);
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        m.child = None;
    }
}
