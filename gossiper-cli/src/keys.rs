//! `gossiper keys --list | --install KEY | --use KEY | --remove KEY`: the cluster's keyring
//! through a `--protocol memberlist` agent (its `/v1/keys` routes), as `serf keys` handles it:
//! every member (the agent too, which saves its `--keyring-file`) is asked, and the command
//! says which failed and why.
//!
//! Exit codes: 0 every member answered with success; 1 some member failed or did not answer
//! (each named, with its reason), or the agent refused (removing its primary key) or could
//! not be reached; 2 bad usage (a key that is not base64 or not 16, 24 or 32 bytes).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args};
use serde_json::Value;

use crate::CliError;
use crate::client::Format;

/// Options of `gossiper keys`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("action").required(true).args(["list", "install", "use_key", "remove"])))]
pub struct KeysArgs {
    /// List every member's keys, with how many members hold each (`serf keys -list`).
    #[arg(long)]
    pub list: bool,
    /// Install KEY (base64, 16, 24 or 32 bytes, as `serf keygen` writes) on every member,
    /// beside the keys they have (`serf keys -install`).
    #[arg(long, value_name = "KEY")]
    pub install: Option<String>,
    /// Make KEY, installed everywhere first, every member's primary key: the one messages are
    /// sealed with (`serf keys -use`).
    #[arg(long = "use", value_name = "KEY")]
    pub use_key: Option<String>,
    /// Remove KEY from every member (`serf keys -remove`); the primary key cannot be removed:
    /// `--use` another first.
    #[arg(long, value_name = "KEY")]
    pub remove: Option<String>,
    /// Relay each answer through this many other members too (`serf keys` has no flag; its
    /// RPC has the option).
    #[arg(long, default_value_t = 0)]
    pub relay_factor: u8,
    /// How long to wait for the members' answers (e.g. 5s); Serf's default for the cluster's
    /// size if not given. The command returns as soon as every member has answered.
    #[arg(long, value_name = "DURATION", value_parser = crate::sim_flags::parse_duration)]
    pub timeout: Option<Duration>,
    /// `text` (like `serf keys`) or `json` (the API's reply).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The memberlist agent's API address.
    #[arg(long, default_value = "127.0.0.1:8946")]
    pub api: String,
    /// File holding the agent's API token, sent as `Authorization: Bearer TOKEN`;
    /// `GOSSIPER_API_TOKEN` is read when this is not given.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// What `gossiper keys` asks, with Serf's words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Action {
    /// The route under `/v1/keys`.
    route: &'static str,
    /// The key, base64 (checked), for a change.
    key: Option<String>,
    /// What is printed first.
    start: &'static str,
    /// What is printed on success.
    success: &'static str,
    /// How a failure starts.
    failure: &'static str,
}

impl Action {
    fn of(args: &KeysArgs) -> Result<Action, CliError> {
        let change = |route, key: &str, start, success, failure| {
            gossiper_memberlist::key_query::decode_key(key)
                .map_err(|e| CliError::usage(format!("bad --{route} key: {e}")))?;
            Ok(Action {
                route,
                key: Some(key.trim().to_owned()),
                start,
                success,
                failure,
            })
        };
        match (&args.install, &args.use_key, &args.remove) {
            (Some(k), None, None) if !args.list => change(
                "install",
                k,
                "Installing key on all members...",
                "Successfully installed key!",
                "Error installing key",
            ),
            (None, Some(k), None) if !args.list => change(
                "use",
                k,
                "Changing primary key on all members...",
                "Successfully changed primary key!",
                "Error changing primary key",
            ),
            (None, None, Some(k)) if !args.list => change(
                "remove",
                k,
                "Removing key on all members...",
                "Successfully removed key!",
                "Error removing key",
            ),
            (None, None, None) if args.list => Ok(Action {
                route: "",
                key: None,
                start: "Asking all members for installed keys...",
                success: "Keys gathered, listing cluster keys...",
                failure: "Failed to gather member keys",
            }),
            _ => Err(CliError::usage(
                "only one of --list, --install, --use or --remove",
            )),
        }
    }

    /// The request path.
    fn path(&self, args: &KeysArgs) -> String {
        let mut p = "/v1/keys".to_owned();
        if !self.route.is_empty() {
            p.push('/');
            p.push_str(self.route);
        }
        let mut q = Vec::new();
        if args.relay_factor > 0 {
            q.push(format!("relay-factor={}", args.relay_factor));
        }
        if let Some(t) = args.timeout {
            q.push(format!("timeout={}ms", t.as_millis()));
        }
        if !q.is_empty() {
            p.push('?');
            p.push_str(&q.join("&"));
        }
        p
    }
}

