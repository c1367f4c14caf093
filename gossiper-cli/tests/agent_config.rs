//! Process tests of how `gossiper agent` is configured and reconfigured: the `--config` file
//! under `GOSSIPER_*` variables under flags, bad files and variables refused with exit 2,
//! and SIGHUP reloading the key file and the log level.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

mod agent_support;
mod common;
use agent_support::{Agent, BIN, wait_for};

/// A fresh folder for one test's files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gossiper-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&path, private).expect("chmod");
        }
        path.to_str().expect("utf-8").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `gossiper agent ARGS` with no `GOSSIPER_*` or `RUST_LOG` from the test's environment.
fn agent_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("agent").args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GOSSIPER_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs a command that must fail at once with a usage error; returns its one stderr line.
fn usage_error(mut cmd: Command) -> String {
    let out = cmd.output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn an_agent_runs_from_its_config_file_under_variables_and_flags() {
    let dir = TempDir::new("config-layers");
    let config = dir.write(
        "gossiper.toml",
        "name = \"from-file\"\nbind = \"127.0.0.1:0\"\napi = \"127.0.0.1:0\"\n\
         cluster = \"filed\"\ninterval-ms = \"150ms\"\nfanout = 2\nmtu = 1300\n",
    );
    // The file alone.
    let a = Agent::spawn("from-file", agent_command(&["--config", &config]));
    let (status, info) = a.call("GET", "/v1/info", b"");
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["name"], "from-file");
    assert_eq!(info["cluster"], "filed");
    assert_eq!(info["interval_ms"], 150);
    assert_eq!(
        (info["fanout"].as_u64(), info["mtu"].as_u64()),
        (Some(2), Some(1300))
    );
    drop(a);
    // Variables over the file, flags over the variables; GOSSIPER_CONFIG names the file.
    let mut cmd = agent_command(&["--fanout", "4"]);
    cmd.env("GOSSIPER_CONFIG", &config)
        .env("GOSSIPER_NAME", "from-env")
        .env("GOSSIPER_FANOUT", "3")
        .env("GOSSIPER_MTU", "1200");
    let b = Agent::spawn("from-env", cmd);
    let (_, info) = b.call("GET", "/v1/info", b"");
    assert_eq!(info["name"], "from-env");
    assert_eq!(info["fanout"], 4, "the flag wins");
    assert_eq!(info["mtu"], 1200, "the variable wins over the file");
    assert_eq!(info["cluster"], "filed", "the file fills the rest");
}

#[test]
fn bad_config_files_and_variables_are_usage_errors_naming_what_is_wrong() {
    let dir = TempDir::new("config-bad");
    let cases = [
        ("name = \"x\"\nfanot = 3\n", "unknown key `fanot`"),
        (
            "name = \"x\"\nfanout = \"three\"\n",
            "bad value for `fanout`",
        ),
        (
            "name = \"x\"\ndetector = \"gut\"\n",
            "bad value for `detector`",
        ),
        (
            "name = \"x\"\ninterval-ms = \"200\"\n",
            "bad value for `interval-ms`",
        ),
        (
            "name = \"x\"\nlog-level = \"info,a=loud\"\n",
            "bad log level",
        ),
        ("name = [\n", "bad config file"),
        ("bind = \"127.0.0.1:0\"\n", "no node name"),
        ("name = \"x\"\nbind = \"nowhere\"\n", "--bind"),
    ];
    for (i, (text, needle)) in cases.into_iter().enumerate() {
        let path = dir.write(&format!("bad-{i}.toml"), text);
        let err = usage_error(agent_command(&["--config", &path]));
        assert!(err.contains(needle), "{text:?}: {err}");
        if !needle.starts_with("no node")
            && !needle.starts_with("--")
            && !needle.starts_with("bad log")
        {
            assert!(err.contains(&path), "names the file: {err}");
        }
    }
    let err = usage_error(agent_command(&["--config", "/nonexistent/g.toml"]));
    assert!(
        err.contains("cannot read config file /nonexistent/g.toml"),
        "{err}"
    );
    // A bad variable is clap's usage error, naming the flag it stands for.
    let mut cmd = agent_command(&["--name", "x"]);
    cmd.env("GOSSIPER_FANOUT", "lots");
    let err = usage_error(cmd);
    assert!(err.contains("--fanout"), "{err}");
}

#[test]
fn the_example_config_is_accepted_by_the_agent() {
    // Everything in it but the addresses and the key file is used as written.
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/gossiper.example.toml"),
    )
    .expect("docs/gossiper.example.toml");
    let dir = TempDir::new("config-example");
    let keys = common::gossiper("keygen", &[&dir.0.join("gossiper.keys").to_string_lossy()]);
    assert!(keys.status.success(), "{}", common::stderr(&keys));
    let config = dir.write("gossiper.toml", &example);
    let a = Agent::spawn(
        "web-1",
        agent_command(&[
            "--config",
            &config,
            "--bind",
            "127.0.0.1:0",
            "--advertise",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ]),
    );
    let (_, info) = a.call("GET", "/v1/info", b"");
    assert_eq!(info["name"], "web-1");
    assert_eq!(info["cluster"], "prod");
    assert_eq!(
        info["encrypted"], true,
        "the key file is found beside the config"
    );
    wait_for("the agent to answer", Duration::from_secs(10), || {
        a.call("GET", "/v1/health", b"").0 == 200
    });
}

