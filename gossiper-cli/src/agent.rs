//! `gossiper agent`: run one cluster member over UDP with its HTTP API, until SIGINT/SIGTERM,
//! then leave gracefully and exit 0.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use gossiper_agent::{Agent, AgentConfig, AgentError};
use gossiper_cluster::Keyring;

use crate::CliError;
use crate::detector::DetectorArg;

/// Options of `gossiper agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// This node's name, unique in the cluster.
    #[arg(long)]
    pub name: String,
    /// UDP address to gossip on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7946")]
    pub bind: String,
    /// Address peers should use, when --bind is 0.0.0.0 or behind NAT.
    #[arg(long)]
    pub advertise: Option<String>,
    /// A peer's gossip address to join through (repeatable); retried with back-off.
    #[arg(long = "join", value_name = "ADDR")]
    pub join: Vec<String>,
    /// HTTP API address (loopback by default; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8946")]
    pub api: String,
    /// Cluster name: agents of other clusters are never admitted.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// File of 256-bit keys, 64 hex digits per line, primary first: every datagram is then
    /// encrypted and authenticated (XChaCha20-Poly1305); all listed keys decrypt.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Gossip round interval in milliseconds (10..=60000).
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Peers contacted per round (1..=16).
    #[arg(long, default_value_t = 3)]
    pub fanout: u32,
    /// Largest datagram in bytes, headers included (256..=65507).
    #[arg(long, default_value_t = 1_400)]
    pub mtu: usize,
    /// Failure detector: `swim` (probes, suspicion, incarnations; traffic flat in cluster
    /// size) or `phi` (a heartbeat in every digest, φ-accrual; traffic grows with it).
    #[arg(long, value_enum, default_value_t = DetectorArg::Swim)]
    pub detector: DetectorArg,
    /// φ at which a silent peer is declared dead (suspect from half of it); `--detector phi`.
    #[arg(long, default_value_t = 8.0)]
    pub phi_threshold: f64,
    /// Milliseconds after which dead and departed members are forgotten.
    #[arg(long, default_value_t = 600_000)]
    pub dead_grace_ms: u64,
    /// Milliseconds after which deleted keys' tombstones are dropped.
    #[arg(long, default_value_t = 600_000)]
    pub tombstone_grace_ms: u64,
    /// Seed for the agent's random choices (default: from the OS).
    #[arg(long)]
    pub seed: Option<u64>,
}

fn resolve(what: &str, s: &str) -> Result<SocketAddr, CliError> {
    s.to_socket_addrs()
        .map_err(|e| CliError::usage(format!("bad {what} address {s:?}: {e}")))?
        .next()
        .ok_or_else(|| CliError::usage(format!("bad {what} address {s:?}")))
}

/// Turns the options into an agent configuration (reading the key file).
pub fn config(args: &AgentArgs) -> Result<AgentConfig, CliError> {
    let mut c = AgentConfig::new(args.name.clone());
    c.bind = resolve("--bind", &args.bind)?;
    c.advertise = args
        .advertise
        .as_deref()
        .map(|a| resolve("--advertise", a))
        .transpose()?;
    c.api = resolve("--api", &args.api)?;
    c.join = args
        .join
        .iter()
        .map(|j| resolve("--join", j))
        .collect::<Result<_, _>>()?;
    c.cluster = args.cluster.clone();
    if let Some(path) = &args.key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
        c.keyring = Some(
            Keyring::parse(&text)
                .map_err(|e| CliError::usage(format!("bad key file {}: {e}", path.display())))?,
        );
    }
    c.interval_ms = args.interval_ms;
    c.fanout = args.fanout;
    c.mtu = args.mtu;
    c.phi_threshold = args.phi_threshold;
    c.detector = args.detector.detector();
    c.dead_grace_ms = args.dead_grace_ms;
    c.tombstone_grace_ms = args.tombstone_grace_ms;
    c.seed = args.seed;
    Ok(c)
}

/// Runs the agent until a signal; prints one line with its addresses on stdout once serving.
pub fn run(args: &AgentArgs) -> Result<(), CliError> {
    let config = config(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| CliError::failure(format!("cannot install the signal handler: {e}")))?;
    let agent = Agent::start(config, stop).map_err(|e| match e {
        AgentError::Config(m) => CliError::usage(m),
        AgentError::Io(m) => CliError::failure(m),
    })?;
    println!(
        "gossiper agent {}: gossip {} api http://{}",
        args.name,
        agent.gossip_addr(),
        agent.api_addr()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    agent.wait().map_err(|e| CliError::failure(e.to_string()))
}
