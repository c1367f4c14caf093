//! [`MemberlistHandle`]: the one door into a running memberlist agent, cheap to clone. Calls
//! are commands run inside the agent's task; membership and user events come through watch
//! and broadcast channels the task fills.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gossiper_memberlist::{
    AskedQuery, KeyCommand, Member, QueryParams, QueryReply, QueryResult, Stats, UserEvent,
};
use gossiper_types::Time;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::engine::{Command, Core, JoinState, QueryDone, StreamSink};
use crate::error::AgentError;

/// Replies a streamed query buffers for its reader at most; past it, replies are dropped
/// (and counted: [`MemberlistHandle::stream_drops`]) until the reader catches up. Each reply
/// is also in the result at the end.
pub const STREAM_BUFFER: usize = 256;

/// A user event with its place in the agent's log (1, 2, ...: the blocking-query index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Its index in the log.
    pub index: u64,
    /// The event.
    pub event: UserEvent,
}

/// The channels the agent's task fills.
pub(crate) struct Channels {
    pub(crate) members: watch::Receiver<Arc<[Member]>>,
    pub(crate) events: broadcast::Sender<EventRecord>,
    pub(crate) last_event: watch::Receiver<u64>,
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) joins: watch::Receiver<JoinState>,
    pub(crate) stream_drops: Arc<AtomicU64>,
}

struct Inner {
    name: String,
    addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    members: watch::Receiver<Arc<[Member]>>,
    events: broadcast::Sender<EventRecord>,
    last_event: watch::Receiver<u64>,
    stopped: watch::Receiver<bool>,
    joins: watch::Receiver<JoinState>,
    stream_drops: Arc<AtomicU64>,
}

/// A streamed query of ours ([`MemberlistHandle::query_stream`],
/// [`MemberlistHandle::key_query`]): its acks and answers as they arrive, then how it ended.
/// Dropped before the end, it ends the query.
#[derive(Debug)]
pub struct QueryStream {
    /// Its query-clock time.
    pub ltime: u64,
    /// Its id.
    pub id: u32,
    /// Members it was asked of (not dead or left, this node included).
    pub members: usize,
    replies: mpsc::Receiver<QueryReply>,
    done: Option<oneshot::Receiver<QueryDone>>,
    commands: mpsc::Sender<Command>,
}

impl QueryStream {
    /// The next ack or answer; `None` once the query is over (then [`finish`](Self::finish)).
    pub async fn next(&mut self) -> Option<QueryReply> {
        self.replies.recv().await
    }

    /// How the query ended: what it collected and the replies this stream lost. Waits for
    /// its deadline if it is still open.
    pub async fn finish(mut self) -> Result<QueryDone, AgentError> {
        let done = self.done.take().ok_or(AgentError::Stopped)?;
        done.await.map_err(|_| AgentError::Stopped)
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        if self.done.is_none() {
            return;
        }
        // Still open: its reader has what it wanted, or went away. A full command queue
        // leaves it to its deadline.
        let key = (self.ltime, self.id);
        let _ = self.commands.try_send(Box::new(move |core: &mut Core| {
            if core.streams.remove(&key).is_some() {
                core.node.end_query(key.0, key.1);
            }
        }));
    }
}

