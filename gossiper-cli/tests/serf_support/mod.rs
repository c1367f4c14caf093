//! Real Serf agents (Debian's `serf` 0.9.4) and `gossiper agent --protocol memberlist`
//! processes for the interop tests: free loopback ports, bounded waits, children killed and
//! temporary directories removed when their guards drop.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed (and reaped) on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `serf` binary, or a failure naming the install step.
pub fn serf_bin() -> &'static str {
    let found = Command::new("serf")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`serf` is not on PATH: these interop tests need Debian's serf 0.9.4 \
         (`DEBIAN_FRONTEND=noninteractive apt-get install -y serf`, as .ci/run does)"
    );
    "serf"
}

/// A loopback port free for both TCP and UDP.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port of `ip` free for both TCP and UDP, and never handed out before in this process:
/// the tests run in parallel, and a port released here could otherwise be picked again by
/// another test before its agent binds it.
pub fn free_port_on(ip: &str) -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let tcp = TcpListener::bind((ip, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) && UdpSocket::bind((ip, port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// Polls `f` every 50 ms until it holds or `limit` passes; returns the time it took.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

pub struct Serf {
    pub _child: Guard,
    pub bind: String,
    pub rpc: String,
    pub log: PathBuf,
    pub _dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "gossiper-ml-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Serf {
    pub fn start(name: &str, join: Option<&Serf>, extra: &[&str]) -> Serf {
        Serf::start_on("127.0.0.1", name, join, extra)
    }

    /// A Serf agent gossiping on `ip` (its RPC stays on 127.0.0.1).
    pub fn start_on(ip: &str, name: &str, join: Option<&Serf>, extra: &[&str]) -> Serf {
        let bin = serf_bin();
        let (port, rpc) = (free_port_on(ip), free_port());
        let dir = TempDir::new(name);
        let log = dir.0.join("serf.log");
        let bind = std::net::SocketAddr::new(ip.parse().unwrap(), port).to_string();
        let rpc = format!("127.0.0.1:{rpc}");
        let mut cmd = Command::new(bin);
        cmd.args([
            "agent",
            "-node",
            name,
            "-bind",
            &bind,
            "-rpc-addr",
            &rpc,
            "-log-level=debug",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null());
        if let Some(j) = join {
            cmd.args(["-join", &j.bind]);
        }
        let serf = Serf {
            _child: Guard(cmd.spawn().unwrap()),
            bind,
            rpc,
            log,
            _dir: dir,
        };
        wait_until(Duration::from_secs(10), "serf agent answers RPC", || {
            serf.try_members().is_some()
        });
        serf
    }

    pub fn try_members(&self) -> Option<Vec<Value>> {
        let o = Command::new("serf")
            .args(["members", "-format", "json", "-rpc-addr", &self.rpc])
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&o.stdout).ok()?;
        v["members"].as_array().cloned()
    }

    /// `(status, addr, tags)` of member `name` in `serf members`.
    pub fn member(&self, name: &str) -> Option<(String, String, Value)> {
        self.try_members()?
            .into_iter()
            .find(|m| m["name"] == name)
            .map(|m| {
                (
                    m["status"].as_str().unwrap_or("").to_owned(),
                    m["addr"].as_str().unwrap_or("").to_owned(),
                    m["tags"].clone(),
                )
            })
    }

    pub fn status(&self, name: &str) -> Option<String> {
        self.member(name).map(|m| m.0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub struct Gossiper {
    pub child: Guard,
    pub api: String,
    pub gossip: String,
}

impl Gossiper {
    pub fn spawn(name: &str, join: &Serf, extra: &[&str]) -> (Child, String, String) {
        // On the seed's address family: 127.0.0.1 or ::1.
        let seed: std::net::SocketAddr = join.bind.parse().unwrap();
        let (port, api) = (free_port_on(&seed.ip().to_string()), free_port());
        let gossip = std::net::SocketAddr::new(seed.ip(), port).to_string();
        let api = format!("127.0.0.1:{api}");
        let child = Command::new(env!("CARGO_BIN_EXE_gossiper"))
            .args([
                "agent",
                "--protocol",
                "memberlist",
                "--name",
                name,
                "--bind",
                &gossip,
                "--api",
                &api,
            ])
            .args(["--join", &join.bind])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child, api, gossip)
    }

    pub fn start(name: &str, join: &Serf, extra: &[&str]) -> Gossiper {
        let (child, api, gossip) = Gossiper::spawn(name, join, extra);
        let g = Gossiper {
            child: Guard(child),
            api,
            gossip,
        };
        wait_until(Duration::from_secs(15), "gossiper's API answers", || {
            g.get("/v1/health").is_some()
        });
        g
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        let (status, body) =
            gossiper_agent::client::request(&self.api, "GET", path, b"", Duration::from_secs(15))
                .ok()?;
        (status == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    pub fn status_of(&self, name: &str) -> Option<String> {
        let members = self.get("/v1/members")?;
        members
            .as_array()?
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["status"].as_str().unwrap_or("").to_owned())
    }

    /// The agent's `/metrics` sample `name` (an unlabelled counter or gauge).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (status, body) = gossiper_agent::client::request(
            &self.api,
            "GET",
            "/metrics",
            b"",
            Duration::from_secs(15),
        )
        .ok()?;
        (status == 200).then_some(())?;
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}
