//! Process-level tests of `gossiper agent`: real processes on loopback, each bound to port 0
//! (so parallel tests never collide), every wait bounded, children killed on drop.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gossiper_agent::client::request;
use serde_json::Value;

mod agent_support;
use agent_support::{Agent, BIN, all_alive, cluster, wait_for};

#[test]
fn five_agents_converge_on_a_key_set_at_one() {
    let agents = cluster(5, &[]);
    let (status, v) = agents[2].call("PUT", "/v1/kv/colour", b"blue");
    assert_eq!(status, 200, "{v}");
    let version = v["version"].as_u64().expect("version");
    wait_for(
        "every agent to return the key",
        Duration::from_secs(5),
        || {
            agents.iter().all(|a| {
                let (s, v) = a.call("GET", "/v1/kv/n2/colour", b"");
                s == 200 && v["value"] == "blue" && v["version"] == version
            })
        },
    );
    let (_, state) = agents[4].call("GET", "/v1/state", b"");
    assert_eq!(state["n2"]["colour"]["value"], "blue");
    assert!(
        state["n2"].get("__name").is_none(),
        "reserved keys are hidden"
    );
    // A blocking query answers as soon as the version passes the index.
    let waiter = {
        let api = agents[0].api.clone();
        std::thread::spawn(move || {
            let path = format!("/v1/kv/n2/colour?index={version}&wait=10s");
            let start = Instant::now();
            let r = request(&api, "GET", &path, b"", Duration::from_secs(20)).expect("get");
            (r, start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    agents[2].call("PUT", "/v1/kv/colour", b"green");
    let ((status, body), took) = waiter.join().expect("waiter");
    assert_eq!(status, 200);
    assert!(body.contains("green"), "{body}");
    assert!(
        took < Duration::from_secs(5),
        "answered on change, not at the deadline"
    );
    // And times out with the current value when nothing changes.
    let start = Instant::now();
    let (s, v) = agents[0].call("GET", "/v1/kv/n2/colour?index=99&wait=300ms", b"");
    assert_eq!((s, v["value"].as_str()), (200, Some("green")));
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn kill_9_is_detected_and_a_restart_rejoins_with_its_new_state() {
    let mut agents = cluster(4, &[]);
    agents[3].call("PUT", "/v1/kv/k", b"old");
    agents[3].call("PUT", "/v1/kv/only-old", b"x");
    wait_for("the keys to spread", Duration::from_secs(5), || {
        agents[..3]
            .iter()
            .all(|a| a.call("GET", "/v1/kv/n3/only-old", b"").0 == 200)
    });
    let (_, old_generation) = agents[0].status_of("n3").expect("n3 known");
    agents[3].kill9();
    let took = wait_for("n3 to be declared dead", Duration::from_secs(10), || {
        agents[..3]
            .iter()
            .all(|a| a.status_of("n3").is_some_and(|(s, _)| s == "dead"))
    });
    // Configured detection: φ ≥ 8 with a 100 ms interval is about 1.5 s after the last beat.
    assert!(took < Duration::from_secs(5), "detected in {took:?}");
    let seed = agents[0].gossip;
    let restarted = Agent::start("n3", Some(seed), &[]);
    restarted.call("PUT", "/v1/kv/k", b"new");
    wait_for(
        "n3 to rejoin with its new state",
        Duration::from_secs(10),
        || {
            agents[..3].iter().all(|a| {
                let alive = a
                    .status_of("n3")
                    .is_some_and(|(s, g)| s == "alive" && g > old_generation);
                let (s, v) = a.call("GET", "/v1/kv/n3/k", b"");
                alive && s == 200 && v["value"] == "new"
            })
        },
    );
    for a in &agents[..3] {
        assert_eq!(
            a.call("GET", "/v1/kv/n3/only-old", b"").0,
            404,
            "no zombie key"
        );
        assert_eq!(a.members().len(), 4, "one entry per name");
    }
}

#[test]
fn a_graceful_stop_is_recorded_as_left() {
    let mut agents = cluster(3, &[]);
    let status = agents[1].terminate();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    wait_for("n1 to be seen as left", Duration::from_secs(5), || {
        [&agents[0], &agents[2]]
            .iter()
            .all(|a| a.status_of("n1").is_some_and(|(s, _)| s == "left"))
    });
    // Left stays left: it is never mistaken for a failure.
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(
        agents[0].status_of("n1").map(|(s, _)| s).as_deref(),
        Some("left")
    );
}

#[test]
fn other_clusters_and_wrong_keys_are_never_admitted() {
    let dir = std::env::temp_dir().join(format!("gossiper-agent-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.key");
    let bad = dir.join("bad.key");
    std::fs::write(&good, format!("# test key\n{}\n", "ab".repeat(32))).expect("write key");
    std::fs::write(&bad, format!("{}\n", "cd".repeat(32))).expect("write key");
    let good_s = good.to_string_lossy().into_owned();
    let bad_s = bad.to_string_lossy().into_owned();
    let members = cluster(2, &["--cluster", "blue", "--key-file", &good_s]);
    let seed = members[0].gossip;
    let foreign = Agent::start(
        "stranger",
        Some(seed),
        &["--cluster", "green", "--key-file", &good_s],
    );
    let wrong_key = Agent::start(
        "thief",
        Some(seed),
        &["--cluster", "blue", "--key-file", &bad_s],
    );
    let plain = Agent::start("plain", Some(seed), &["--cluster", "blue"]);
    wait_for("rejections to be counted", Duration::from_secs(10), || {
        let m = &members[0];
        m.metric("gossiper_dropped_packets_total{reason=\"foreign_cluster\"}") > 0
            && m.metric("gossiper_dropped_packets_total{reason=\"auth_failure\"}") >= 2
    });
    std::thread::sleep(Duration::from_secs(1));
    for m in &members {
        let mut names: Vec<String> = m
            .members()
            .iter()
            .map(|m| m["name"].as_str().unwrap_or("").to_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["n0", "n1"].map(|s| s.to_owned()).to_vec(),
            "on {}",
            m.name
        );
    }
    for outsider in [&foreign, &wrong_key, &plain] {
        assert_eq!(
            outsider.members().len(),
            1,
            "{} learned nothing",
            outsider.name
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn junk_truncated_and_oversized_datagrams_are_dropped_and_counted() {
    let agents = cluster(2, &["--mtu", "1400"]);
    let target = agents[0].gossip;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut lcg: u64 = 0x1234_5678;
    for i in 0..200 {
        let len = (i * 37) % 300;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                lcg = lcg.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (lcg >> 56) as u8
            })
            .collect();
        socket.send_to(&junk, target).expect("send junk");
    }
    socket.send_to(b"GS", target).expect("truncated");
    socket.send_to(b"GS\x01\x00abc", target).expect("truncated");
    socket
        .send_to(b"GS\x63\x00", target)
        .expect("unknown version");
    let mut big = b"GS\x01\x00".to_vec();
    big.resize(4_000, 7);
    socket.send_to(&big, target).expect("oversized");
    let mut foreign = b"GS\x01\x00".to_vec();
    foreign.extend_from_slice(&[9; 20]);
    socket.send_to(&foreign, target).expect("foreign");
    let a = &agents[0];
    wait_for("drop counters to rise", Duration::from_secs(5), || {
        a.metric("gossiper_dropped_packets_total{reason=\"garbage\"}") > 100
            && a.metric("gossiper_dropped_packets_total{reason=\"truncated\"}") >= 2
            && a.metric("gossiper_dropped_packets_total{reason=\"unknown_version\"}") >= 1
            && a.metric("gossiper_dropped_packets_total{reason=\"oversized\"}") >= 1
            && a.metric("gossiper_dropped_packets_total{reason=\"foreign_cluster\"}") >= 1
    });
    // Still serving, still gossiping.
    agents[0].call("PUT", "/v1/kv/after", b"junk");
    wait_for("gossip after junk", Duration::from_secs(5), || {
        agents[1].call("GET", "/v1/kv/n0/after", b"").0 == 200
    });
    assert_eq!(agents[0].members().len(), 2);
}

#[test]
fn agents_gossip_and_serve_over_ipv6_loopback() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine: nothing to test");
        return;
    }
    let a = Agent::start_on("[::1]:0", "v6a", None, &[]);
    let b = Agent::start_on("[::1]:0", "v6b", Some(a.gossip), &[]);
    assert!(a.gossip.is_ipv6(), "{}", a.gossip);
    wait_for("the two to meet over ::1", Duration::from_secs(10), || {
        all_alive(&[&a, &b], 2)
    });
    assert_eq!(b.call("PUT", "/v1/kv/k", b"v6").0, 200);
    wait_for("the key to reach a", Duration::from_secs(5), || {
        a.call("GET", "/v1/kv/v6b/k", b"").0 == 200
    });
}

#[test]
fn bad_requests_get_4xx_with_a_json_error() {
    let agents = cluster(1, &[]);
    let a = &agents[0];
    for (method, path, body, want) in [
        ("PUT", "/v1/kv/__name", &b"x"[..], 400),
        ("PUT", "/v1/kv/k?ttl=soon", b"x", 400),
        ("GET", "/v1/kv/n0/missing", b"", 404),
        ("GET", "/v1/kv/n0/k?index=x", b"", 400),
        ("GET", "/v1/kv/n0/k?index=1&wait=forever", b"", 400),
        ("DELETE", "/v1/kv/missing", b"", 404),
        ("POST", "/v1/members", b"", 405),
        ("GET", "/v2/nothing", b"", 404),
        ("GET", "/v1/kv/n0/%zz", b"", 400),
    ] {
        let (status, v) = a.call(method, path, body);
        assert_eq!(status, want, "{method} {path}: {v}");
        assert!(v["error"].is_string(), "{method} {path}: {v}");
    }
    let huge = vec![b'x'; 5_000];
    assert_eq!(a.call("PUT", "/v1/kv/big", &huge).0, 413);
    assert_eq!(a.call("PUT", "/v1/kv/k?ttl=1s", b"v").0, 200);
    wait_for("the ttl to expire", Duration::from_secs(5), || {
        a.call("GET", "/v1/kv/n0/k", b"").0 == 404
    });
    assert_eq!(a.members().len(), 1, "still serving");
}

#[test]
fn client_commands_talk_to_the_api() {
    let agents = cluster(2, &[]);
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .args(["--api", &agents[0].api])
            .output()
            .expect("run client");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["set", "colour", "blue"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("colour = blue"), "{out}");
    let (code, out, _) = run(&["get", "n0", "colour"]);
    assert_eq!((code, out.trim()), (Some(0), "blue"));
    let (code, out, _) = run(&["get", "n0", "colour", "--format", "json"]);
    assert_eq!(code, Some(0));
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["value"], "blue");
    let (code, out, _) = run(&["members"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("n0") && out.contains("n1") && out.contains("alive"),
        "{out}"
    );
    let (code, out, _) = run(&["members", "--format", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .expect("json")
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let (code, _, _) = run(&["delete", "colour"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = run(&["get", "n0", "colour"]);
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    assert!(err.contains("no key"), "{err}");
    let out = Command::new(BIN)
        .args(["members", "--api", "127.0.0.1:1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "unreachable API fails");
}

/// `count` consecutive free ports (TCP and UDP) on loopback, starting at a port derived from the
/// process id so parallel test binaries start apart.
fn free_port_run(count: u16) -> u16 {
    // Calls in this process (tests run in parallel) start apart too: a run found free is not
    // bound until its agents start.
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut base = 20_000 + (std::process::id() % 2_000) as u16 * 10 + (call % 20) * 1_000;
    'search: for _ in 0..500 {
        base = if base > 60_000 {
            20_000
        } else {
            base + count + 7
        };
        for p in base..base + count {
            if std::net::TcpListener::bind(("127.0.0.1", p)).is_err()
                || UdpSocket::bind(("127.0.0.1", p)).is_err()
            {
                continue 'search;
            }
        }
        return base;
    }
    panic!("no run of {count} free ports");
}

#[test]
fn cluster_command_starts_n_agents_and_stops_them_cleanly() {
    let gossip = free_port_run(3);
    let api = free_port_run(3);
    let mut child = Command::new(BIN)
        .args(["cluster", "--nodes", "3", "--interval-ms", "100"])
        .args(["--base-port", &gossip.to_string()])
        .args(["--api-base-port", &api.to_string()])
        .env("RUST_LOG", "warn")
        // Meant for a real agent: the local cluster's agents must not take them (an MTU of
        // 300 would stop them at start, a join would reach out of the cluster).
        .env("GOSSIPER_MTU", "300")
        .env("GOSSIPER_JOIN", "127.0.0.1:9")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn cluster");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut guard = Agent {
        name: "cluster".into(),
        child,
        gossip: SocketAddr::from(([127, 0, 0, 1], gossip)),
        api: format!("127.0.0.1:{api}"),
        log: None,
    };
    wait_for("three alive members", Duration::from_secs(15), || {
        request(
            &guard.api,
            "GET",
            "/v1/members",
            b"",
            Duration::from_secs(2),
        )
        .ok()
        .and_then(|(_, t)| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter(|m| m["status"] == "alive").count())
        }) == Some(3)
    });
    let status = guard.terminate();
    assert!(
        status.success(),
        "cluster exits 0 after stopping its agents: {status:?}"
    );
    let printed: Vec<String> = rx.try_iter().collect();
    assert!(
        printed.iter().any(|l| l.contains("gossiper members --api")),
        "{printed:?}"
    );
    assert!(
        printed.iter().any(|l| l.contains("all agents stopped")),
        "{printed:?}"
    );
    for i in 0..3 {
        let addr = format!("127.0.0.1:{}", api + i);
        assert!(
            request(&addr, "GET", "/v1/members", b"", Duration::from_millis(500)).is_err(),
            "agent {i} stopped"
        );
    }
}

#[test]
fn cluster_command_survives_a_dead_agent_restarts_it_and_takes_its_agents_along_when_killed() {
    let gossip = free_port_run(3);
    let api = free_port_run(3);
    let mut child = Command::new(BIN)
        .args(["cluster", "--nodes", "3", "--interval-ms", "100"])
        .args(["--base-port", &gossip.to_string()])
        .args(["--api-base-port", &api.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn cluster");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut guard = Agent {
        name: "cluster".into(),
        child,
        gossip: SocketAddr::from(([127, 0, 0, 1], gossip)),
        api: format!("127.0.0.1:{api}"),
        log: None,
    };
    let status_of_node_2 = |guard: &Agent| guard.status_of("node-2");
    wait_for("three alive members", Duration::from_secs(15), || {
        request(
            &guard.api,
            "GET",
            "/v1/members",
            b"",
            Duration::from_secs(2),
        )
        .ok()
        .and_then(|(_, t)| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter(|m| m["status"] == "alive").count())
        }) == Some(3)
    });
    let (_, first_generation) = status_of_node_2(&guard).expect("node-2 known");
    use std::io::Write;
    writeln!(stdin, "kill node-2").expect("command");
    wait_for(
        "node-2 to be declared dead",
        Duration::from_secs(10),
        || status_of_node_2(&guard).is_some_and(|(s, _)| s == "dead"),
    );
    assert!(
        guard.child.try_wait().expect("try_wait").is_none(),
        "the cluster keeps running"
    );
    writeln!(stdin, "restart node-2").expect("command");
    wait_for("node-2 to come back", Duration::from_secs(10), || {
        status_of_node_2(&guard).is_some_and(|(s, g)| s == "alive" && g > first_generation)
    });
    let printed: Vec<String> = rx.try_iter().collect();
    assert!(
        printed.iter().any(|l| l.contains("node-2 exited")),
        "{printed:?}"
    );
    assert!(
        printed.iter().any(|l| l.contains("node-2 restarted")),
        "{printed:?}"
    );
    // Killed outright, the cluster cannot stop its agents; they see their stdin close and go.
    guard.kill9();
    for i in 0..3 {
        let addr = format!("127.0.0.1:{}", api + i);
        wait_for("an orphaned agent to exit", Duration::from_secs(5), || {
            request(&addr, "GET", "/v1/health", b"", Duration::from_millis(300)).is_err()
        });
    }
}

#[test]
fn membership_changes_are_logged_by_default_and_as_json_on_request() {
    let seed = Agent::start("seed", None, &[]);
    let mut child = Command::new(BIN)
        .args([
            "agent",
            "--name",
            "logger",
            "--bind",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ])
        .args(["--interval-ms", "100", "--log-format", "json"])
        .args(["--join", &seed.gossip.to_string()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines
        .iter()
        .any(|l: &String| l.contains("member seed is alive"))
    {
        assert!(Instant::now() < deadline, "no join logged: {lines:?}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            v["level"].is_string() && v["msg"].is_string() && v["ts"].is_string(),
            "{v}"
        );
    }
}

#[test]
fn a_seed_named_localhost_is_tried_on_every_address_and_joined_when_it_comes_up_late() {
    use std::net::ToSocketAddrs;
    // Where localhost has both 127.0.0.1 and ::1, the seed takes the address tried last, so
    // the joiner reaches it only by trying every address.
    let resolved: Vec<SocketAddr> = ("localhost", 1)
        .to_socket_addrs()
        .expect("localhost resolves")
        .filter(|a| UdpSocket::bind(SocketAddr::new(a.ip(), 0)).is_ok())
        .collect();
    let ip = resolved.last().expect("a usable localhost address").ip();
    eprintln!("localhost is {resolved:?}: the seed binds {ip}");
    let port = UdpSocket::bind(SocketAddr::new(ip, 0))
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let host = SocketAddr::new(ip, 0).to_string();
    let joiner = Agent::start_on(
        &host,
        "joiner",
        None,
        &["--join", &format!("localhost:{port}")],
    );
    // Nobody there yet: the name is looked up again at every attempt, and the seed found.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(joiner.members().len(), 1);
    let seed_addr = SocketAddr::new(ip, port).to_string();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "agent", "--name", "seed", "--bind", &seed_addr, "--api", &host,
    ])
    .args(["--interval-ms", "100"])
    .env("RUST_LOG", "warn")
    .stdout(Stdio::piped());
    let seed = Agent::spawn("seed", cmd);
    assert_eq!(seed.gossip, SocketAddr::new(ip, port));
    wait_for(
        "the joiner to find the late seed",
        Duration::from_secs(10),
        || all_alive(&[&joiner, &seed], 2),
    );
}

#[test]
fn a_join_address_without_a_port_is_a_usage_error() {
    let out = Command::new(BIN)
        .args([
            "agent",
            "--name",
            "j",
            "--bind",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ])
        .args(["--join", "localhost"])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("\"localhost\" is not HOST:PORT"), "{err}");
}

#[test]
fn refused_peers_are_logged_at_warn_and_a_flood_of_them_is_rate_limited() {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "agent",
        "--name",
        "w",
        "--bind",
        "127.0.0.1:0",
        "--api",
        "127.0.0.1:0",
    ])
    .env_remove("RUST_LOG")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let a = Agent::spawn("w", cmd);
    // 500 datagrams of another cluster (magic, version, flags, then a foreign cluster hash).
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut foreign = b"GS\x01\x00".to_vec();
    foreign.extend_from_slice(&[9; 20]);
    for i in 0..500 {
        socket.send_to(&foreign, a.gossip).expect("send");
        if i % 5 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // the receive buffer keeps up
        }
    }
    wait_for("the drops to be counted", Duration::from_secs(10), || {
        a.metric("gossiper_dropped_packets_total{reason=\"foreign_cluster\"}") >= 150
    });
    let first = a.wait_log("is of another cluster", Duration::from_secs(10));
    assert!(
        first.contains("WARN") && first.contains(&socket.local_addr().unwrap().to_string()),
        "{first}"
    );
    // The summary comes once the bucket has room again; few lines came before it.
    let log = a.log.as_ref().expect("piped");
    let mut lines = vec![first];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines.last().is_some_and(|l| l.contains("suppressed")) {
        let left = deadline.saturating_duration_since(Instant::now());
        lines.push(
            log.recv_timeout(left)
                .unwrap_or_else(|_| panic!("no summary: {lines:#?}")),
        );
    }
    let refusals = lines
        .iter()
        .filter(|l| l.contains("another cluster"))
        .count();
    assert!(
        refusals <= 6,
        "{refusals} lines for 500 datagrams: {lines:#?}"
    );
    let summary = lines.last().expect("a line");
    let n: u64 = summary
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a count in {summary}"));
    assert!(n >= 100, "the summary counts the rest: {summary}");
}
