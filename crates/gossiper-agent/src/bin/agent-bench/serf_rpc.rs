//! A client of Serf's RPC protocol, the one `serf members` and `serf event` speak (Serf 0.9.4
//! `client/const.go`, `cmd/serf/command/agent/ipc.go`): msgpack over TCP, each request a header
//! `{Command, Seq}` and maybe a body, each reply a header `{Seq, Error}` and maybe a body.
//! The mixed-cluster benchmark talks to its Serf agents through it instead of running the
//! `serf` CLI, so that polling 10 agents every few milliseconds costs no process spawns and
//! a user event's arrival is seen the moment the agent streams it.
//!
//! Bytes go through the memberlist crate's msgpack code: [`Writer`] for requests, and
//! [`decode`] (its bounds pass first) for replies, which are read into a buffer capped at
//! [`MAX_REPLY`].

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gossiper_memberlist::msgpack::{DecodeError, Writer, decode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Largest reply kept in the buffer (a member list of 20 is a few KiB).
const MAX_REPLY: usize = 1 << 20;

/// Serf's reply header.
#[derive(Deserialize)]
struct ReplyHeader {
    #[serde(rename = "Seq")]
    seq: u64,
    #[serde(rename = "Error", default)]
    error: String,
}

#[derive(Deserialize)]
struct MembersReply {
    #[serde(rename = "Members")]
    members: Vec<RpcMember>,
}

#[derive(Deserialize)]
struct RpcMember {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Status")]
    status: String,
}

/// A record of a `stream` of user events.
#[derive(Deserialize)]
struct StreamRecord {
    #[serde(rename = "Event", default)]
    event: String,
    #[serde(rename = "Name", default)]
    name: String,
}

/// One RPC connection to a Serf agent, handshake done.
pub struct SerfRpc {
    stream: TcpStream,
    buf: Vec<u8>,
    seq: u64,
}

fn invalid(why: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, why.to_string())
}

impl SerfRpc {
    /// Connects to the agent's `-rpc-addr` and performs the version-1 handshake; every read
    /// waits at most `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> std::io::Result<SerfRpc> {
        let sock = addr.parse().map_err(invalid)?;
        let stream = TcpStream::connect_timeout(&sock, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut rpc = SerfRpc {
            stream,
            buf: Vec::new(),
            seq: 0,
        };
        let mut body = Writer::default();
        body.map(1).key("Version").int(1);
        let seq = rpc.send("handshake", Some(&body.buf))?;
        rpc.reply(seq)?;
        Ok(rpc)
    }

    fn send(&mut self, command: &str, body: Option<&[u8]>) -> std::io::Result<u64> {
        self.seq += 1;
        let mut w = Writer::default();
        w.map(2)
            .key("Command")
            .str(command)
            .key("Seq")
            .uint(self.seq);
        if let Some(b) = body {
            w.extend(b);
        }
        self.stream.write_all(&w.buf)?;
        Ok(self.seq)
    }

    /// The next value from the agent; `Ok(None)` when the read timed out before it was whole
    /// (what was read stays buffered).
    fn next<T: DeserializeOwned>(&mut self) -> std::io::Result<Option<T>> {
        loop {
            match decode::<T>(&self.buf) {
                Ok((value, used)) => {
                    self.buf.drain(..used);
                    return Ok(Some(value));
                }
                Err(DecodeError::Truncated) => {}
                Err(e) => return Err(invalid(format!("serf rpc: {e}"))),
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Like [`next`](Self::next), but a timeout is an error.
    fn must<T: DeserializeOwned>(&mut self) -> std::io::Result<T> {
        self.next()?
            .ok_or_else(|| std::io::Error::from(ErrorKind::TimedOut))
    }

    /// Reads the reply header for `seq` and fails on its error string.
    fn reply(&mut self, seq: u64) -> std::io::Result<()> {
        let h: ReplyHeader = self.must()?;
        if h.seq != seq {
            return Err(invalid(format!("serf rpc: reply to {} for {seq}", h.seq)));
        }
        if !h.error.is_empty() {
            return Err(invalid(format!("serf rpc: {}", h.error)));
        }
        Ok(())
    }

    /// `serf members`: `(name, status)` of every member the agent knows, itself included.
    pub fn members(&mut self) -> std::io::Result<Vec<(String, String)>> {
        let seq = self.send("members", None)?;
        self.reply(seq)?;
        let body: MembersReply = self.must()?;
        Ok(body
            .members
            .into_iter()
            .map(|m| (m.name, m.status))
            .collect())
    }

    /// `serf event NAME PAYLOAD` without coalescing.
    pub fn user_event(&mut self, name: &str, payload: &[u8]) -> std::io::Result<()> {
        let mut body = Writer::default();
        body.map(3)
            .key("Coalesce")
            .bool(false)
            .key("Name")
            .str(name)
            .key("Payload")
            .raw(payload);
        let seq = self.send("event", Some(&body.buf))?;
        self.reply(seq)
    }

    /// Asks for a stream of user events (`serf monitor`'s event side); read them with
    /// [`next_user_event`](Self::next_user_event).
    pub fn stream_user_events(&mut self) -> std::io::Result<()> {
        let mut body = Writer::default();
        body.map(1).key("Type").str("user");
        let seq = self.send("stream", Some(&body.buf))?;
        self.reply(seq)
    }

    /// The name of the next streamed user event; `Ok(None)` if none came within the timeout.
    pub fn next_user_event(&mut self) -> std::io::Result<Option<String>> {
        // A record is a header and a body; a timeout between them leaves the body buffered,
        // so the header is only taken once both are whole.
        let Some((h, used)) = self.peek_header()? else {
            return Ok(None);
        };
        let rest = self.buf.get(used..).unwrap_or_default();
        match decode::<StreamRecord>(rest) {
            Ok((record, body)) => {
                self.buf.drain(..used + body);
                if !h.error.is_empty() {
                    return Err(invalid(format!("serf rpc stream: {}", h.error)));
                }
                Ok((record.event == "user").then_some(record.name))
            }
            Err(DecodeError::Truncated) => {
                self.fill()?;
                Ok(None)
            }
            Err(e) => Err(invalid(format!("serf rpc stream: {e}"))),
        }
    }

    fn peek_header(&mut self) -> std::io::Result<Option<(ReplyHeader, usize)>> {
        match decode::<ReplyHeader>(&self.buf) {
            Ok(h) => Ok(Some(h)),
            Err(DecodeError::Truncated) => {
                self.fill()?;
                Ok(None)
            }
            Err(e) => Err(invalid(format!("serf rpc stream: {e}"))),
        }
    }

    /// One read into the buffer; false if it timed out with nothing read.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.buf.len() > MAX_REPLY {
            return Err(invalid("serf rpc: reply over 1 MiB"));
        }
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
