//! `gossiper agent --protocol memberlist` and `gossiper event`: the agent speaking HashiCorp
//! memberlist + Serf, so that a Serf cluster lists it as one of its own, and the command that
//! sends a Serf user event through its API (`gossiper query` is in `query.rs`). See
//! `docs/memberlist.md`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use clap::Args;
use gossiper_agent::http::HttpConfig;
use gossiper_agent::memberlist::MemberlistBuilder;
use gossiper_agent::memberlist::http::serve;
use gossiper_memberlist::{Config, Keyring, Timing};

use crate::CliError;
use crate::agent::AgentArgs;
use crate::agent::{read_secret as read_file, resolve};

/// Which wire protocol `gossiper agent` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// gossiper's own cluster protocol.
    Gossiper,
    /// HashiCorp memberlist 0.2.2 with Serf 0.9.4 on top: joins a Serf cluster.
    Memberlist,
}

/// memberlist's timing profiles (Serf's `-profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// `DefaultLANConfig` (Serf's default).
    Lan,
    /// `DefaultWANConfig`.
    Wan,
    /// `DefaultLocalConfig`.
    Local,
}

/// `KEY=VALUE` tags into a map.
pub fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    tags.iter()
        .map(|t| {
            t.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| CliError::usage(format!("bad --tag {t:?}: use KEY=VALUE")))
        })
        .collect()
}

/// `NAME=TEXT` query responses into a map; a name given twice is refused.
pub fn parse_query_responses(responses: &[String]) -> Result<BTreeMap<String, Vec<u8>>, CliError> {
    let mut out = BTreeMap::new();
    for r in responses {
        let (name, text) = r
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| CliError::usage(format!("bad --query-response {r:?}: use NAME=TEXT")))?;
        if name.starts_with(gossiper_memberlist::query::INTERNAL_PREFIX) {
            return Err(CliError::usage(format!(
                "--query-response {name}: names starting with {} are Serf's own",
                gossiper_memberlist::query::INTERNAL_PREFIX
            )));
        }
        if out
            .insert(name.to_owned(), text.as_bytes().to_vec())
            .is_some()
        {
            return Err(CliError::usage(format!(
                "--query-response {name} given twice"
            )));
        }
    }
    Ok(out)
}

