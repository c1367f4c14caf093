//! `gossiperd`, the agent as a binary of its own: the same options as `gossiper agent`, the
//! same agent (it joins `gossiper agent` nodes and leaves on SIGTERM), and the API's heap trim
//! after connections close.

mod agent_support;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_support::{Agent, BIN, INTERVAL_MS, all_alive, wait_for};

const DAEMON: &str = env!("CARGO_BIN_EXE_gossiperd");

/// The long options a `--help` text lists (`--name`, `--bind`, ...).
fn long_options(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("-h, ")
                .or(l.strip_prefix("-V, "))
                .unwrap_or(l);
            l.strip_prefix("--")
                .map(|rest| rest.split([' ', '=', ',']).next().unwrap_or("").to_owned())
        })
        .collect()
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn gossiperd_takes_exactly_the_options_of_gossiper_agent() {
    let daemon = stdout_of(Command::new(DAEMON).arg("--help"));
    let agent = stdout_of(Command::new(BIN).args(["agent", "--help"]));
    let (d, a) = (long_options(&daemon), long_options(&agent));
    assert!(a.len() > 20, "parsed the agent's options: {a:?}");
    assert_eq!(d, a, "gossiperd --help vs gossiper agent --help");
    let version = stdout_of(Command::new(DAEMON).arg("--version"));
    assert_eq!(
        version.trim(),
        format!("gossiperd {}", env!("CARGO_PKG_VERSION"))
    );
    // A bad flag is a usage error (exit 2, one line), as for `gossiper agent`.
    let out = Command::new(DAEMON)
        .arg("--fanout=lots")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--fanout"), "{err}");
}

#[test]
fn gossiperd_joins_gossiper_agents_and_leaves_on_sigterm() {
    let first = Agent::start("a0", None, &[]);
    let mut cmd = Command::new(DAEMON);
    cmd.args([
        "--name",
        "d1",
        "--bind",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
    ])
    .args(["--interval-ms", &INTERVAL_MS.to_string()])
    .args(["--join", &first.gossip.to_string()])
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    let mut daemon = Agent::spawn("d1", cmd);
    wait_for(
        "a0 and d1 list each other alive",
        Duration::from_secs(15),
        || all_alive(&[&first, &daemon], 2),
    );
    let (status, _) = daemon.call("PUT", "/v1/kv/colour", b"blue");
    assert_eq!(status, 200);
    wait_for("d1's write at a0", Duration::from_secs(10), || {
        first.call("GET", "/v1/kv/d1/colour?raw", b"").0 == 200
    });
    assert!(
        daemon.terminate().success(),
        "SIGTERM: a graceful leave, exit 0"
    );
    wait_for("a0 lists d1 as left", Duration::from_secs(10), || {
        first.status_of("d1").is_some_and(|(s, _)| s == "left")
    });
}

#[test]
fn the_api_gives_memory_back_after_its_connections_close() {
    let agent = Agent::start("t0", None, &[]);
    let before = agent.metric("gossiper_api_heap_trims_total");
    // 50 connections at once, each sending a request and closing.
    let streams: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(&agent.api).expect("connect");
            std::io::Write::write_all(
                &mut s,
                b"GET /v1/members HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .expect("send");
            s
        })
        .collect();
    drop(streams);
    // Quiet for a second: trimmed then.
    std::thread::sleep(Duration::from_millis(1_600));
    let quiet = agent.metric("gossiper_api_heap_trims_total");
    assert!(
        quiet > before,
        "no trim after a quiet second ({before} → {quiet})"
    );
    // A request every 200 ms is never quiet for a second, and is still trimmed within ten.
    let start = std::time::Instant::now();
    wait_for(
        "a heap trim under a steady stream of requests",
        Duration::from_secs(13),
        || agent.metric("gossiper_api_heap_trims_total") > quiet,
    );
    assert!(
        start.elapsed() > Duration::from_secs(5),
        "trimmed after {:?} although requests never stopped",
        start.elapsed()
    );
}
