//! The agent's one task: it owns the sans-IO [`ClusterNode`], the UDP socket and the clock, and
//! is the only code that touches them. Everything else (the embedding application, the HTTP
//! API) reaches the node through [`AgentHandle`](crate::AgentHandle) commands on a bounded
//! channel, never through a lock or a second copy of the socket.
//!
//! One turn of the loop waits for the first of: a command, a datagram, the node's next timer.
//! It hands that to the node, runs whatever is due, sends every datagram the node queued, and
//! publishes what changed: membership events (log line, counter, broadcast, the membership
//! watch) and key changes (found by comparing each node record's highest version with the one
//! last seen, so only records that moved are scanned).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gossiper_cluster::state::RESERVED_PREFIX;
use gossiper_cluster::{ClusterNode, DropReason, MemberInfo};
use gossiper_types::{NodeId, Time};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::events::{Event, KeyEvent, MemberEvent, MemberEventKind};
use crate::ratelog::{self, RateLimiter};
use crate::resolver::Resolver;

/// Largest datagram read (the IPv4 UDP maximum, rounded up); the node judges the size.
const RECV_BUFFER: usize = 65_536;

/// A request from a handle: run against the node inside the loop, then the loop flushes and
/// publishes as after any other input.
pub(crate) type Command = Box<dyn FnOnce(&mut Core) + Send>;

/// Counters kept by the loop and read by handles (the node's own counters are in its stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Datagrams the OS refused to send.
    pub(crate) send_errors: AtomicU64,
    /// Receive errors (ICMP errors from earlier sends included).
    pub(crate) recv_errors: AtomicU64,
    /// Membership events, by [`MemberEventKind::index`].
    pub(crate) member_events: [AtomicU64; 5],
    /// Key changes published.
    pub(crate) key_events: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a [`Command`] works on: the node and the clock.