/// `gossiper keys`.
pub fn run(args: &KeysArgs) -> Result<(), CliError> {
    let action = Action::of(args)?;
    let auth = crate::client::auth_header(args.token_file.as_deref())?;
    let headers = crate::client::with_auth(&auth);
    let text = args.format == Format::Text;
    let mut out = std::io::stdout();
    let print = |out: &mut std::io::Stdout, line: &str| {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| CliError::from_output(&e))
    };
    if text {
        print(&mut out, &format!("==> {}", action.start))?;
    }
    // Serf's default wait is 3.2 s below 9 members and grows with log10 of the size.
    let wait = args.timeout.unwrap_or(Duration::from_secs(60)) + Duration::from_secs(10);
    let (method, body) = match &action.key {
        Some(k) => ("POST", k.as_bytes()),
        None => ("GET", &b""[..]),
    };
    let reply =
        gossiper_agent::client::send(&args.api, method, &action.path(args), &headers, body, wait)
            .map_err(|e| CliError::failure(e.to_string()))?;
    let v: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    if reply.status >= 400 {
        let why = v["error"].as_str().unwrap_or("request failed");
        let hint = if why.contains("primary key") {
            " (gossiper keys --use OTHER_KEY)"
        } else {
            ""
        };
        return Err(CliError::failure(format!(
            "{}: {why}{hint} (HTTP {})",
            action.failure, reply.status
        )));
    }
    let ok = v["ok"].as_bool().unwrap_or(false);
    let summary = || {
        let why = v["error"]
            .as_str()
            .unwrap_or("the agent's reply says nothing");
        CliError::failure(format!("{}: {why}", action.failure))
    };
    if !text {
        print(&mut out, &v.to_string())?;
        return if ok { Ok(()) } else { Err(summary()) };
    }
    let messages = v["messages"].as_object().cloned().unwrap_or_default();
    if !ok {
        // Serf's `failed: | NODE | MESSAGE` lines, then why, on stderr.
        let width = messages.keys().map(String::len).max().unwrap_or(0);
        let mut err = std::io::stderr();
        for (node, m) in &messages {
            let _ = writeln!(err, "failed:  {node:<width$}  {}", m.as_str().unwrap_or(""));
        }
        let _ = writeln!(err);
        return Err(summary());
    }
    for (node, m) in &messages {
        // A success with a message (a truncated key list): said, as Serf logs it.
        let _ = writeln!(
            std::io::stderr(),
            "warning: {node}: {}",
            m.as_str().unwrap_or("")
        );
    }
    print(&mut out, &format!("==> {}", action.success))?;
    if action.key.is_none() {
        print(&mut out, "")?;
        let total = v["num_nodes"].as_u64().unwrap_or(0);
        let keys = v["keys"].as_object().cloned().unwrap_or_default();
        let primary = v["primary_keys"].as_object().cloned().unwrap_or_default();
        for (key, n) in &keys {
            let mark = if primary.contains_key(key) {
                "  (primary)"
            } else {
                ""
            };
            print(
                &mut out,
                &format!("{key}  [{}/{total}]{mark}", n.as_u64().unwrap_or(0)),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> KeysArgs {
        KeysArgs {
            list: false,
            install: None,
            use_key: None,
            remove: None,
            relay_factor: 0,
            timeout: None,
            format: Format::Text,
            api: String::new(),
            token_file: None,
        }
    }

    #[test]
    fn one_action_with_a_good_key_makes_the_request() {
        let key = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
        let a = KeysArgs {
            install: Some(format!("{key}\n")),
            timeout: Some(Duration::from_secs(2)),
            relay_factor: 1,
            ..args()
        };
        let act = Action::of(&a).unwrap();
        assert_eq!(act.key.as_deref(), Some(key));
        assert_eq!(
            act.path(&a),
            "/v1/keys/install?relay-factor=1&timeout=2000ms"
        );
        let list = KeysArgs {
            list: true,
            ..args()
        };
        assert_eq!(Action::of(&list).unwrap().path(&list), "/v1/keys");
        let remove = KeysArgs {
            remove: Some(key.into()),
            ..args()
        };
        assert_eq!(Action::of(&remove).unwrap().route, "remove");
    }

    #[test]
    fn bad_keys_and_two_actions_are_usage_errors() {
        for bad in ["not base64!", "AAAA", ""] {
            let a = KeysArgs {
                use_key: Some(bad.into()),
                ..args()
            };
            let e = Action::of(&a).unwrap_err();
            assert_eq!(e.status, crate::ExitStatus::Usage, "{bad}: {e}");
            assert!(e.message.contains("--use"), "{e}");
        }
        let two = KeysArgs {
            list: true,
            install: Some("AAAAAAAAAAAAAAAAAAAAAA==".into()),
            ..args()
        };
        assert_eq!(
            Action::of(&two).unwrap_err().status,
            crate::ExitStatus::Usage
        );
        assert_eq!(
            Action::of(&args()).unwrap_err().status,
            crate::ExitStatus::Usage
        );
    }
}