/// A running memberlist agent; it leaves on [`shutdown`](Self::shutdown) or when the last
/// handle is dropped.
#[derive(Clone)]
pub struct MemberlistHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemberlistHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberlistHandle")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl MemberlistHandle {
    pub(crate) fn new(
        name: String,
        addr: SocketAddr,
        commands: mpsc::Sender<Command>,
        c: Channels,
    ) -> MemberlistHandle {
        MemberlistHandle {
            inner: Arc::new(Inner {
                name,
                addr,
                commands,
                members: c.members,
                events: c.events,
                last_event: c.last_event,
                stopped: c.stopped,
                joins: c.joins,
                stream_drops: c.stream_drops,
            }),
        }
    }

    /// How the joins given at start went; `changed()` waits for the next result.
    pub fn joins(&self) -> watch::Receiver<JoinState> {
        self.inner.joins.clone()
    }

    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core) -> R + Send + 'static,
    ) -> Result<R, AgentError> {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |core| {
            let _ = tx.send(f(core));
        });
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| AgentError::Stopped)?;
        rx.await.map_err(|_| AgentError::Stopped)
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address peers reach it at (UDP and TCP).
    pub fn gossip_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Every member of the Serf cluster as this node sees it now, itself first.
    pub async fn members(&self) -> Result<Vec<Member>, AgentError> {
        self.call(|core| core.node.members()).await
    }

    /// The member list, updated on every change.
    pub fn membership(&self) -> watch::Receiver<Arc<[Member]>> {
        self.inner.members.clone()
    }

    /// The node's counters.
    pub async fn stats(&self) -> Result<Stats, AgentError> {
        self.call(|core| core.node.stats().clone()).await
    }

    /// Sends a Serf user event into the cluster; returns its event-clock time.
    pub async fn user_event(
        &self,
        name: &str,
        payload: Vec<u8>,
        coalesce: bool,
    ) -> Result<u64, AgentError> {
        let name = name.to_owned();
        self.call(move |core| {
            if core.leave_requested {
                return Err(AgentError::Stopped);
            }
            core.node
                .user_event(&name, &payload, coalesce)
                .map_err(AgentError::Config)
        })
        .await?
    }

    /// Lifeguard's local health score now (0 healthy; see
    /// [`Node::health_score`](gossiper_memberlist::Node::health_score)).
    pub async fn health_score(&self) -> Result<u32, AgentError> {
        self.call(|core| core.node.health_score()).await
    }

    /// The counters, the health score and the members, read at one moment (`/metrics`).
    pub async fn snapshot(&self) -> Result<(Stats, u32, Vec<Member>), AgentError> {
        self.call(|core| {
            (
                core.node.stats().clone(),
                core.node.health_score(),
                core.node.members(),
            )
        })
        .await
    }

    /// Asks a Serf query of the cluster (as `serf query` does) and waits for its timeout:
    /// the acks and answers that came back. A bad filter or name is a
    /// [`Config`](AgentError::Config) error, sent nothing.
    pub async fn query(&self, params: QueryParams) -> Result<QueryResult, AgentError> {
        let rx = self
            .call(move |core| {
                if core.leave_requested {
                    return Err(AgentError::Stopped);
                }
                let now = core.now();
                let id = core.node.query(now, &params).map_err(AgentError::Config)?;
                let (tx, rx) = oneshot::channel();
                core.queries.insert(id, tx);
                Ok(rx)
            })
            .await??;
        rx.await.map_err(|_| AgentError::Stopped)
    }

    /// Asks a Serf query of the cluster, as [`query`](Self::query) does, and streams each ack
    /// and answer as it arrives (`params.stream` is set here); the stream ends at the
    /// query's timeout.
    pub async fn query_stream(&self, mut params: QueryParams) -> Result<QueryStream, AgentError> {
        params.stream = true;
        self.open_stream(move |node, now| {
            node.query(now, &params).map(|(ltime, id)| AskedQuery {
                ltime,
                id,
                members: node.num_members(),
            })
        })
        .await
    }

    /// Asks every member (this agent included) to change its keyring, or to list it, as
    /// `serf keys` does (see [`Node::key_query`](gossiper_memberlist::Node::key_query)):
    /// every answer comes through the stream, for a
    /// [`KeyReport`](gossiper_memberlist::KeyReport). A bad key, or removing this agent's
    /// primary key, is a [`Config`](AgentError::Config) error, sent nothing.
    pub async fn key_query(
        &self,
        command: KeyCommand,
        relay_factor: u8,
        timeout: Option<Duration>,
    ) -> Result<QueryStream, AgentError> {
        self.open_stream(move |node, now| node.key_query(now, &command, relay_factor, timeout))
            .await
    }

    async fn open_stream(
        &self,
        ask: impl FnOnce(&mut gossiper_memberlist::Node, Time) -> Result<AskedQuery, String>
        + Send
        + 'static,
    ) -> Result<QueryStream, AgentError> {
        self.open_stream_buffered(STREAM_BUFFER, ask).await
    }

    /// [`query_stream`](Self::query_stream) with a buffer of `buffer` replies (tests).
    #[cfg(test)]
    pub(crate) async fn query_stream_buffered(
        &self,
        buffer: usize,
        mut params: QueryParams,
    ) -> Result<QueryStream, AgentError> {
        params.stream = true;
        self.open_stream_buffered(buffer, move |node, now| {
            node.query(now, &params).map(|(ltime, id)| AskedQuery {
                ltime,
                id,
                members: node.num_members(),
            })
        })
        .await
    }

    async fn open_stream_buffered(
        &self,
        buffer: usize,
        ask: impl FnOnce(&mut gossiper_memberlist::Node, Time) -> Result<AskedQuery, String>
        + Send
        + 'static,
    ) -> Result<QueryStream, AgentError> {
        let (asked, replies, done) = self
            .call(move |core| {
                if core.leave_requested {
                    return Err(AgentError::Stopped);
                }
                let now = core.now();
                let asked = ask(&mut core.node, now).map_err(AgentError::Config)?;
                let (tx, replies) = mpsc::channel(buffer.max(1));
                let (done_tx, done) = oneshot::channel();
                core.streams.insert(
                    (asked.ltime, asked.id),
                    StreamSink {
                        replies: tx,
                        done: done_tx,
                        dropped: 0,
                    },
                );
                Ok((asked, replies, done))
            })
            .await??;
        Ok(QueryStream {
            ltime: asked.ltime,
            id: asked.id,
            members: asked.members,
            replies,
            done: Some(done),
            commands: self.inner.commands.clone(),
        })
    }

    /// Streamed query replies dropped so far because their reader was behind (`/metrics`).
    pub fn stream_drops(&self) -> u64 {
        self.inner.stream_drops.load(Ordering::Relaxed)
    }

    /// The user events logged after `index` (the log keeps the last 1,024).
    pub async fn events_after(&self, index: u64) -> Result<Vec<EventRecord>, AgentError> {
        self.call(move |core| {
            core.log
                .iter()
                .filter(|r| r.index > index)
                .cloned()
                .collect()
        })
        .await
    }

    /// The index of the newest user event (0: none yet); `changed()` waits for the next.
    pub fn last_event(&self) -> watch::Receiver<u64> {
        self.inner.last_event.clone()
    }

    /// User events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.inner.events.subscribe()
    }

    /// Whether the agent has stopped.
    pub fn is_stopped(&self) -> bool {
        *self.inner.stopped.borrow()
    }

    /// Resolves once the agent has stopped.
    pub async fn stopped(&self) {
        let mut s = self.inner.stopped.clone();
        let _ = s.wait_for(|s| *s).await;
    }

    /// Leaves gracefully (Serf's leave intent, then memberlist's leave) and stops.
    pub async fn shutdown(&self) {
        let _ = self.call(|core| core.leave_requested = true).await;
        self.stopped().await;
    }
}
