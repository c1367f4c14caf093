//! `gossiper agent`: one cluster member over UDP with its HTTP API, on a current-thread tokio
//! runtime, until SIGINT/SIGTERM; then it leaves gracefully and exits 0.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, Args};
use gossiper_agent::http::{HttpConfig, serve};
use gossiper_agent::{AgentBuilder, AgentError, DEFAULT_MAX_VALUE_BYTES};
use gossiper_cluster::{ClusterConfig, Keyring};

use crate::CliError;
use crate::detector::DetectorArg;

pub mod config;

/// Options of `gossiper agent`. Each has a `GOSSIPER_*` environment variable (the long flag's
/// name in upper snake case: `--api-max-parked` is `GOSSIPER_API_MAX_PARKED`; lists are
/// comma-separated) and a key of the same kebab-case name in the `--config` file; a flag wins
/// over its variable, which wins over the file, which wins over the default (see
/// `agent::config`).
#[derive(Debug, Clone, PartialEq, Args)]
pub struct AgentArgs {
    /// A TOML file of settings, one key per flag (`bind = "0.0.0.0:7946"`); re-read on SIGHUP
    /// for what can change at run time (key file, log level).
    #[arg(long, env = "GOSSIPER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// This node's name, unique in the cluster (required here, in the environment or in the
    /// file).
    #[arg(long, env = "GOSSIPER_NAME")]
    pub name: Option<String>,
    /// UDP address to gossip on (port 0 picks a free one).
    #[arg(long, env = "GOSSIPER_BIND", default_value = "127.0.0.1:7946")]
    pub bind: String,
    /// Address peers should use, when --bind is 0.0.0.0 or behind NAT.
    #[arg(long, env = "GOSSIPER_ADVERTISE")]
    pub advertise: Option<String>,
    /// A peer's gossip address to join through (repeatable, or comma-separated), `HOST:PORT`
    /// with a host name or an IP; names are resolved again at every join attempt and every
    /// address they resolve to is tried, with back-off.
    #[arg(
        long = "join",
        env = "GOSSIPER_JOIN",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub join: Vec<String>,
    /// HTTP API address (loopback by default; port 0 picks a free one).
    #[arg(long, env = "GOSSIPER_API", default_value = "127.0.0.1:8946")]
    pub api: String,
    /// File holding the API token: writes (PUT, DELETE) then need
    /// `Authorization: Bearer TOKEN`. Without it, anyone who reaches the API can write.
    #[arg(long, env = "GOSSIPER_API_TOKEN_FILE", value_name = "PATH")]
    pub api_token_file: Option<PathBuf>,
    /// A host name accepted in the API's `Host` header besides localhost and the bound IP
    /// (repeatable, or comma-separated); other names get 421 (DNS-rebinding protection).
    #[arg(
        long = "api-allow-host",
        env = "GOSSIPER_API_ALLOW_HOST",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub api_allow_host: Vec<String>,
    /// API connections served at once; more are closed at accept.
    #[arg(long, env = "GOSSIPER_API_MAX_CONNECTIONS", default_value_t = 1_024)]
    pub api_max_connections: usize,
    /// API blocking queries and event streams waiting at once; more get 429.
    #[arg(long, env = "GOSSIPER_API_MAX_PARKED", default_value_t = 256)]
    pub api_max_parked: usize,
    /// Milliseconds a client has to send a request head; also the longest idle time of a
    /// keep-alive API connection.
    #[arg(long, env = "GOSSIPER_API_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub api_header_timeout_ms: u64,
    /// Milliseconds a client has to send a request body (else 408).
    #[arg(long, env = "GOSSIPER_API_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub api_body_timeout_ms: u64,
    /// Milliseconds a reply may wait for the client to read it (a client that asks and never
    /// reads); then the connection is closed.
    #[arg(long, env = "GOSSIPER_API_WRITE_TIMEOUT_MS", default_value_t = 10_000)]
    pub api_write_timeout_ms: u64,
    /// Largest value a write accepts, in bytes; it must fit one datagram (--mtu) with a
    /// 256-byte key.
    #[arg(long, env = "GOSSIPER_MAX_VALUE_BYTES", default_value_t = DEFAULT_MAX_VALUE_BYTES)]
    pub max_value_bytes: usize,
    /// Cluster name: agents of other clusters are never admitted.
    #[arg(long, env = "GOSSIPER_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// File of 256-bit keys, 64 hex digits per line, primary first: every datagram is then
    /// encrypted and authenticated (XChaCha20-Poly1305); all listed keys decrypt. Re-read on
    /// SIGHUP, so keys rotate without a restart.
    #[arg(long, env = "GOSSIPER_KEY_FILE", value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Gossip without --key-file on an address other than loopback. Then anyone who can send
    /// this agent one datagram can write cluster state as any other member (docs/security.md);
    /// without this flag such a bind is refused.
    #[arg(long, env = "GOSSIPER_INSECURE")]
    pub insecure: bool,
    /// Gossip round interval in milliseconds (10..=60000).
    #[arg(long, env = "GOSSIPER_INTERVAL_MS", default_value_t = 200)]
    pub interval_ms: u64,
    /// Peers contacted per round (1..=16).
    #[arg(long, env = "GOSSIPER_FANOUT", default_value_t = 3)]
    pub fanout: u32,
    /// Largest datagram in bytes, headers included (256..=65507).
    #[arg(long, env = "GOSSIPER_MTU", default_value_t = 1_400)]
    pub mtu: usize,
    /// Failure detector: `swim` (probes, suspicion, incarnations; traffic flat in cluster
    /// size) or `phi` (a heartbeat in every digest, φ-accrual; traffic grows with it).
    #[arg(long, env = "GOSSIPER_DETECTOR", value_enum, default_value_t = DetectorArg::Swim)]
    pub detector: DetectorArg,
    /// φ at which a silent peer is declared dead (suspect from half of it); `--detector phi`.
    #[arg(long, env = "GOSSIPER_PHI_THRESHOLD", default_value_t = 8.0)]
    pub phi_threshold: f64,
    /// Milliseconds after which dead and departed members are forgotten.
    #[arg(long, env = "GOSSIPER_DEAD_GRACE_MS", default_value_t = 600_000)]
    pub dead_grace_ms: u64,
    /// Milliseconds after which deleted keys' tombstones are dropped.
    #[arg(long, env = "GOSSIPER_TOMBSTONE_GRACE_MS", default_value_t = 600_000)]
    pub tombstone_grace_ms: u64,
    /// Seed for the agent's random choices (default: from the OS).
    #[arg(long, env = "GOSSIPER_SEED")]
    pub seed: Option<u64>,
    /// Which log lines to write, in `RUST_LOG`'s syntax (`info`, `warn,gossiper_agent=debug`);
    /// `RUST_LOG` itself counts as this flag's environment variable, below `GOSSIPER_LOG_LEVEL`.
    /// Default: `warn,gossiper_agent=info,gossiper_cli::agent=info` (membership changes and
    /// reloads at info, refused peers and dead members at warn). Re-read from the file on SIGHUP.
    #[arg(long, env = "GOSSIPER_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log lines as text or as JSON objects.
    #[arg(long, env = "GOSSIPER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Wire protocol: gossiper's own, or `memberlist` (HashiCorp memberlist + Serf: joins a
    /// Serf cluster; see docs/memberlist.md).
    #[arg(long, env = "GOSSIPER_PROTOCOL", value_enum, default_value_t = crate::memberlist::Protocol::Gossiper)]
    pub protocol: crate::memberlist::Protocol,
    /// A Serf tag `KEY=VALUE` (repeatable; `--protocol memberlist`).
    #[arg(
        long = "tag",
        env = "GOSSIPER_TAG",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
    pub tag: Vec<String>,
    /// Answer user query NAME with TEXT (repeatable; `--protocol memberlist`): what `serf
    /// query NAME` then lists from this node, where a Serf agent would run its query handler.
    #[arg(long, env = "GOSSIPER_QUERY_RESPONSE", value_name = "NAME=TEXT")]
    pub query_response: Vec<String>,
    /// Serf's keyring file, a JSON array of base64 AES keys, primary first (`--protocol
    /// memberlist`; what `serf agent -keyring-file` reads); `serf keys -install/-use/-remove`
    /// change the keyring and it is written back here.
    #[arg(long, env = "GOSSIPER_KEYRING_FILE", value_name = "PATH")]
    pub keyring_file: Option<PathBuf>,
    /// memberlist timing profile (`--protocol memberlist`), as Serf's `-profile`.
    #[arg(long, env = "GOSSIPER_PROFILE", value_enum, default_value_t = crate::memberlist::Profile::Lan)]
    pub profile: crate::memberlist::Profile,
    /// Leave and exit when stdin closes: how `gossiper cluster` makes its agents die with it.
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
}

