//! Bytes each agent of the mixed cluster sends, counted by the kernel rather than by the
//! agents (Serf counts nothing we can read, and one measure must serve both kinds): an
//! nftables table with, per agent, counters on the output hook for
//!
//! * UDP from its gossip port (memberlist sends every datagram from the socket it listens on),
//! * TCP from its gossip port (its side of the push-pulls and stream pings it accepted),
//! * TCP from any socket of its own Unix user to any agent's gossip port (its side of the
//!   exchanges it opened, from an ephemeral port): each agent runs as a user of its own.
//!
//! The bytes are whole IP packets as loopback carries them (IPv4 and UDP/TCP headers, TCP's
//! handshakes and acks included; no link layer). The API and RPC ports are not counted. The
//! table is deleted when the [`WireCounters`] drops.

use std::collections::HashMap;

use super::nft;

/// The table the counters live in.
const TABLE: &str = "gossiper_mixed_bench";

/// One counted agent: its gossip port and its own Unix user.
#[derive(Clone, Copy)]
pub struct Counted {
    /// UDP and TCP port it gossips on.
    pub port: u16,
    /// The uid it runs as (no other process uses it).
    pub uid: u32,
}

/// The installed counters; dropped, the table goes.
pub struct WireCounters;

impl Drop for WireCounters {
    fn drop(&mut self) {
        let _ = nft(&format!("delete table inet {TABLE}\n"));
    }
}

/// Installs a counter set for every agent (needs root and `nft`).
pub fn install(agents: &[Counted]) -> Result<WireCounters, String> {
    let ports = agents
        .iter()
        .map(|a| a.port.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    // A table left by a run that was killed goes first (add-then-delete cannot fail).
    let mut script = format!(
        "add table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         add table inet {TABLE}\n\
         add chain inet {TABLE} output {{ type filter hook output priority 0; policy accept; }}\n"
    );
    for a in agents {
        let (p, u) = (a.port, a.uid);
        script.push_str(&format!(
            "add rule inet {TABLE} output udp sport {p} counter comment \"{p}\"\n\
             add rule inet {TABLE} output tcp sport {p} counter comment \"{p}\"\n\
             add rule inet {TABLE} output meta skuid {u} tcp dport {{ {ports} }} counter comment \"{p}\"\n"
        ));
    }
    let guard = WireCounters;
    nft(&script)?;
    Ok(guard)
}

/// `(bytes, packets)` sent so far per gossip port.
pub fn read() -> Result<HashMap<u16, (u64, u64)>, String> {
    let out = std::process::Command::new("nft")
        .args(["-j", "list", "table", "inet", TABLE])
        .output()
        .map_err(|e| format!("nft: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft list: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("nft -j: {e}"))?;
    let mut sums: HashMap<u16, (u64, u64)> = HashMap::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        let rule = &item["rule"];
        let Some(port) = rule["comment"].as_str().and_then(|c| c.parse().ok()) else {
            continue;
        };
        for expr in rule["expr"].as_array().into_iter().flatten() {
            let c = &expr["counter"];
            if let (Some(b), Some(p)) = (c["bytes"].as_u64(), c["packets"].as_u64()) {
                let s = sums.entry(port).or_default();
                s.0 += b;
                s.1 += p;
            }
        }
    }
    Ok(sums)
}
