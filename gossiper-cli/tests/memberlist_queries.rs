//! Serf queries and key rotation between real Serf agents (Debian's `serf` 0.9.4) and
//! `gossiper agent --protocol memberlist` on loopback: `serf query -node/-tag` answered by
//! gossiper only when it matches (Go's Unicode classes included), answers relayed both ways
//! (`-relay-factor`), `gossiper query` answered by Serf's handlers and printed as they arrive,
//! `serf keys -install/-use/-remove` rotating gossiper's keyring (and its `--keyring-file`) in
//! an encrypted cluster that stays joined, and `gossiper keys` rotating Serf's keyrings and
//! its own, with `serf keys -list` agreeing.
//!
//! Every wait is bounded; every child is killed when its guard drops.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

mod serf_support;
use serf_support::*;

/// `serf query` at `s` with `args`, its JSON output.
fn serf_query(s: &Serf, args: &[&str]) -> Value {
    let o = Command::new("serf")
        .args([
            "query",
            "-rpc-addr",
            &s.rpc,
            "-format",
            "json",
            "-timeout",
            "2s",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The sorted names in a JSON array.
/// Waits (10 s at most) until s1, s2 and g1 each list all three alive.
fn all_three_alive(s1: &Serf, s2: &Serf, g1: &Gossiper) {
    wait_until(
        Duration::from_secs(10),
        "all three list all three alive",
        || {
            ["s1", "s2", "g1"].iter().all(|n| {
                s1.status(n).as_deref() == Some("alive")
                    && s2.status(n).as_deref() == Some("alive")
                    && g1.status_of(n).as_deref() == Some("alive")
            })
        },
    );
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[test]
fn serf_queries_with_filters_and_relays_and_gossiper_queries_answered_by_serf() {
    let s1 = Serf::start("s1", None, &[]);
    let s2 = Serf::start(
        "s2",
        Some(&s1),
        &["-tag", "role=web", "-event-handler", "query:greet=echo hi"],
    );
    let g1 = Gossiper::start(
        "g1",
        &s1,
        &["--tag", "role=rust", "--query-response", "uptime=42 s"],
    );
    all_three_alive(&s1, &s2, &g1);

    // -node g1: only g1 acks and answers.
    let r = serf_query(&s1, &["-node", "g1", "uptime"]);
    assert_eq!(names(&r["Acks"]), ["g1"], "{r}");
    assert_eq!(r["Responses"]["g1"], "42 s", "{r}");
    // -node s2: g1 neither acks nor answers.
    let r = serf_query(&s1, &["-node", "s2", "uptime"]);
    assert_eq!(names(&r["Acks"]), ["s2"], "{r}");
    // -tag role=nomatch: nobody; -tag role=ru.t: g1 alone; -tag role=^web$: s2 alone.
    let r = serf_query(&s1, &["-tag", "role=nomatch", "uptime"]);
    assert!(
        names(&r["Acks"]).is_empty() && keys(&r["Responses"]).is_empty(),
        "{r}"
    );
    let r = serf_query(&s1, &["-tag", "role=ru.t", "uptime"]);
    assert_eq!(names(&r["Acks"]), ["g1"], "{r}");
    assert_eq!(keys(&r["Responses"]), ["g1"], "{r}");
    let r = serf_query(&s1, &["-tag", "role=^web$", "uptime"]);
    assert_eq!(names(&r["Acks"]), ["s2"], "{r}");
    // Go regexp Unicode classes: `\pL+` matches both "rust" and "web" (Serf's and ours agree),
    // `\p{Greek}` neither; `(?i)` folds case.
    let r = serf_query(&s1, &["-tag", r"role=^\pL+$", "uptime"]);
    assert_eq!(names(&r["Acks"]), ["g1", "s2"], "{r}");
    assert_eq!(r["Responses"]["g1"], "42 s", "{r}");
    let r = serf_query(&s1, &["-tag", r"role=^\p{Greek}+$", "uptime"]);
    assert!(names(&r["Acks"]).is_empty(), "{r}");
    let r = serf_query(&s1, &["-tag", r"role=(?i)^RU\pL\w$", "uptime"]);
    assert_eq!(names(&r["Acks"]), ["g1"], "{r}");

    // -relay-factor 2 with g1 alone answering: g1 relays its ack and answer through s1 and
    // s2, and s2 (which does not answer) passes them on to s1.
    let before = s2.log().matches("Relaying response").count();
    let r = serf_query(&s1, &["-node", "g1", "-relay-factor", "2", "uptime"]);
    assert_eq!(r["Responses"]["g1"], "42 s", "{r}");
    wait_until(Duration::from_secs(5), "s2 relays g1's answers", || {
        s2.log().matches("Relaying response").count() >= before + 2
    });
    assert!(g1.metric("gossiper_memberlist_relays_sent_total") >= Some(4.0));
    // ... and s2 alone answering relays through s1 and g1: g1 passes them on. Serf relays
    // only through members it holds alive at that moment, and a loaded machine can make it
    // suspect g1 for a while (a debug build answers probes slowly), so up to three queries.
    let forwarded = || {
        g1.metric("gossiper_memberlist_relays_forwarded_total")
            .unwrap_or(0.0)
    };
    let mut passed_on = false;
    for _ in 0..3 {
        let before = forwarded();
        let r = serf_query(&s1, &["-node", "s2", "-relay-factor", "2", "greet"]);
        assert_eq!(names(&r["Acks"]), ["s2"], "{r}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline && forwarded() < before + 2.0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        if forwarded() >= before + 2.0 {
            passed_on = true;
            break;
        }
    }
    assert!(passed_on, "g1 did not pass s2's relays on in three queries");

    // gossiper's own queries: answered by s2's handler, filtered by node and by tag.
    let ask = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_gossiper"))
            .args([
                "query",
                "--api",
                &g1.api,
                "--format",
                "json",
                "--timeout",
                "2s",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let r = ask(&["greet"]);
    assert_eq!(names(&r["acks"]), ["g1", "s1", "s2"], "{r}");
    assert_eq!(
        r["responses"]["s2"]["payload"].as_str().map(str::trim),
        Some("hi"),
        "{r}"
    );
    let r = ask(&["--node", "s2", "greet"]);
    assert_eq!(names(&r["acks"]), ["s2"], "{r}");
    let r = ask(&["--tag", "role=^(web|db)$", "greet"]);
    assert_eq!(names(&r["acks"]), ["s2"], "{r}");
    assert_eq!(keys(&r["responses"]), ["s2"], "{r}");
    let r = ask(&["--tag", r"role=^\pL+$", "greet"]);
    assert_eq!(names(&r["acks"]), ["g1", "s2"], "{r}");
    let r = ask(&["--tag", "role=nomatch", "uptime"]);
    assert!(names(&r["acks"]).is_empty(), "{r}");
    // A bad expression is refused before anything is sent.
    let o = Command::new(env!("CARGO_BIN_EXE_gossiper"))
        .args(["query", "--api", &g1.api, "--tag", "role=(", "greet"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("role=("));
    // The text output is `serf query`'s.
    let o = Command::new(env!("CARGO_BIN_EXE_gossiper"))
        .args([
            "query",
            "--api",
            &g1.api,
            "--timeout",
            "1s",
            "--node",
            "g1",
            "uptime",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Ack from 'g1'") && text.contains("Response from 'g1': 42 s"),
        "{text}"
    );
    // Streamed: s2's handler answer is printed as it arrives, then the totals.
    let o = Command::new(env!("CARGO_BIN_EXE_gossiper"))
        .args(["query", "--api", &g1.api, "--timeout", "2s", "greet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"Query 'greet' dispatched"), "{text}");
    assert!(
        lines.contains(&"Ack from 's2'") && lines.contains(&"Response from 's2': hi"),
        "{text}"
    );
    assert_eq!(
        lines[lines.len() - 2..],
        ["Total Acks: 3", "Total Responses: 1"],
        "{text}"
    );
}

/// `serf keys` at `s` with `args`: (success, stdout + stderr).
fn serf_keys(s: &Serf, args: &[&str]) -> (bool, String) {
    let o = Command::new("serf")
        .args(["keys", "-rpc-addr", &s.rpc])
        .args(args)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), out)
}

#[test]
fn serf_keys_rotate_gossipers_keyring_and_file_and_the_cluster_stays_joined() {
    let old = "RG4vQRk9Y/upOVhAXOPTDS4160CRN3vTBaB0JGtjSo8=";
    let new = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let s1 = Serf::start("s1", None, &["-encrypt", old]);
    let dir = TempDir::new("rotate");
    let file = dir.0.join("keyring.json");
    writeln!(std::fs::File::create(&file).unwrap(), "[\"{old}\"]").unwrap();
    let ring = || -> Vec<String> {
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
    };
    let g1 = Gossiper::start("g1", &s1, &["--keyring-file", file.to_str().unwrap()]);
    wait_until(Duration::from_secs(10), "serf lists g1 alive", || {
        s1.status("g1").as_deref() == Some("alive")
    });

    let (ok, out) = serf_keys(&s1, &["-install", new]);
    assert!(ok, "install: {out}");
    assert_eq!(ring(), [old, new], "installed, the primary unchanged");
    let (ok, out) = serf_keys(&s1, &["-use", new]);
    assert!(ok, "use: {out}");
    assert_eq!(ring(), [new, old], "the new key is the primary");
    // The primary cannot be removed: both nodes refuse, each saying why.
    let (ok, out) = serf_keys(&s1, &["-remove", new]);
    assert!(
        !ok && out.contains("g1") && out.contains("Removing the primary key is not allowed"),
        "{out}"
    );
    let (ok, out) = serf_keys(&s1, &["-remove", old]);
    assert!(ok, "remove: {out}");
    assert_eq!(ring(), [new]);
    let (ok, out) = serf_keys(&s1, &["-list"]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l.contains(new) && l.contains("[2/2]")),
        "{out}"
    );
    assert!(!out.contains(old), "{out}");
    assert!(g1.metric("gossiper_memberlist_key_changes_total") >= Some(3.0));

    // Still one cluster, now on the new key alone: probes keep both alive, events cross.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s1.status("g1").as_deref(), Some("alive"));
    assert_eq!(g1.status_of("s1").as_deref(), Some("alive"));
    let o = Command::new("serf")
        .args(["event", "-rpc-addr", &s1.rpc, "after-rotation", "x"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let events = g1.get("/v1/events?index=0&wait=10s").unwrap();
    assert!(
        events
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["name"] == "after-rotation")),
        "{events}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_gossiper"))
        .args(["event", "rotated", "y", "--api", &g1.api])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_until(
        Duration::from_secs(10),
        "serf receives gossiper's event",
        || s1.log().contains("Received event: user-event: rotated"),
    );
    assert_eq!(
        g1.metric("gossiper_memberlist_decrypt_failures_total"),
        Some(0.0)
    );
}

/// `gossiper keys` at `g` with `args`: (exit code, stdout, stderr).
fn gossiper_keys(g: &Gossiper, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_gossiper"))
        .args(["keys", "--api", &g.api, "--timeout", "5s"])
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn gossiper_keys_rotate_a_mixed_cluster_and_serf_keys_agrees() {
    let old = "RG4vQRk9Y/upOVhAXOPTDS4160CRN3vTBaB0JGtjSo8=";
    let new = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let s1 = Serf::start("s1", None, &["-encrypt", old]);
    let s2 = Serf::start("s2", Some(&s1), &["-encrypt", old]);
    let dir = TempDir::new("gkeys");
    let file = dir.0.join("keyring.json");
    writeln!(std::fs::File::create(&file).unwrap(), "[\"{old}\"]").unwrap();
    let ring = || -> Vec<String> {
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
    };
    let g1 = Gossiper::start("g1", &s1, &["--keyring-file", file.to_str().unwrap()]);
    all_three_alive(&s1, &s2, &g1);

    // Bad usage: exit 2, nothing sent.
    let (code, _, err) = gossiper_keys(&g1, &["--install", "AAAA"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("3 bytes"), "{err}");
    let (code, _, err) = gossiper_keys(&g1, &["--install", "not base64!"]);
    assert_eq!(code, 2, "{err}");

    let (code, out, err) = gossiper_keys(&g1, &["--install", new]);
    assert_eq!(code, 0, "install: {out}{err}");
    assert!(out.contains("Successfully installed key!"), "{out}");
    assert_eq!(ring(), [old, new], "g1 installed it too, and saved it");
    // A key nobody has cannot be made primary: every node fails, each named with its reason.
    let (code, out, err) = gossiper_keys(&g1, &["--use", "AAAAAAAAAAAAAAAAAAAAAA=="]);
    assert_eq!(code, 1, "{out}{err}");
    for n in ["s1", "s2", "g1"] {
        assert!(
            err.lines().any(|l| l.starts_with("failed:")
                && l.contains(n)
                && l.contains("not in the keyring")),
            "{n}: {err}"
        );
    }
    assert!(err.contains("3/3 nodes reported failure"), "{err}");
    let (code, out, err) = gossiper_keys(&g1, &["--use", new]);
    assert_eq!(code, 0, "use: {out}{err}");
    assert_eq!(ring(), [new, old]);
    // The primary cannot be removed: refused with a clear message, as Serf refuses it.
    let (code, out, err) = gossiper_keys(&g1, &["--remove", new]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Removing the primary key is not allowed"),
        "{err}"
    );
    let (code, out, err) = gossiper_keys(&g1, &["--remove", old]);
    assert_eq!(code, 0, "remove: {out}{err}");
    assert_eq!(ring(), [new]);

    // One key left, on all three, as gossiper and Serf both list it.
    let (code, out, err) = gossiper_keys(&g1, &["--list", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["keys"], serde_json::json!({ new: 3 }), "{v}");
    assert_eq!(v["primary_keys"], serde_json::json!({ new: 3 }), "{v}");
    assert_eq!(
        (v["num_nodes"].clone(), v["num_resp"].clone()),
        (3.into(), 3.into()),
        "{v}"
    );
    let (code, out, _) = gossiper_keys(&g1, &["--list"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with(new) && l.contains("[3/3]")),
        "{out}"
    );
    let (ok, out) = serf_keys(&s2, &["-list"]);
    assert!(ok, "{out}");
    assert!(
        out.lines().any(|l| l.contains(new) && l.contains("[3/3]")),
        "{out}"
    );
    assert!(!out.contains(old), "{out}");

    // Events still flow both ways on the new key alone.
    let o = Command::new("serf")
        .args([
            "event",
            "-rpc-addr",
            &s2.rpc,
            "after-gossiper-rotation",
            "x",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    wait_until(Duration::from_secs(10), "g1 receives s2's event", || {
        g1.get("/v1/events?index=0")
            .and_then(|e| e.as_array().cloned())
            .is_some_and(|a| a.iter().any(|e| e["name"] == "after-gossiper-rotation"))
    });
    let o = Command::new(env!("CARGO_BIN_EXE_gossiper"))
        .args(["event", "rotated-by-gossiper", "y", "--api", &g1.api])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_until(
        Duration::from_secs(10),
        "s2 receives gossiper's event",
        || {
            s2.log()
                .contains("Received event: user-event: rotated-by-gossiper")
        },
    );
    assert_eq!(s1.status("g1").as_deref(), Some("alive"));
    assert_eq!(
        g1.metric("gossiper_memberlist_decrypt_failures_total"),
        Some(0.0)
    );
}
