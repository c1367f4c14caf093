//! A `gossiper agent` process for the process tests: started on loopback port 0 (so parallel
//! tests never collide), its addresses read from its first line, every wait bounded, killed
//! when dropped.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gossiper_agent::client::request;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_gossiper");
/// Gossip interval of every test agent.
pub const INTERVAL_MS: u64 = 100;

/// A running agent; killed (SIGKILL) when dropped unless it was stopped.
pub struct Agent {
    pub name: String,
    pub child: Child,
    pub gossip: SocketAddr,
    pub api: String,
    /// Its stderr lines, when the command piped stderr.
    pub log: Option<mpsc::Receiver<String>>,
}

impl Agent {
    /// An agent on 127.0.0.1, gossip and API on free ports.
    pub fn start(name: &str, join: Option<SocketAddr>, extra: &[&str]) -> Agent {
        Agent::start_on("127.0.0.1:0", name, join, extra)
    }

    /// An agent gossiping and serving on `addr` (a free port when its port is 0).
    pub fn start_on(addr: &str, name: &str, join: Option<SocketAddr>, extra: &[&str]) -> Agent {
        let mut cmd = Command::new(BIN);
        cmd.args(["agent", "--name", name, "--bind", addr, "--api", addr])
            .args(["--interval-ms", &INTERVAL_MS.to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(j) = join {
            cmd.args(["--join", &j.to_string()]);
        }
        Agent::spawn(name, cmd)
    }

    /// Starts `cmd` (a `gossiper agent` command with stdout piped) and waits for its line.
    pub fn spawn(name: &str, mut cmd: Command) -> Agent {
        let mut child = cmd.spawn().expect("spawn gossiper agent");
        let log = child.stderr.take().map(|stderr| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if !l.is_empty() => l,
            other => {
                let _ = child.kill();
                panic!("agent {name} did not report its addresses: {other:?}");
            }
        };
        // "gossiper agent NAME: gossip ADDR api http://ADDR" ("NAME (memberlist):" with
        // `--protocol memberlist`)
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |word: &str| {
            let at = words.iter().position(|w| *w == word);
            at.and_then(|i| words.get(i + 1))
                .unwrap_or_else(|| panic!("no {word} address in {line:?}"))
        };
        let gossip = after("gossip").parse().expect("gossip addr");
        let api = after("api").trim_start_matches("http://").to_owned();
        Agent {
            name: name.to_owned(),
            child,
            gossip,
            api,
            log,
        }
    }

    /// Waits (at most `limit`) for a stderr line containing `needle`, and returns it; the
    /// lines read before it are dropped. The command must have piped stderr.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        let log = self.log.as_ref().expect("stderr was not piped");
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!(
                    "{}: no log line with {needle:?} in {limit:?}: {seen:#?}",
                    self.name
                ),
            }
        }
    }

    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, text) = request(&self.api, method, path, body, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{} API: {e}", self.name));
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub fn members(&self) -> Vec<Value> {
        match self.call("GET", "/v1/members", b"").1 {
            Value::Array(a) => a,
            other => panic!("members: {other}"),
        }
    }

    pub fn status_of(&self, name: &str) -> Option<(String, u64)> {
        self.members()
            .into_iter()
            .find(|m| m["name"] == name)
            .map(|m| {
                (
                    m["status"].as_str().unwrap_or("").to_owned(),
                    m["generation"].as_u64().unwrap_or(0),
                )
            })
    }

    pub fn metric(&self, line_prefix: &str) -> u64 {
        let (_, text) =
            request(&self.api, "GET", "/metrics", b"", Duration::from_secs(10)).expect("metrics");
        text.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {line_prefix}"))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it holds or `limit` passes; returns the time it took.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn all_alive(agents: &[&Agent], n: usize) -> bool {
    agents.iter().all(|a| {
        let m = a.members();
        m.len() == n && m.iter().all(|m| m["status"] == "alive")
    })
}

pub fn cluster(n: usize, extra: &[&str]) -> Vec<Agent> {
    let first = Agent::start("n0", None, extra);
    let seed = first.gossip;
    let mut agents = vec![first];
    for i in 1..n {
        agents.push(Agent::start(&format!("n{i}"), Some(seed), extra));
    }
    let refs: Vec<&Agent> = agents.iter().collect();
    wait_for("membership to settle", Duration::from_secs(15), || {
        all_alive(&refs, n)
    });
    agents
}