/// How the agent writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `[time LEVEL target] message`.
    Text,
    /// One JSON object a line: `ts`, `level`, `target`, `msg`.
    Json,
}

pub(crate) fn resolve(what: &str, s: &str) -> Result<SocketAddr, CliError> {
    s.to_socket_addrs()
        .map_err(|e| CliError::usage(format!("bad {what} address {s:?}: {e}")))?
        .next()
        .ok_or_else(|| CliError::usage(format!("bad {what} address {s:?}")))
}

/// Reads a secret file, warning when others may read it.
pub(crate) fn read_secret(what: &str, path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read {what} {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            log::warn!(
                "{what} {} is readable by other users (mode {:o}): chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
    Ok(text)
}

/// Reads and parses a key file (warning when others may read it).
fn read_keyring(path: &Path) -> Result<Keyring, CliError> {
    let text = read_secret("key file", path)?;
    Keyring::parse(&text)
        .map_err(|e| CliError::usage(format!("bad key file {}: {e}", path.display())))
}

/// What `gossiper agent` runs: the agent's builder, the API's address and its configuration.
#[derive(Debug)]
pub struct Plan {
    /// The agent.
    pub agent: AgentBuilder,
    /// Where the API listens.
    pub api: SocketAddr,
    /// The API's limits and token.
    pub http: HttpConfig,
}

/// Turns the options (as [`config::Layers::resolve`] gives them) into a plan, reading the key
/// and token files.
pub fn plan(args: &AgentArgs) -> Result<Plan, CliError> {
    let name = args
        .name
        .clone()
        .ok_or_else(|| CliError::usage("no node name: give --name NAME"))?;
    let bind = resolve("--bind", &args.bind)?;
    if args.key_file.is_none() && !bind.ip().is_loopback() && !args.insecure {
        return Err(CliError::usage(format!(
            "gossip on {bind} without --key-file would let anyone who reaches it write cluster \
             state: give a key (`gossiper keygen PATH`, then --key-file PATH) or --insecure"
        )));
    }
    if args.key_file.is_none() && !bind.ip().is_loopback() {
        log::warn!("gossip on {bind} is unauthenticated (--insecure): see docs/security.md");
    }
    let advertise = args
        .advertise
        .as_deref()
        .map(|a| resolve("--advertise", a))
        .transpose()?;
    // The builder fills an unspecified IP or port 0 from the bound socket.
    let mut c = ClusterConfig::new(name, advertise.unwrap_or(bind), 0);
    c.cluster = args.cluster.clone();
    if let Some(path) = &args.key_file {
        c.keyring = Some(read_keyring(path)?);
    }
    c.interval_ms = args.interval_ms;
    c.fanout = args.fanout;
    c.mtu = args.mtu;
    c.phi_threshold = args.phi_threshold;
    c.detector = args.detector.detector();
    c.dead_grace_ms = args.dead_grace_ms;
    c.tombstone_grace_ms = args.tombstone_grace_ms;
    // Names are resolved by the agent before every join attempt, to every address they have.
    let mut agent = AgentBuilder::new(c)
        .bind(bind)
        .join(args.join.iter().cloned())
        .max_value_bytes(args.max_value_bytes);
    if let Some(seed) = args.seed {
        agent = agent.seed(seed);
    }
    let token = match &args.api_token_file {
        None => None,
        Some(path) => {
            let token = read_secret("API token file", path)?.trim().to_owned();
            if token.is_empty() {
                return Err(CliError::usage(format!(
                    "API token file {} is empty",
                    path.display()
                )));
            }
            Some(token)
        }
    };
    let http = HttpConfig {
        token,
        allowed_hosts: args.api_allow_host.clone(),
        max_connections: args.api_max_connections,
        max_parked: args.api_max_parked,
        header_timeout: Duration::from_millis(args.api_header_timeout_ms.max(1)),
        body_timeout: Duration::from_millis(args.api_body_timeout_ms.max(1)),
        write_timeout: Duration::from_millis(args.api_write_timeout_ms.max(1)),
        ..HttpConfig::default()
    };
    Ok(Plan {
        agent,
        api: resolve("--api", &args.api)?,
        http,
    })
}

fn start_error(e: AgentError) -> CliError {
    match e {
        AgentError::Config(m) => CliError::usage(m),
        other => CliError::failure(other.to_string()),
    }
}

/// Runs the agent until SIGINT or SIGTERM, reloading on SIGHUP; prints one line with its
/// addresses on stdout once serving. `matches` are the `agent` subcommand's, which say which
/// settings the flags and the environment gave (the config file fills the others).
pub fn run(cli: AgentArgs, matches: &ArgMatches) -> Result<(), CliError> {
    let layers = config::Layers::new(cli, matches);
    let args = layers.resolve(std::env::var("RUST_LOG").ok().as_deref())?;
    crate::logging::init(config::log_filter(&args), args.log_format);
    if args.protocol == crate::memberlist::Protocol::Memberlist {
        return crate::memberlist::run(&args);
    }
    let plan = plan(&args)?;
    let exit_with_stdin = args.exit_with_stdin;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(plan.api)
            .await
            .map_err(|e| CliError::failure(format!("cannot serve the API on {}: {e}", plan.api)))?;
        let api = listener
            .local_addr()
            .map_err(|e| CliError::failure(e.to_string()))?;
        // Before the first line: a SIGHUP from then on reloads, it never kills.
        let mut hangups = Hangups::new();
        let agent = plan.agent.start().await.map_err(start_error)?;
        let server = tokio::spawn(serve(agent.clone(), listener, plan.http));
        // A closed stdout is no reason to stop: the line is a courtesy.
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "gossiper agent {}: gossip {} api http://{api}",
            agent.name(),
            agent.gossip_addr()
        );
        let _ = out.flush();
        let mut running = args;
        let mut stop = std::pin::pin!(wait_for_signal());
        let mut stdin = std::pin::pin!(stdin_closed());
        let signal = loop {
            tokio::select! {
                s = &mut stop => break s,
                () = &mut stdin, if exit_with_stdin => break "stdin closed",
                () = hangups.next() => reload(&layers, &agent, &mut running).await,
            }
        };
        log::info!("{signal}: leaving the cluster");
        agent.shutdown().await;
        match tokio::time::timeout(Duration::from_secs(3), server).await {
            Ok(Ok(Err(e))) => Err(CliError::failure(format!("API: {e}"))),
            _ => Ok(()),
        }
    });
    // A stdin reader may still block in the runtime's pool: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// SIGHUP, caught from creation on (its default action would end the process).
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn new() -> Hangups {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|e| log::warn!("SIGHUP will not reload: {e}"))
                .ok();
            Hangups { signal }
        }
        #[cfg(not(unix))]
        Hangups {}
    }

    /// The next SIGHUP (several in a row may arrive as one); never without a handler.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending().await
    }
}