pub(crate) struct Core {
    pub(crate) node: ClusterNode,
    pub(crate) epoch: Instant,
    /// Set by a shutdown request or when every handle is gone: the loop leaves and ends.
    pub(crate) leave_requested: bool,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Core {
    pub(crate) fn new(node: ClusterNode, epoch: Instant) -> Core {
        Core {
            node,
            epoch,
            leave_requested: false,
        }
    }

    /// The protocol's time: microseconds since the agent started, from tokio's clock (so a
    /// test with tokio's paused time drives the node in virtual time).
    pub(crate) fn now(&self) -> Time {
        Time::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn instant(&self, t: Time) -> Instant {
        self.epoch + Duration::from_micros(t.as_micros())
    }

    /// Whether writes are still taken.
    pub(crate) fn accepting(&self) -> bool {
        !self.leave_requested && !self.node.has_left()
    }
}

/// The loop's state; [`Engine::run`] consumes it.
pub(crate) struct Engine {
    pub(crate) core: Core,
    pub(crate) socket: UdpSocket,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) members: watch::Sender<Arc<[MemberInfo]>>,
    pub(crate) stopped: watch::Sender<bool>,
    pub(crate) counters: Arc<Counters>,
    /// Looks up seeds given by name before each join attempt, when there are such seeds.
    pub(crate) resolver: Option<Resolver>,
    /// Per node: the generation and highest version last published.
    seen: BTreeMap<NodeId, (u64, u64)>,
    seen_changes: u64,
    /// Members seen alive before (and not forgotten since): their next "alive" is "again".
    seen_alive: BTreeSet<NodeId>,
    /// Membership and refused-peer log lines, by level and kind.
    logs: RateLimiter<(log::Level, &'static str)>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        core: Core,
        socket: UdpSocket,
        commands: mpsc::Receiver<Command>,
        events: broadcast::Sender<Event>,
        members: watch::Sender<Arc<[MemberInfo]>>,
        stopped: watch::Sender<bool>,
        counters: Arc<Counters>,
    ) -> Engine {
        Engine {
            core,
            socket,
            commands,
            events,
            members,
            stopped,
            counters,
            resolver: None,
            seen: BTreeMap::new(),
            seen_changes: u64::MAX,
            seen_alive: BTreeSet::new(),
            logs: RateLimiter::new(ratelog::BURST, ratelog::PER_SECOND),
        }
    }

    /// Runs until a shutdown request (or the last handle's drop), then leaves gracefully,
    /// sends the leave, and marks the agent stopped.
    pub(crate) async fn run(mut self) {
        let mut buf = vec![0; RECV_BUFFER];
        self.publish();
        loop {
            let mut deadline = self.core.instant(self.core.node.poll_timeout());
            if let Some(at) = self
                .resolver
                .as_ref()
                .and_then(|r| r.wake_at(self.join_at()))
            {
                deadline = deadline.min(at);
            }
            let resolver = &mut self.resolver;
            tokio::select! {
                // Commands first: a datagram flood must not starve the application.
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => command(&mut self.core),
                    None => self.core.leave_requested = true,
                },
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => {
                        let now = self.core.now();
                        // A bad datagram is dropped and counted by the node; a peer of
                        // another cluster or keyring is also told to the operator.
                        if let Err(reason) =
                            self.core.node.handle_datagram(now, from, &mut buf[..len])
                        {
                            self.refused(from, reason);
                        }
                    }
                    // ICMP "port unreachable" from an earlier send lands here: not fatal.
                    Err(e) => {
                        Counters::add(&self.counters.recv_errors);
                        log::debug!("receive error: {e}");
                    }
                },
                found = Resolver::finished(resolver) => {
                    let now = self.core.now();
                    Resolver::apply(&mut self.core.node, now, found);
                }
                () = tokio::time::sleep_until(deadline) => {}
            }
            let now = self.core.now();
            self.core.node.handle_timeout(now);
            let join_at = self.join_at();
            if let Some(r) = &mut self.resolver {
                r.start_if_due(Instant::now(), join_at);
            }
            if self.core.leave_requested && !self.core.node.has_left() {
                self.core.node.leave(now);
                log::info!("{} is leaving the cluster", self.core.node.name());
            }
            self.flush().await;
            self.publish();
            if self.core.node.has_left() {
                break;
            }
        }
        log::info!("{} left the cluster", self.core.node.name());
        self.stopped.send_replace(true);
    }

    /// When the node next tries to join, while it is alone.
    fn join_at(&self) -> Option<Instant> {
        self.core.node.next_join().map(|t| self.core.instant(t))
    }

    /// Sends every datagram the node queued.
    async fn flush(&mut self) {
        while let Some(t) = self.core.node.poll_transmit() {
            if let Err(e) = self.socket.send_to(&t.bytes, t.to).await {
                Counters::add(&self.counters.send_errors);
                log::debug!("cannot send to {}: {e}", t.to);
            }
            self.core.node.recycle(t.bytes);
        }
    }

    /// Publishes membership events and key changes since the last call.
    fn publish(&mut self) {
        let mut membership_changed = false;
        while let Some(e) = self.core.node.poll_event() {
            membership_changed = true;
            let (kind, id) = MemberEventKind::of(e);
            Counters::add(&self.counters.member_events[kind.index()]);
            let name = name_of(&self.core.node, id);
            use log::Level::{Info, Warn};
            match kind {
                MemberEventKind::Up if self.seen_alive.insert(id) => {
                    self.say(Info, "member alive", || format!("member {name} is alive"));
                }
                MemberEventKind::Up => {
                    self.say(Info, "member alive again", || {
                        format!("member {name} is alive again")
                    });
                }
                MemberEventKind::Suspect => {
                    self.say(Info, "member suspect", || {
                        format!("member {name} is suspect")
                    });
                }
                MemberEventKind::Down => {
                    self.say(Warn, "member dead", || format!("member {name} is dead"));
                }
                MemberEventKind::Left => {
                    self.say(Info, "member left", || format!("member {name} left"))
                }
                MemberEventKind::Removed => {
                    self.seen_alive.remove(&id);
                    self.say(Info, "member forgotten", || {
                        format!("member {name} forgotten")
                    });
                }
            }
            // No receiver is not an error: nobody listens yet.
            let _ = self.events.send(Event::Member(MemberEvent { name, kind }));
        }
        let changes = self.core.node.changes();
        if changes != self.seen_changes {
            self.seen_changes = changes;
            membership_changed |= self.publish_keys();
        }
        if membership_changed {
            let now = self.core.now();
            self.members
                .send_replace(self.core.node.members(now).into());
        }
        for ((level, kind), n) in self.logs.summaries(self.core.epoch.elapsed()) {
            log::log!(
                level,
                "{n} more lines like \"{kind}\" suppressed (at most {} a second)",
                ratelog::PER_SECOND
            );
        }
    }

    /// Writes the line `line` makes, of kind `kind` at `level`, unless that kind is over its
    /// rate (then it is counted, and summarised later).
    fn say(&mut self, level: log::Level, kind: &'static str, line: impl FnOnce() -> String) {
        if level > log::max_level() {
            return;
        }
        if let Some(suppressed) = self.logs.check((level, kind), self.core.epoch.elapsed()) {
            log::log!(level, "{}{}", line(), ratelog::suffix(suppressed));
        }
    }

    /// Tells the operator of a datagram from a peer configured for another cluster or with
    /// other keys (the rest of the drops are noise or attacks: counted, logged at debug).
    fn refused(&mut self, from: std::net::SocketAddr, reason: DropReason) {
        match reason {
            DropReason::ForeignCluster => self.say(log::Level::Warn, "wrong cluster", || {
                format!("refused a datagram from {from}: it is of another cluster (--cluster)")
            }),
            DropReason::AuthFailure => self.say(log::Level::Warn, "wrong key", || {
                format!(
                    "refused a datagram from {from}: it does not open with this agent's keys \
                     (another --key-file, none, or forged)"
                )
            }),
            _ => {}
        }
    }

    /// Publishes the keys of every record whose generation or highest version moved. Returns
    /// whether a reserved key (a name, an address, a leave) changed, which the membership
    /// list shows.
    fn publish_keys(&mut self) -> bool {
        let node = &self.core.node;
        let state = node.state();
        let mut reserved = false;
        for (id, record) in state.nodes() {
            let (generation, max) = self.seen.get(&id).copied().unwrap_or((0, 0));
            if record.generation == generation && record.max_version == max {
                continue;
            }
            // A new generation replaced the record whole: everything in it is news.
            let since = if record.generation == generation {
                max
            } else {
                0
            };
            let mut owner = None;
            for (key, entry) in record.entries() {
                if entry.version <= since {
                    continue;
                }
                if key.starts_with(RESERVED_PREFIX) {
                    reserved = true;
                    continue;
                }
                let owner = owner.get_or_insert_with(|| name_of(node, id)).clone();
                Counters::add(&self.counters.key_events);
                let _ = self.events.send(Event::Key(KeyEvent {
                    id,
                    node: owner,
                    key: key.to_owned(),
                    value: (!entry.deleted).then(|| entry.value.clone()),
                    version: entry.version,
                }));
            }
            self.seen
                .insert(id, (record.generation, record.max_version));
        }
        if self.seen.len() > state.len() {
            self.seen.retain(|&id, _| state.node(id).is_some());
        }
        reserved
    }
}

/// A member's name, or its id in text while the name is unknown.
pub(crate) fn name_of(node: &ClusterNode, id: NodeId) -> String {
    node.member_name(id)
        .or_else(|| node.state().node(id).and_then(|r| r.name()))
        .map_or_else(|| id.to_string(), str::to_owned)
}
