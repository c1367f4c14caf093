//! `gossiper query NAME [PAYLOAD]`: asks a Serf query through a `--protocol memberlist` agent
//! (its `POST /v1/query/NAME`), with `serf query`'s flags, and prints the acks and answers
//! that came back before the timeout, as `serf query` does.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::CliError;
use crate::client::Format;

/// Options of `gossiper query`.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The query's name.
    pub name: String,
    /// Its payload (text).
    #[arg(default_value = "")]
    pub payload: String,
    /// Only this node answers (repeatable), as `serf query -node`.
    #[arg(long, value_name = "NAME")]
    pub node: Vec<String>,
    /// Only nodes whose tag KEY matches REGEXP answer (repeatable), as `serf query -tag`.
    #[arg(long, value_name = "KEY=REGEXP")]
    pub tag: Vec<String>,
    /// How long to collect answers (e.g. 5s); Serf's default for the cluster's size if not
    /// given.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Ask for no acks (`serf query -no-ack`).
    #[arg(long)]
    pub no_ack: bool,
    /// Relay each answer through this many other members too (`serf query -relay-factor`).
    #[arg(long, default_value_t = 0)]
    pub relay_factor: u8,
    /// `text` (like `serf query`) or `json` (the API's reply).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The memberlist agent's API address.
    #[arg(long, default_value = "127.0.0.1:8946")]
    pub api: String,
    /// File holding the agent's API token, sent as `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// `--timeout`: the command line's one duration grammar (`5s`, `500ms`).
fn parse_timeout(s: &str) -> Result<Duration, String> {
    crate::sim_flags::parse_duration_us(s).map(Duration::from_micros)
}

/// The request path for `args`.
fn path(args: &QueryArgs) -> Result<String, CliError> {
    let encode = gossiper_agent::client::encode_segment;
    let mut q: Vec<String> = args
        .node
        .iter()
        .map(|n| format!("node={}", encode(n)))
        .collect();
    for t in &args.tag {
        if t.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            return Err(CliError::usage(format!("bad --tag {t:?}: use KEY=REGEXP")));
        }
        q.push(format!("tag={}", encode(t)));
    }
    if let Some(t) = args.timeout {
        q.push(format!("timeout={}ms", t.as_millis()));
    }
    if args.no_ack {
        q.push("ack=false".into());
    }
    if args.relay_factor > 0 {
        q.push(format!("relay-factor={}", args.relay_factor));
    }
    let mut p = format!("/v1/query/{}", encode(&args.name));
    if !q.is_empty() {
        p.push('?');
        p.push_str(&q.join("&"));
    }
    Ok(p)
}

/// `gossiper query NAME PAYLOAD`.
pub fn run(args: &QueryArgs) -> Result<(), CliError> {
    let wait = match args.timeout {
        Some(t) => t,
        // Serf's default is 3.2 s below 9 members and grows with log10 of the size.
        None => Duration::from_secs(60),
    };
    let auth = crate::client::auth_header(args.token_file.as_deref())?;
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    let reply = gossiper_agent::client::send(
        &args.api,
        "POST",
        &path(args)?,
        &headers,
        args.payload.as_bytes(),
        wait + Duration::from_secs(10),
    )
    .map_err(|e| CliError::failure(e.to_string()))?;
    let v: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    if reply.status >= 400 {
        let why = v["error"].as_str().unwrap_or("request failed");
        return Err(CliError::failure(format!("{why} (HTTP {})", reply.status)));
    }
    if args.format == Format::Json {
        println!("{v}");
        return Ok(());
    }
    println!("Query '{}' dispatched", args.name);
    let acks = v["acks"].as_array().cloned().unwrap_or_default();
    for a in &acks {
        println!("Ack from '{}'", a.as_str().unwrap_or(""));
    }
    let responses = v["responses"].as_object().cloned().unwrap_or_default();
    for (from, r) in &responses {
        let payload = r["payload"].as_str().unwrap_or("");
        let note = if r["encoding"] == "base64" {
            " (base64)"
        } else {
            ""
        };
        println!("Response from '{from}'{note}: {payload}");
    }
    if !args.no_ack {
        println!("Total Acks: {}", acks.len());
    }
    println!("Total Responses: {}", responses.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_the_apis_parameters() {
        let args = QueryArgs {
            name: "up time".into(),
            payload: String::new(),
            node: vec!["g1".into()],
            tag: vec!["role=^ru+st$".into()],
            timeout: Some(Duration::from_secs(3)),
            no_ack: true,
            relay_factor: 2,
            format: Format::Text,
            api: String::new(),
            token_file: None,
        };
        assert_eq!(
            path(&args).unwrap(),
            "/v1/query/up%20time?node=g1&tag=role%3D%5Eru%2Bst%24&timeout=3000ms&ack=false&relay-factor=2"
        );
        let bad = QueryArgs {
            tag: vec!["=x".into()],
            ..args
        };
        assert!(path(&bad).is_err());
    }
}
