//! `gossiper query NAME [PAYLOAD]`: asks a Serf query through a `--protocol memberlist` agent
//! (its `POST /v1/query/NAME`), with `serf query`'s flags. In text, it prints each ack and
//! answer as it arrives (the API's `?stream=true` NDJSON lines), then the totals, as
//! `serf query` does; in JSON, the API's reply once the timeout is over.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
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
    #[arg(long, value_name = "DURATION", value_parser = crate::sim_flags::parse_duration)]
    pub timeout: Option<Duration>,
    /// Ask for no acks (`serf query -no-ack`).
    #[arg(long)]
    pub no_ack: bool,
    /// Relay each answer through this many other members too (`serf query -relay-factor`).
    #[arg(long, default_value_t = 0)]
    pub relay_factor: u8,
    /// `text` (like `serf query`: each ack and answer as it arrives, then the totals) or
    /// `json` (the API's reply, once the timeout is over).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The memberlist agent's API address.
    #[arg(long, default_value = "127.0.0.1:8946")]
    pub api: String,
    /// File holding the agent's API token, sent as `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// The request path for `args` (`stream`: the NDJSON reply).
fn path(args: &QueryArgs, stream: bool) -> Result<String, CliError> {
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
    if stream {
        q.push("stream=true".into());
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
    let headers = crate::client::with_auth(&auth);
    let timeout = wait + Duration::from_secs(10);
    if args.format == Format::Text {
        let mut printer = Printer::new(args.no_ack, std::io::stdout());
        return stream(
            &args.api,
            &path(args, true)?,
            &headers,
            args.payload.as_bytes(),
            timeout,
            |line| printer.line(line),
        );
    }
    let reply = gossiper_agent::client::send(
        &args.api,
        "POST",
        &path(args, false)?,
        &headers,
        args.payload.as_bytes(),
        timeout,
    )
    .map_err(|e| CliError::failure(e.to_string()))?;
    let v: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    if reply.status >= 400 {
        let why = v["error"].as_str().unwrap_or("request failed");
        return Err(CliError::failure(format!("{why} (HTTP {})", reply.status)));
    }
    println!("{v}");
    Ok(())
}

/// Prints the NDJSON lines of a streamed query as `serf query` prints its output.
struct Printer<W: Write> {
    no_ack: bool,
    out: W,
    /// Who was printed, to add from `done` what the agent left out of the stream.
    acks: Vec<String>,
    responses: Vec<String>,
}

impl<W: Write> Printer<W> {
    fn new(no_ack: bool, out: W) -> Printer<W> {
        Printer {
            no_ack,
            out,
            acks: Vec::new(),
            responses: Vec::new(),
        }
    }

    fn print(&mut self, text: std::fmt::Arguments<'_>) -> Result<(), CliError> {
        let out = &mut self.out;
        out.write_fmt(text)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(|e| CliError::from_output(&e))
    }

    fn response(&mut self, from: &str, r: &Value) -> Result<(), CliError> {
        let payload = r["payload"].as_str().unwrap_or("");
        let note = if r["encoding"] == "base64" {
            " (base64)"
        } else {
            ""
        };
        self.responses.push(from.to_owned());
        self.print(format_args!("Response from '{from}'{note}: {payload}"))
    }

    fn line(&mut self, line: &[u8]) -> Result<(), CliError> {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return Err(CliError::failure(
                "the API streamed a line that is not JSON",
            ));
        };
        match v["type"].as_str().unwrap_or("") {
            "query" => {
                let name = v["name"].as_str().unwrap_or("");
                self.print(format_args!("Query '{name}' dispatched"))
            }
            "ack" => {
                let from = v["from"].as_str().unwrap_or("").to_owned();
                self.print(format_args!("Ack from '{from}'"))?;
                self.acks.push(from);
                Ok(())
            }
            "response" => {
                let from = v["from"].as_str().unwrap_or("").to_owned();
                self.response(&from, &v)
            }
            "done" => {
                // What came too fast for the stream is in the summary.
                let acks: Vec<String> = v["acks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                let missed: Vec<&String> = acks.iter().filter(|a| !self.acks.contains(a)).collect();
                for a in missed {
                    self.print(format_args!("Ack from '{a}'"))?;
                }
                let responses = v["responses"].as_object().cloned().unwrap_or_default();
                for (from, r) in &responses {
                    if !self.responses.contains(from) {
                        self.response(from, r)?;
                    }
                }
                if !self.no_ack {
                    self.print(format_args!("Total Acks: {}", acks.len()))?;
                }
                self.print(format_args!("Total Responses: {}", responses.len()))
            }
            "error" => Err(CliError::failure(
                v["error"].as_str().unwrap_or("the query failed").to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

/// Longest line (or reply head) read from the API: a query's answers are at most 1 KiB each,
/// its summary a line per member.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// `POST path` with `body`, then hands each line of the reply to `on_line` as it arrives
/// (the streamed reply is chunked NDJSON). An error status becomes the API's error message.
/// `timeout` bounds connecting and each read.
fn stream(
    api: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
    mut on_line: impl FnMut(&[u8]) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let addr: SocketAddr = api
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CliError::failure(format!("bad API address {api}")))?;
    let io = |e: std::io::Error| CliError::failure(format!("API at {api}: {e}"));
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut r = BufReader::new(s).take(u64::MAX);
    let read_line = |r: &mut std::io::Take<BufReader<TcpStream>>| -> Result<Vec<u8>, CliError> {
        let mut line = Vec::new();
        r.set_limit(MAX_LINE as u64);
        r.read_until(b'\n', &mut line).map_err(io)?;
        if line.len() >= MAX_LINE {
            return Err(CliError::failure("the API sent a line too long"));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(line)
    };
    let status_line = read_line(&mut r)?;
    let status: u16 = String::from_utf8_lossy(&status_line)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| CliError::failure("bad reply from the API: no status"))?;
    let mut chunked = false;
    loop {
        let h = read_line(&mut r)?;
        if h.is_empty() {
            break;
        }
        let h = String::from_utf8_lossy(&h).to_ascii_lowercase();
        if h.starts_with("transfer-encoding:") && h.contains("chunked") {
            chunked = true;
        }
    }
    // The body as a byte stream: de-chunked as it comes when chunked.
    let mut pending = Vec::new();
    let mut error_body = Vec::new();
    let mut feed = |bytes: &[u8], on_line: &mut dyn FnMut(&[u8]) -> Result<(), CliError>| {
        if status >= 400 {
            if error_body.len() < MAX_LINE {
                error_body.extend_from_slice(bytes);
            }
            return Ok(());
        }
        pending.extend_from_slice(bytes);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let line = line.trim_ascii();
            if !line.is_empty() {
                on_line(line)?;
            }
        }
        if pending.len() > MAX_LINE {
            return Err(CliError::failure("the API sent a line too long"));
        }
        Ok(())
    };
    if chunked {
        loop {
            let size = read_line(&mut r)?;
            let size = String::from_utf8_lossy(&size);
            let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| CliError::failure("bad reply from the API: bad chunk"))?;
            if n == 0 {
                break;
            }
            if n > MAX_LINE {
                return Err(CliError::failure("the API sent a chunk too long"));
            }
            let mut chunk = vec![0; n];
            r.set_limit(n as u64 + 2);
            r.read_exact(&mut chunk).map_err(io)?;
            let mut crlf = [0; 2];
            r.read_exact(&mut crlf).map_err(io)?;
            feed(&chunk, &mut on_line)?;
        }
    } else {
        let mut buf = [0; 8192];
        loop {
            r.set_limit(buf.len() as u64);
            let n = r.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            feed(&buf[..n], &mut on_line)?;
        }
    }
    if status >= 400 {
        let v: Value = serde_json::from_slice(&error_body).unwrap_or_default();
        let why = v["error"].as_str().unwrap_or("request failed");
        return Err(CliError::failure(format!("{why} (HTTP {status})")));
    }
    if !pending.trim_ascii().is_empty() {
        on_line(pending.trim_ascii())?;
    }
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
            path(&args, false).unwrap(),
            "/v1/query/up%20time?node=g1&tag=role%3D%5Eru%2Bst%24&timeout=3000ms&ack=false&relay-factor=2"
        );
        assert!(path(&args, true).unwrap().ends_with("&stream=true"));
        let bad = QueryArgs {
            tag: vec!["=x".into()],
            ..args
        };
        assert!(path(&bad, false).is_err());
    }

    #[test]
    fn streamed_lines_print_as_serf_query_prints_and_the_summary_fills_gaps() {
        let mut p = Printer::new(false, Vec::new());
        for l in [
            r#"{"type":"query","name":"greet","ltime":3,"id":9,"members":3}"#,
            r#"{"type":"ack","from":"g1"}"#,
            r#"{"type":"response","from":"s2","payload":"hi","encoding":"utf-8"}"#,
            r#"{"type":"something-new"}"#,
            // s1's ack and g1's answer were left out of the stream: the summary has them.
            r#"{"type":"done","acks":["g1","s1"],"responses":{"s2":{"payload":"hi","encoding":"utf-8"},"g1":{"payload":"AA==","encoding":"base64"}},"dropped":2}"#,
        ] {
            p.line(l.as_bytes()).unwrap();
        }
        assert_eq!(
            String::from_utf8(p.out).unwrap(),
            "Query 'greet' dispatched\nAck from 'g1'\nResponse from 's2': hi\nAck from 's1'\n\
             Response from 'g1' (base64): AA==\nTotal Acks: 2\nTotal Responses: 2\n"
        );
        let mut p = Printer::new(true, Vec::new());
        p.line(br#"{"type":"done","acks":[],"responses":{}}"#)
            .unwrap();
        assert_eq!(String::from_utf8(p.out).unwrap(), "Total Responses: 0\n");
        let mut p = Printer::new(false, Vec::new());
        let e = p
            .line(br#"{"type":"error","error":"agent is stopping"}"#)
            .unwrap_err();
        assert_eq!(e.message, "agent is stopping");
        assert!(p.line(b"not json").is_err());
    }

    /// Serves one connection on loopback with `reply` (written in `pieces`, a pause between).
    fn serve_once(pieces: Vec<&'static str>) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0; 4096];
            let _ = c.read(&mut buf);
            for p in pieces {
                c.write_all(p.as_bytes()).unwrap();
                c.flush().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        addr
    }

    #[test]
    fn the_stream_reader_dechunks_lines_as_they_come_and_says_api_errors() {
        let api = serve_once(vec![
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n",
            "b\r\n{\"a\":1}\n{\"b\r\n",
            // A line split over chunks, and two in one.
            "d\r\n\":2}\n{\"c\":3}\n\r\n",
            "0\r\n\r\n",
        ]);
        let mut got = Vec::new();
        stream(&api, "/x", &[], b"", Duration::from_secs(5), |l| {
            got.push(String::from_utf8(l.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
        let api = serve_once(vec![
            "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 42\r\n\r\n{\"error\":\"too many blocking queries wait\"}",
        ]);
        let e = stream(&api, "/x", &[], b"", Duration::from_secs(5), |_| Ok(())).unwrap_err();
        assert_eq!(e.message, "too many blocking queries wait (HTTP 429)");
        let api = serve_once(vec![
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ]);
        assert!(stream(&api, "/x", &[], b"", Duration::from_secs(5), |_| Ok(())).is_err());
    }
}