/// `kill -HUP` the agent.
fn hangup(agent: &Agent) {
    let status = Command::new("kill")
        .args(["-HUP", &agent.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn sees_alive(agent: &Agent, name: &str) -> bool {
    agent.status_of(name).is_some_and(|(s, _)| s == "alive")
}

const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[test]
fn sighup_reloads_the_key_file_and_the_log_level_and_keeps_the_old_keyring_on_a_bad_file() {
    let dir = TempDir::new("sighup");
    let keys = dir.write("x.keys", &format!("{KEY_A}\n"));
    let config = |level: &str| {
        format!(
            "name = \"x\"\nbind = \"127.0.0.1:0\"\napi = \"127.0.0.1:0\"\ninterval-ms = 100\n\
             key-file = \"x.keys\"\nlog-level = \"{level}\"\n"
        )
    };
    let path = dir.write("x.toml", &config("warn,gossiper_cli::agent=info"));
    let x = Agent::spawn("x", agent_command(&["--config", &path]));
    // y holds another key and joins x: x drops everything y sends.
    let y_keys = dir.write("y.keys", &format!("{KEY_B}\n"));
    let y = Agent::start("y", Some(x.gossip), &["--key-file", &y_keys]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !sees_alive(&x, "y") && !sees_alive(&y, "x"),
        "different keys never talk"
    );

    // The log level: the drops of y's datagrams are logged at debug once it is raised.
    dir.write(
        "x.toml",
        &config("warn,gossiper_cli::agent=info,gossiper_cluster=debug"),
    );
    hangup(&x);
    let line = x.wait_log("SIGHUP: reloaded", Duration::from_secs(10));
    assert!(line.contains("the keyring (1 keys from"), "{line}");
    assert!(
        line.contains("the log level (warn,gossiper_cli::agent=info,gossiper_cluster=debug)"),
        "{line}"
    );
    x.wait_log("auth_failure", Duration::from_secs(10));

    // The keyring: with y's key first, x now talks with y.
    dir.write("x.keys", &format!("{KEY_B}\n{KEY_A}\n"));
    dir.write("x.toml", &config("warn,gossiper_cli::agent=info"));
    hangup(&x);
    let line = x.wait_log("SIGHUP: reloaded", Duration::from_secs(10));
    assert!(
        line.contains("the keyring (2 keys from") && line.contains(&keys),
        "{line}"
    );
    wait_for("x and y to see each other", Duration::from_secs(10), || {
        sees_alive(&x, "y") && sees_alive(&y, "x")
    });

    // A bad key file: the old keyring stays, and says so; x and y still gossip.
    dir.write("x.keys", "not a key\n");
    hangup(&x);
    let line = x.wait_log("the old keyring stays", Duration::from_secs(10));
    assert!(line.contains("WARN") && line.contains("x.keys"), "{line}");
    let (status, v) = x.call("PUT", "/v1/kv/after-bad-reload", b"1");
    assert_eq!(status, 200, "{v}");
    wait_for("y to get x's key", Duration::from_secs(10), || {
        y.call("GET", "/v1/kv/x/after-bad-reload", b"").0 == 200
    });

    // A setting that needs a restart: said at warn, the running value stays.
    dir.write("x.keys", &format!("{KEY_B}\n{KEY_A}\n"));
    dir.write(
        "x.toml",
        &(config("warn,gossiper_cli::agent=info") + "fanout = 5\n"),
    );
    hangup(&x);
    let line = x.wait_log("apply at the next start", Duration::from_secs(10));
    assert!(line.contains("WARN"), "{line}");
    assert_eq!(x.call("GET", "/v1/info", b"").1["fanout"], 3);

    // A config file that no longer parses: nothing changes, and that is said.
    dir.write("x.toml", "name = \"x\"\nfanot = 1\n");
    hangup(&x);
    let line = x.wait_log("nothing reloaded", Duration::from_secs(10));
    assert!(line.contains("unknown key `fanot`"), "{line}");
    assert!(sees_alive(&x, "y"));
}

#[test]
fn a_burst_of_sighups_leaves_the_agent_serving_and_sigterm_still_stops_it() {
    let mut a = Agent::spawn(
        "hup",
        agent_command(&[
            "--name",
            "hup",
            "--bind",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ]),
    );
    for _ in 0..20 {
        hangup(&a);
    }
    a.wait_log("SIGHUP: nothing to reload", Duration::from_secs(10));
    assert_eq!(a.call("GET", "/v1/health", b"").0, 200);
    let status = a.terminate();
    assert_eq!(status.code(), Some(0), "leaves gracefully after the burst");
}