/// Serf's keyring file: a JSON array of base64 keys, primary first.
pub fn parse_keyring(text: &str) -> Result<Keyring, String> {
    let keys: Vec<String> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array of base64 keys: {e}"))?;
    let keys = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .map_err(|e| format!("key {} is not base64: {e}", i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Keyring::new(&keys)
}

/// The node's configuration from the agent's options.
pub fn config(args: &AgentArgs) -> Result<(Config, SocketAddr, Vec<SocketAddr>), CliError> {
    let bind = resolve("--bind", &args.bind)?;
    let advertise = match &args.advertise {
        Some(a) => resolve("--advertise", a)?,
        None => bind,
    };
    let name = args
        .name
        .clone()
        .ok_or_else(|| CliError::usage("no node name: give --name NAME"))?;
    let mut c = Config::new(name, advertise);
    c.tags = parse_tags(&args.tag)?;
    c.query_responses = parse_query_responses(&args.query_response)?;
    c.timing = match args.profile {
        Profile::Lan => Timing::lan(),
        Profile::Wan => Timing::wan(),
        Profile::Local => Timing::local(),
    };
    if let Some(path) = &args.keyring_file {
        let text = read_file("keyring file", path)?;
        c.keyring =
            Some(parse_keyring(&text).map_err(|e| {
                CliError::usage(format!("bad keyring file {}: {e}", path.display()))
            })?);
    } else if !bind.ip().is_loopback() && !args.insecure {
        return Err(CliError::usage(format!(
            "memberlist on {bind} without --keyring-file is open to anyone who reaches it: \
             give Serf's keyring file or --insecure"
        )));
    }
    let mut seeds = Vec::new();
    for j in &args.join {
        let addrs = j
            .to_socket_addrs()
            .map_err(|e| CliError::usage(format!("bad --join address {j:?}: {e}")))?;
        seeds.extend(addrs.filter(|a| !seeds.contains(a)).collect::<Vec<_>>());
    }
    Ok((c, bind, seeds))
}

/// Runs the memberlist agent until SIGINT/SIGTERM, then leaves as Serf does.
pub fn run(args: &AgentArgs) -> Result<(), CliError> {
    let (config, bind, seeds) = config(args)?;
    let api = resolve("--api", &args.api)?;
    let token = match &args.api_token_file {
        Some(p) => Some(read_file("API token file", p)?.trim().to_owned()),
        None => None,
    };
    let http = HttpConfig {
        token,
        allowed_hosts: args.api_allow_host.clone(),
        max_connections: args.api_max_connections,
        max_parked: args.api_max_parked,
        header_timeout: Duration::from_millis(args.api_header_timeout_ms.max(1)),
        body_timeout: Duration::from_millis(args.api_body_timeout_ms.max(1)),
        ..HttpConfig::default()
    };
    let join_timeout = config.timing.tcp_timeout + Duration::from_secs(2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the runtime: {e}")))?;
    let mut builder = MemberlistBuilder::new(config)
        .bind(bind)
        .join(seeds.clone());
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    if let Some(path) = &args.keyring_file {
        // Key queries (`serf keys -install/-use/-remove`) change the keyring: saved back here.
        builder = builder.keyring_file(path);
    }
    let exit_with_stdin = args.exit_with_stdin;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(api)
            .await
            .map_err(|e| CliError::failure(format!("cannot serve the API on {api}: {e}")))?;
        let api = listener
            .local_addr()
            .map_err(|e| CliError::failure(e.to_string()))?;
        let agent = builder.start().await.map_err(|e| match e {
            gossiper_agent::AgentError::Config(m) => CliError::usage(m),
            other => CliError::failure(other.to_string()),
        })?;
        if !seeds.is_empty() {
            // Like `serf agent -join`: no seed answering is a failed start.
            let mut joins = agent.joins();
            let n = seeds.len();
            let done = joins.wait_for(|j| j.joined.is_some() || j.errors.len() >= n);
            let state = match tokio::time::timeout(join_timeout, done).await {
                Ok(Ok(s)) => s.clone(),
                _ => Default::default(),
            };
            if state.joined.is_none() {
                agent.shutdown().await;
                let why = if state.errors.is_empty() {
                    "no answer".to_owned()
                } else {
                    state.errors.join("; ")
                };
                return Err(CliError::failure(format!("cannot join the cluster: {why}")));
            }
        }
        let server = tokio::spawn(serve(agent.clone(), listener, http));
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "gossiper agent {} (memberlist): gossip {} api http://{api}",
            agent.name(),
            agent.gossip_addr()
        );
        let _ = out.flush();
        let signal = tokio::select! {
            s = crate::agent::wait_for_signal() => s,
            () = crate::agent::stdin_closed(), if exit_with_stdin => "stdin closed",
        };
        log::info!("{signal}: leaving the cluster");
        agent.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
        Ok(())
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Options of `gossiper event`.
#[derive(Debug, Clone, Args)]
pub struct EventArgs {
    /// The event's name.
    pub name: String,
    /// Its payload (text).
    #[arg(default_value = "")]
    pub payload: String,
    /// Let Serf agents coalesce it with others of its name (`serf event`'s default); without
    /// it, handlers run for every event at once.
    #[arg(long)]
    pub coalesce: bool,
    /// The memberlist agent's API address.
    #[arg(long, default_value = "127.0.0.1:8946")]
    pub api: String,
    /// File holding the agent's API token, sent as `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// `gossiper event NAME PAYLOAD`: sends a Serf user event through a memberlist agent.
pub fn event(args: &EventArgs) -> Result<(), CliError> {
    let auth = crate::client::auth_header(args.token_file.as_deref())?;
    let headers = crate::client::with_auth(&auth);
    let mut path = format!(
        "/v1/event/{}",
        gossiper_agent::client::encode_segment(&args.name)
    );
    if args.coalesce {
        path.push_str("?coalesce=true");
    }
    let reply = gossiper_agent::client::send(
        &args.api,
        "POST",
        &path,
        &headers,
        args.payload.as_bytes(),
        Duration::from_secs(5),
    )
    .map_err(|e| CliError::failure(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    if reply.status >= 400 {
        let why = v["error"].as_str().unwrap_or("request failed");
        return Err(CliError::failure(format!("{why} (HTTP {})", reply.status)));
    }
    println!(
        "event {} sent (clock {})",
        args.name,
        v["ltime"].as_u64().unwrap_or(0)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_keyrings_parse() {
        let tags = parse_tags(&["role=rust".into(), "dc=a=b".into()]).unwrap();
        assert_eq!(tags["role"], "rust");
        assert_eq!(tags["dc"], "a=b");
        assert!(parse_tags(&["novalue".into()]).is_err());
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(parse_keyring(&format!("[\"{key}\"]")).is_ok());
        assert!(
            parse_keyring("[\"AAAA\"]").is_err(),
            "3 bytes is no AES key"
        );
        assert!(parse_keyring("not json").is_err());
    }
}