/// Applies what SIGHUP can change while the agent runs: the settings are resolved again (the
/// config file is re-read under the same flags and variables), the key file is re-read into
/// the keyring, and the log filter is swapped. Whatever cannot be applied is said at warn, and
/// what was before stays.
async fn reload(
    layers: &config::Layers,
    agent: &gossiper_agent::AgentHandle,
    running: &mut AgentArgs,
) {
    let args = match layers.resolve(std::env::var("RUST_LOG").ok().as_deref()) {
        Ok(args) => args,
        Err(e) => {
            log::warn!("SIGHUP: nothing reloaded, the running settings stay: {e}");
            return;
        }
    };
    let mut reloaded = Vec::new();
    match (&args.key_file, agent.info().encrypted) {
        (Some(path), true) => match read_keyring(path) {
            Ok(keyring) => {
                let keys = keyring.len();
                match agent.set_keyring(keyring).await {
                    Ok(()) => {
                        reloaded.push(format!("the keyring ({keys} keys from {})", path.display()));
                        running.key_file = args.key_file.clone();
                    }
                    Err(e) => log::warn!("SIGHUP: keyring not reloaded: {e}"),
                }
            }
            Err(e) => log::warn!("SIGHUP: the old keyring stays: {e}"),
        },
        (Some(path), false) => log::warn!(
            "SIGHUP: key file {} not loaded: this agent started without one, and sealing cannot              start while it runs (restart it)",
            path.display()
        ),
        (None, true) => log::warn!(
            "SIGHUP: no key file configured any more; the old keyring stays (sealing cannot stop              while the agent runs)"
        ),
        (None, false) => {}
    }
    let filter = config::log_filter(&args).to_owned();
    let filter_changed = filter != config::log_filter(running);
    if filter_changed {
        reloaded.push(format!("the log level ({filter})"));
    }
    let mut rest = args.clone();
    rest.key_file.clone_from(&running.key_file);
    rest.log_level.clone_from(&running.log_level);
    if rest != *running {
        log::warn!(
            "SIGHUP: settings besides key-file and log-level changed; they apply at the next start"
        );
    }
    if reloaded.is_empty() {
        log::info!("SIGHUP: nothing to reload");
    } else {
        log::info!("SIGHUP: reloaded {}", reloaded.join(" and "));
    }
    // Last, so that the line above is written under the filter it was asked under.
    if filter_changed {
        crate::logging::set_filter(&filter);
        running.log_level = args.log_level;
    }
}

/// Resolves when stdin reaches its end (or fails).
pub(crate) async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0; 256];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Waits for SIGINT or SIGTERM; names the one that came.
pub(crate) async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "SIGINT",
                _ = term.recv() => return "SIGTERM",
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}
