//! The memberlist agent's one task: it owns the [`Node`], the UDP socket, the TCP listener and
//! the clock. A turn waits for the first of a command, a datagram, a connection, a finished
//! stream exchange or the node's deadline; hands it to the node; sends what the node queued;
//! and publishes membership and user events.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gossiper_memberlist::{Event, Member, Node, QueryReply, QueryResult};
use gossiper_types::Time;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::handle::EventRecord;
use super::streams::{StreamInput, exchange, serve_inbound};

/// Inbound TCP connections served at once (memberlist allows 128 push-pulls).
const MAX_INBOUND: usize = 128;
/// User events kept for `GET /v1/events`.
const EVENT_LOG: usize = 1024;

/// A request from a handle, run inside the loop.
pub(crate) type Command = Box<dyn FnOnce(&mut Core) + Send>;

/// What commands work on.
pub(crate) struct Core {
    pub(crate) node: Node,
    epoch: Instant,
    pub(crate) leave_requested: bool,
    /// Received user events, oldest first, each with its index (1, 2, ...).
    pub(crate) log: VecDeque<EventRecord>,
    next_index: u64,
    /// Who waits for each of our open queries, by `(ltime, id)` (the node bounds how many).
    pub(crate) queries: BTreeMap<(u64, u32), oneshot::Sender<QueryResult>>,
    /// Who reads each of our streamed queries (key queries among them), by `(ltime, id)`.
    pub(crate) streams: BTreeMap<(u64, u32), StreamSink>,
    /// Streamed replies dropped, ever, because their reader was behind.
    pub(crate) stream_drops: Arc<AtomicU64>,
}

/// Where a streamed query's replies go: a bounded channel (a reader that falls behind loses
/// replies, counted, rather than holding the loop), then its end.
pub(crate) struct StreamSink {
    pub(crate) replies: mpsc::Sender<QueryReply>,
    pub(crate) done: oneshot::Sender<QueryDone>,
    /// Replies this reader lost.
    pub(crate) dropped: u64,
}

/// How a streamed query ended: everything it collected, and how many replies its reader lost
/// on the way (they are in the result all the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryDone {
    /// What came back by the deadline (or by the time the reader ended it).
    pub result: QueryResult,
    /// Replies dropped because the reader was behind.
    pub dropped: u64,
}

impl Core {
    pub(crate) fn now(&self) -> Time {
        Time::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn instant(&self, t: Time) -> Instant {
        self.epoch + Duration::from_micros(t.as_micros())
    }
}

/// The channels the loop fills.
pub(crate) struct Outputs {
    pub(crate) members: watch::Sender<Arc<[Member]>>,
    pub(crate) events: broadcast::Sender<EventRecord>,
    pub(crate) last_event: watch::Sender<u64>,
    pub(crate) stopped: watch::Sender<bool>,
    pub(crate) joins: watch::Sender<JoinState>,
    /// Streamed replies dropped (shared with the handles).
    pub(crate) stream_drops: Arc<AtomicU64>,
}

/// How the joins asked for at start went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinState {
    /// The first seed a join succeeded through.
    pub joined: Option<std::net::SocketAddr>,
    /// Why the others failed, one line each.
    pub errors: Vec<String>,
}

pub(crate) struct Engine {
    core: Core,
    /// Where key queries' changes to the keyring are saved (`--keyring-file`).
    keyring_file: Option<PathBuf>,
    udp: UdpSocket,
    tcp: TcpListener,
    commands: mpsc::Receiver<Command>,
    out: Outputs,
}

impl Engine {
    pub(crate) fn new(
        node: Node,
        epoch: Instant,
        udp: UdpSocket,
        tcp: TcpListener,
        commands: mpsc::Receiver<Command>,
        out: Outputs,
        keyring_file: Option<PathBuf>,
    ) -> Engine {
        Engine {
            core: Core {
                node,
                epoch,
                leave_requested: false,
                log: VecDeque::new(),
                next_index: 1,
                queries: BTreeMap::new(),
                streams: BTreeMap::new(),
                stream_drops: out.stream_drops.clone(),
            },
            keyring_file,
            udp,
            tcp,
            commands,
            out,
        }
    }

