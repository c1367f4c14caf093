//! `gossiper members | set | get | delete`: the agent's HTTP API from the command line.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use gossiper_agent::client::{Reply, encode_segment, send};
use serde_json::Value;

use crate::CliError;

/// Output format of the client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable.
    #[default]
    Text,
    /// The API's JSON, as is.
    Json,
}

/// Options every client command takes.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The agent's API address.
    #[arg(long, default_value = "127.0.0.1:8946")]
    pub api: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// File holding the agent's API token (see `gossiper agent --api-token-file`), sent as
    /// `Authorization: Bearer TOKEN`; `GOSSIPER_API_TOKEN` is read when this is not given.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// The `Authorization` header for the token in `token_file`, or in `GOSSIPER_API_TOKEN` when
/// no file is given; `None` without a token. Every client command sends its token this way.
pub(crate) fn auth_header(
    token_file: Option<&std::path::Path>,
) -> Result<Option<String>, CliError> {
    let token = match token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map(|t| t.trim().to_owned())
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?,
        ),
        None => std::env::var("GOSSIPER_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    Ok(token.map(|t| format!("Bearer {t}")))
}

/// The request headers carrying `auth` (from [`auth_header`]), none without a token.
pub(crate) fn with_auth(auth: &Option<String>) -> Vec<(&'static str, &str)> {
    auth.as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect()
}

/// Options of `gossiper set`.
#[derive(Debug, Clone, Args)]
pub struct SetArgs {
    /// The key (owned by the agent you talk to).
    pub key: String,
    /// The value.
    pub value: String,
    /// Delete the key after this long (e.g. 30s, 5m).
    #[arg(long)]
    pub ttl: Option<String>,
    /// API options.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Options of `gossiper get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// The node that owns the key.
    pub node: String,
    /// The key.
    pub key: String,
    /// Blocking query: wait until the key's version exceeds this.
    #[arg(long)]
    pub index: Option<u64>,
    /// Longest wait of a blocking query (e.g. 5s).
    #[arg(long, default_value = "5s")]
    pub wait: String,
    /// API options.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Options of `gossiper delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// The key to delete on the agent you talk to.
    pub key: String,
    /// API options.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Sends one request; returns the reply, or the API's error as a one-line failure.
fn send_request(
    api: &ApiArgs,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Reply, CliError> {
    let auth = auth_header(api.token_file.as_deref())?;
    let headers = with_auth(&auth);
    let reply = send(&api.api, method, path, &headers, body, timeout)
        .map_err(|e| CliError::failure(e.to_string()))?;
    if reply.status >= 400 {
        let v: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let reason = v["error"].as_str().unwrap_or("request failed");
        return Err(CliError::failure(format!(
            "{reason} (HTTP {})",
            reply.status
        )));
    }
    Ok(reply)
}

fn call(
    api: &ApiArgs,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Value, CliError> {
    let reply = send_request(api, method, path, body, timeout)?;
    serde_json::from_slice(&reply.body)
        .map_err(|_| CliError::failure(format!("API answered {} with non-JSON", reply.status)))
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// `gossiper members`.
pub fn members(api: &ApiArgs) -> Result<(), CliError> {
    let v = call(api, "GET", "/v1/members", b"", TIMEOUT)?;
    if api.format == Format::Json {
        println!("{v}");
        return Ok(());
    }
    let list: Vec<&Value> = v.as_array().into_iter().flatten().collect();
    // A memberlist agent's members have Serf tags and no generation: Serf's columns, with
    // memberlist's incarnation.
    if list.iter().any(|m| m.get("tags").is_some()) {
        print_serf_members(&list);
        return Ok(());
    }
    // SWIM members carry an incarnation, φ members a heartbeat and a φ: one column shows
    // whichever the agent's detector has.
    let phi = list
        .iter()
        .any(|m| m["heartbeat"].as_u64().unwrap_or(0) > 0);
    println!(
        "{:<20} {:<22} {:<8} {:>15} {:>11}",
        "NAME",
        "ADDR",
        "STATUS",
        "GENERATION",
        if phi { "HEARTBEAT" } else { "INCARNATION" }
    );
    for m in list {
        let last = if phi {
            format!(
                "{} φ{:.2}",
                m["heartbeat"].as_u64().unwrap_or(0),
                m["phi"].as_f64().unwrap_or(0.0)
            )
        } else {
            m["incarnation"].as_u64().unwrap_or(0).to_string()
        };
        println!(
            "{:<20} {:<22} {:<8} {:>15} {:>11}",
            m["name"].as_str().unwrap_or("?"),
            m["addr"].as_str().unwrap_or("-"),
            m["status"].as_str().unwrap_or("?"),
            m["generation"].as_u64().unwrap_or(0),
            last,
        );
    }
    Ok(())
}

/// The members of a memberlist agent, as `serf members` prints them plus the incarnation.
fn print_serf_members(list: &[&Value]) {
    println!(
        "{:<20} {:<22} {:<8} {:>11}  TAGS",
        "NAME", "ADDR", "STATUS", "INCARNATION"
    );
    for m in list {
        let tags: Vec<String> = m["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        println!(
            "{:<20} {:<22} {:<8} {:>11}  {}",
            m["name"].as_str().unwrap_or("?"),
            m["addr"].as_str().unwrap_or("-"),
            m["status"].as_str().unwrap_or("?"),
            m["incarnation"].as_u64().unwrap_or(0),
            tags.join(","),
        );
    }
}

/// `gossiper set KEY VALUE`.
pub fn set(args: &SetArgs) -> Result<(), CliError> {
    let mut path = format!("/v1/kv/{}", encode_segment(&args.key));
    if let Some(ttl) = &args.ttl {
        path.push_str(&format!("?ttl={}", encode_segment(ttl)));
    }
    let v = call(&args.api, "PUT", &path, args.value.as_bytes(), TIMEOUT)?;
    match args.api.format {
        Format::Json => println!("{v}"),
        Format::Text => println!("{} = {} (version {})", args.key, args.value, v["version"]),
    }
    Ok(())
}

/// `gossiper get NODE KEY`: the value's bytes as they are (text format), or the API's JSON.
pub fn get(args: &GetArgs) -> Result<(), CliError> {
    let mut path = format!(
        "/v1/kv/{}/{}",
        encode_segment(&args.node),
        encode_segment(&args.key)
    );
    let mut query = Vec::new();
    let mut timeout = TIMEOUT;
    if let Some(index) = args.index {
        let wait = gossiper_agent::parse_duration(&args.wait)
            .ok_or_else(|| CliError::usage(format!("bad --wait {:?}", args.wait)))?;
        timeout = wait + TIMEOUT;
        query.push(format!("index={index}&wait={}", encode_segment(&args.wait)));
    }
    if args.api.format == Format::Text {
        query.push("raw".into());
    }
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    let reply = send_request(&args.api, "GET", &path, b"", timeout)?;
    let mut out = std::io::stdout();
    // A closed stdout (a pipe into `head`) ends the output, not the command.
    let _ = out.write_all(&reply.body);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    Ok(())
}

/// `gossiper delete KEY`.
pub fn delete(args: &DeleteArgs) -> Result<(), CliError> {
    let path = format!("/v1/kv/{}", encode_segment(&args.key));
    let v = call(&args.api, "DELETE", &path, b"", TIMEOUT)?;
    match args.api.format {
        Format::Json => println!("{v}"),
        Format::Text => println!("deleted {} (version {})", args.key, v["version"]),
    }
    Ok(())
}
