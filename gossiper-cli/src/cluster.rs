//! `gossiper cluster --nodes N`: a local cluster of N agents as child processes on loopback
//! ports, stopped cleanly (each leaves gracefully) on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::CliError;

/// Options of `gossiper cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Number of agents (1..=200).
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Gossip port of the first agent; agent i uses this + i.
    #[arg(long, default_value_t = 7946)]
    pub base_port: u16,
    /// API port of the first agent; agent i uses this + i.
    #[arg(long, default_value_t = 8946)]
    pub api_base_port: u16,
    /// Cluster name.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Key file handed to every agent.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Gossip round interval in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Peers contacted per round.
    #[arg(long, default_value_t = 3)]
    pub fanout: u16,
}

/// Asks a child to leave gracefully (SIGTERM); the agent then exits 0.
pub fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Starts the agents, prints how to reach them, waits for Ctrl-C, stops them.
pub fn run(args: &ClusterArgs) -> Result<(), CliError> {
    if !(1..=200).contains(&args.nodes) {
        return Err(CliError::usage("--nodes must be within 1..=200"));
    }
    let last = u32::from(args.base_port.max(args.api_base_port)) + u32::from(args.nodes);
    if last > u32::from(u16::MAX) {
        return Err(CliError::usage("ports would run past 65535"));
    }
    let exe = std::env::current_exe()
        .map_err(|e| CliError::failure(format!("cannot find the gossiper binary: {e}")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| CliError::failure(format!("cannot install the signal handler: {e}")))?;
    let seed = format!("127.0.0.1:{}", args.base_port);
    let mut children: Vec<(String, Child)> = Vec::new();
    println!("{:<10} {:<18} {:<28} try", "NAME", "GOSSIP", "API");
    for i in 0..args.nodes {
        let name = format!("node-{i}");
        let bind = format!("127.0.0.1:{}", args.base_port + i);
        let api = format!("127.0.0.1:{}", args.api_base_port + i);
        let mut cmd = Command::new(&exe);
        cmd.arg("agent")
            .args(["--name", &name, "--bind", &bind, "--api", &api])
            .args(["--cluster", &args.cluster])
            .args(["--interval-ms", &args.interval_ms.to_string()])
            .args(["--fanout", &args.fanout.to_string()])
            .stdout(Stdio::null());
        if i > 0 {
            cmd.args(["--join", &seed]);
        }
        if let Some(k) = &args.key_file {
            cmd.arg("--key-file").arg(k);
        }
        match cmd.spawn() {
            Ok(child) => children.push((name.clone(), child)),
            Err(e) => {
                stop_all(&mut children);
                return Err(CliError::failure(format!("cannot start {name}: {e}")));
            }
        }
        println!("{name:<10} {bind:<18} http://{api:<21} gossiper members --api {api}");
    }
    println!("{} agents running; Ctrl-C stops them all.", args.nodes);
    let mut failed = None;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        for (name, child) in &mut children {
            if let Ok(Some(status)) = child.try_wait() {
                failed = Some(format!("{name} exited early ({status})"));
            }
        }
        if failed.is_some() {
            break;
        }
    }
    stop_all(&mut children);
    match failed {
        Some(m) => Err(CliError::failure(m)),
        None => {
            println!("all agents stopped");
            Ok(())
        }
    }
}

fn stop_all(children: &mut [(String, Child)]) {
    for (_, child) in children.iter() {
        terminate(child);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for (name, child) in children.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                _ if Instant::now() >= deadline => {
                    log::warn!("{name} did not stop in time; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