    pub(crate) async fn run(mut self) {
        let (streams_tx, mut streams_rx) = mpsc::channel::<StreamInput>(256);
        let inbound = Arc::new(Semaphore::new(MAX_INBOUND));
        let timeout = self.core.node.config().timing.tcp_timeout;
        let mut buf = vec![0u8; 65_536];
        let mut leaving = false;
        let mut commands_open = true;
        self.flush(&streams_tx);
        loop {
            let deadline = self.core.instant(self.core.node.poll_timeout());
            tokio::select! {
                biased;
                command = self.commands.recv(), if commands_open => match command {
                    Some(c) => c(&mut self.core),
                    // Every handle is gone: leave.
                    None => {
                        commands_open = false;
                        self.core.leave_requested = true;
                    }
                },
                Some(input) = streams_rx.recv() => {
                    let now = self.core.now();
                    match input {
                        StreamInput::Inbound { from, frame, reply } => {
                            let answer = self.core.node.handle_stream(now, from, &frame);
                            let _ = reply.send(answer);
                        }
                        StreamInput::Reply { id, result } => {
                            self.core.node.handle_stream_reply(now, id, result.as_deref().map_err(String::clone));
                        }
                    }
                }
                received = self.udp.recv_from(&mut buf) => match received {
                    Ok((n, from)) => {
                        let now = self.core.now();
                        self.core.node.handle_datagram(now, from, &buf[..n]);
                    }
                    Err(e) => log::debug!("UDP receive error: {e}"),
                },
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, from)) => match inbound.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let tx = streams_tx.clone();
                            tokio::spawn(async move {
                                serve_inbound(stream, from, timeout, tx).await;
                                drop(permit);
                            });
                        }
                        Err(_) => log::warn!("{MAX_INBOUND} streams open: connection from {from} closed"),
                    },
                    Err(e) => {
                        log::warn!("TCP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = tokio::time::sleep_until(deadline) => {}
            }
            let now = self.core.now();
            if self.core.leave_requested && !leaving {
                leaving = true;
                log::info!("{} is leaving the cluster", self.core.node.name());
                self.core.node.leave(now);
            }
            self.core.node.handle_timeout(now);
            self.flush(&streams_tx);
            self.publish();
            // What publishing answered (a key query, once its keyring is saved) goes now.
            self.flush(&streams_tx);
            if self.core.node.has_left() {
                break;
            }
        }
        log::info!("{} left the cluster", self.core.node.name());
        self.out.stopped.send_replace(true);
    }

    /// Sends the node's datagrams and starts its TCP exchanges.
    fn flush(&mut self, streams: &mpsc::Sender<StreamInput>) {
        while let Some(t) = self.core.node.poll_transmit() {
            // A full socket buffer drops the datagram, as UDP may anyway.
            if let Err(e) = self.udp.try_send_to(&t.bytes, t.to) {
                log::debug!("cannot send to {}: {e}", t.to);
            }
        }
        let timeout = self.core.node.config().timing.tcp_timeout;
        while let Some(s) = self.core.node.poll_stream() {
            tokio::spawn(exchange(s.id, s.to, s.bytes, timeout, streams.clone()));
        }
    }

    fn publish(&mut self) {
        let mut members_changed = false;
        while let Some(e) = self.core.node.poll_event() {
            match e {
                Event::Member(m) => {
                    log::info!("member {} {} at {}", m.name, m.status.as_str(), m.addr);
                    members_changed = true;
                }
                Event::User(u) => {
                    let record = EventRecord {
                        index: self.core.next_index,
                        event: u,
                    };
                    self.core.next_index += 1;
                    if self.core.log.len() >= EVENT_LOG {
                        self.core.log.pop_front();
                    }
                    self.core.log.push_back(record.clone());
                    self.out.last_event.send_replace(record.index);
                    let _ = self.out.events.send(record);
                }
                Event::Joined {
                    addr,
                    result: Ok(()),
                } => {
                    log::info!("joined the cluster through {addr}");
                    members_changed = true;
                    self.out.joins.send_modify(|j| {
                        j.joined.get_or_insert(addr);
                    });
                }
                Event::QueryFinished(r) => {
                    let key = (r.ltime, r.id);
                    if let Some(sink) = self.core.streams.remove(&key) {
                        let dropped = sink.dropped;
                        let _ = sink.done.send(QueryDone { result: r, dropped });
                    } else if let Some(tx) = self.core.queries.remove(&key) {
                        let _ = tx.send(r);
                    }
                }
                Event::QueryReply(r) => {
                    let key = (r.ltime, r.id);
                    let Some(sink) = self.core.streams.get_mut(&key) else {
                        continue;
                    };
                    match sink.replies.try_send(r) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            sink.dropped += 1;
                            self.core.stream_drops.fetch_add(1, Ordering::Relaxed);
                        }
                        // The reader went away: the query ends here.
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            self.core.streams.remove(&key);
                            self.core.node.end_query(key.0, key.1);
                        }
                    }
                }
                Event::KeyringChanged { ticket, keys } => {
                    // A few hundred bytes, once per operator command, and in order with the
                    // changes: written here, on the loop, as Serf writes it in its handler.
                    let result = match &self.keyring_file {
                        Some(path) => super::keyring_file::save(path, &keys),
                        None => Ok(()),
                    };
                    match &result {
                        Ok(()) => log::info!("keyring changed by a key query: {} keys", keys.len()),
                        Err(e) => log::warn!("keyring changed by a key query, not saved: {e}"),
                    }
                    let now = self.core.now();
                    self.core.node.keyring_persisted(now, ticket, result);
                }
                Event::Joined {
                    addr,
                    result: Err(e),
                } => {
                    log::warn!("cannot join through {addr}: {e}");
                    self.out
                        .joins
                        .send_modify(|j| j.errors.push(format!("{addr}: {e}")));
                }
            }
        }
        if members_changed {
            self.out
                .members
                .send_replace(self.core.node.members().into());
        }
    }
}
