//! Serf queries at the node (serf 0.9.4 `serf/serf.go` `Query`, `handleQuery`,
//! `handleQueryResponse`; `serf/query.go` `shouldProcessQuery`, `relayResponse`;
//! `serf/delegate.go` `messageRelayType`): a query is deduplicated and passed on, then acted on
//! only if we pass its filters; acks and answers go straight to the asker and, with a relay
//! factor, through that many other members too; relayed answers from others are passed on;
//! and the node asks queries of its own and collects what comes back until the deadline.

use std::net::SocketAddr;
use std::time::Duration;

use gossiper_types::Time;
use rand::RngExt;
use rand::seq::SliceRandom;

use super::{Event, Node, ip_of};
use crate::filter;
use crate::key_query::{KeyCommand, check_key};
use crate::messages::{MessageType, NodeState};
use crate::outgoing::{
    AskedQuery, MAX_OPEN_QUERIES, MAX_QUERY_TIMEOUT, QUERY_SIZE_LIMIT, QUERY_TIMEOUT_MULT,
    QueryParams, QueryReply, QueryResult,
};
use crate::serf::SerfStatus;
use crate::serf_wire::{
    QUERY_FLAG_ACK, QUERY_FLAG_NO_BROADCAST, QUERY_RESPONSE_SIZE_LIMIT, Query, QueryResponse,
    Relay, SerfType, encode_query_ack, encode_query_response, encode_relay,
};

/// The most members an answer is relayed through, whatever the query asks (Serf's own CLI
/// allows 255): past it, the relay factor is cut and counted.
pub const MAX_RELAY_FACTOR: u8 = 16;

/// Where the acks and answers to one query go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyTo {
    pub(crate) ltime: u64,
    pub(crate) id: u32,
    pub(crate) to: SocketAddr,
    addr: Vec<u8>,
    port: u16,
    source_node: String,
    relay_factor: u8,
    /// When the asker stops listening.
    pub(crate) deadline: Time,
}

impl ReplyTo {
    fn of(q: &Query, now: Time) -> Option<ReplyTo> {
        let ip = ip_of(&q.addr)?;
        let timeout = Duration::from_nanos(u64::try_from(q.timeout).unwrap_or(0));
        Some(ReplyTo {
            ltime: q.ltime,
            id: q.id,
            to: SocketAddr::new(ip, q.port),
            addr: q.addr.clone(),
            port: q.port,
            source_node: q.source_node.clone(),
            relay_factor: q.relay_factor,
            deadline: now + timeout.min(MAX_QUERY_TIMEOUT),
        })
    }
}

/// One of our own queries, collecting.
#[derive(Debug)]
pub(crate) struct Ask {
    result: QueryResult,
    pub(crate) deadline: Time,
    /// Acks and answers kept at most (the members when asked, as Serf's channel sizes).
    cap: usize,
    /// Each ack and answer is handed back as it comes, too.
    stream: bool,
}

impl Node {
    /// Asks a query of the cluster (Serf's `Query`): it is answered here too if we pass its
    /// filters, and gossiped; acks and answers are collected until its timeout, then handed
    /// back as [`Event::QueryFinished`] (and each as it comes as [`Event::QueryReply`] when
    /// [`QueryParams::stream`] is set). Returns its `(ltime, id)`.
    pub fn query(&mut self, now: Time, params: &QueryParams) -> Result<(u64, u32), String> {
        let filters = params.filters()?;
        self.ask(now, params, filters).map(|a| (a.ltime, a.id))
    }

    /// Asks every member to change its keyring (or list it), as Serf's `KeyManager` does: one
    /// of Serf's internal key queries, no acks, no filters, answered here too (so our keyring
    /// changes with everyone's, and is saved as a key query from elsewhere would be). Every
    /// answer comes as an [`Event::QueryReply`] for a
    /// [`KeyReport`](crate::key_query::KeyReport); the query ends at `timeout` (Serf's
    /// default when `None`), or earlier with [`end_query`](Self::end_query) once every member
    /// asked has answered. Refused: a key that is not 16, 24 or 32 bytes, and removing our
    /// own primary key (every node refuses to remove its primary; ask for none of it).
    pub fn key_query(
        &mut self,
        now: Time,
        command: &KeyCommand,
        relay_factor: u8,
        timeout: Option<Duration>,
    ) -> Result<AskedQuery, String> {
        if *command != KeyCommand::List {
            check_key(command.key())?;
        }
        if let (KeyCommand::Remove(key), Some(ring)) = (command, &self.config.keyring)
            && ring.primary() == key.as_slice()
        {
            return Err(
                "Removing the primary key is not allowed: make another key the primary first"
                    .into(),
            );
        }
        let params = QueryParams {
            name: command.query_name().into(),
            payload: command.payload(),
            ack: false,
            relay_factor,
            timeout,
            stream: true,
            ..QueryParams::default()
        };
        self.ask(now, &params, Vec::new())
    }

    /// Ends a query of ours before its timeout (its asker has what it needs, or went away):
    /// what it collected, and no [`Event::QueryFinished`] for it; `None` if it is not open.
    pub fn end_query(&mut self, ltime: u64, id: u32) -> Option<QueryResult> {
        self.asks.remove(&(ltime, id)).map(|a| a.result)
    }

    /// Members memberlist counts (`NumMembers`: not dead or left), ourselves included: whom a
    /// query is asked of.
    pub fn num_members(&self) -> usize {
        self.live_count()
    }

    /// Sends query `params` with wire `filters` (already checked).
    fn ask(
        &mut self,
        now: Time,
        params: &QueryParams,
        filters: Vec<Vec<u8>>,
    ) -> Result<AskedQuery, String> {
        if self.leave != super::Leave::No {
            return Err("leaving the cluster".into());
        }
        if self.asks.len() >= MAX_OPEN_QUERIES {
            return Err(format!(
                "{MAX_OPEN_QUERIES} queries are open: wait for one to end"
            ));
        }
        let members = self.live_count();
        let timeout = params
            .timeout
            .unwrap_or_else(|| self.default_query_timeout())
            .min(MAX_QUERY_TIMEOUT);
        let q = Query {
            ltime: self.serf.query_clock.time(),
            // Go's `rand.Int31`: 31 bits.
            id: self.rng.random::<u32>() >> 1,
            addr: self.addr.clone(),
            port: self.config.addr.port(),
            flags: if params.ack { QUERY_FLAG_ACK } else { 0 },
            name: params.name.clone(),
            payload: params.payload.clone(),
            filters: filters
                .into_iter()
                .map(serde_bytes::ByteBuf::from)
                .collect(),
            source_node: self.config.name.clone(),
            relay_factor: params.relay_factor,
            timeout: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
        };
        let raw = q.encode();
        if raw.len() > QUERY_SIZE_LIMIT {
            return Err(format!("query exceeds limit of {QUERY_SIZE_LIMIT} bytes"));
        }
        self.asks.insert(
            (q.ltime, q.id),
            Ask {
                result: QueryResult {
                    name: q.name.clone(),
                    ltime: q.ltime,
                    id: q.id,
                    ack_requested: params.ack,
                    acks: Vec::new(),
                    responses: Vec::new(),
                },
                deadline: now + timeout,
                cap: members.min(self.config.max_nodes + 1),
                stream: params.stream,
            },
        );
        log::info!(
            "asking query {:?} (clock {}, id {}) for {timeout:?}",
            q.name,
            q.ltime,
            q.id
        );
        // As Serf: handled here first (which witnesses the clock and queues the broadcast).
        self.on_query(now, &raw, q.clone());
        Ok(AskedQuery {
            ltime: q.ltime,
            id: q.id,
            members,
        })
    }

    /// Members memberlist counts (`NumMembers`: not dead or left), ourselves included.
    fn live_count(&self) -> usize {
        1 + self
            .nodes
            .values()
            .filter(|n| matches!(n.state, NodeState::Alive | NodeState::Suspect))
            .count()
    }

    /// Serf's `DefaultQueryTimeout`: gossip interval × 16 × ⌈log10(n + 1)⌉.
    pub fn default_query_timeout(&self) -> Duration {
        let n = self.live_count() as f64;
        let scale = (n + 1.0).log10().ceil().max(1.0) as u32;
        self.config.timing.gossip_interval * QUERY_TIMEOUT_MULT * scale
    }

    /// A query arrived (or we asked it): `bytes` is its Serf message, passed on as it is.
    pub(super) fn on_query(&mut self, now: Time, bytes: &[u8], q: Query) {
        if !self.serf.query(q.ltime, q.id) {
            return;
        }
        if q.flags & QUERY_FLAG_NO_BROADCAST == 0 {
            self.queue_serf(bytes.to_vec());
        }
        match filter::selects(&q.filters, &self.config.name, &self.config.tags) {
            Ok(true) => {}
            Ok(false) => {
                log::debug!("query {:?} is not for us (filters)", q.name);
                return;
            }
            Err(e) => {
                self.stats.bad_filters += 1;
                log::debug!(
                    "query {:?} from {} not acted on: {e}",
                    q.name,
                    q.source_node
                );
                return;
            }
        }
        let Some(reply) = ReplyTo::of(&q, now) else {
            return;
        };
        let me = self.config.name.clone();
        // Acknowledged (so `serf reachability` and `serf query` count us) when asked.
        if q.flags & QUERY_FLAG_ACK != 0 {
            self.respond(now, &reply, encode_query_ack(q.ltime, q.id, &me));
        }
        if let Some(op) = super::keys::KeyOp::of(&q.name) {
            return self.on_key_query(now, op, &q.payload, reply);
        }
        let configured = self.config.query_responses.get(&q.name).map(Vec::as_slice);
        let lookup = |n: &str| {
            if n == me {
                Some(self.own_member())
            } else {
                self.member(n)
            }
        };
        let Some(payload) = crate::query::answer(
            &q.name,
            &q.payload,
            &me,
            lookup,
            configured,
            self.config.keyring.as_ref(),
        ) else {
            log::debug!("query {:?} acknowledged, not answered", q.name);
            return;
        };
        self.answer(now, &reply, &payload);
    }

    /// Sends `payload` as our answer (flags 0) if it fits Serf's response limit.
    pub(super) fn answer(&mut self, now: Time, reply: &ReplyTo, payload: &[u8]) {
        let msg = encode_query_response(reply.ltime, reply.id, &self.config.name, 0, Some(payload));
        if msg.len() > QUERY_RESPONSE_SIZE_LIMIT {
            self.stats.query_answers_too_large += 1;
            log::warn!(
                "answer to query (clock {}) is over Serf's {QUERY_RESPONSE_SIZE_LIMIT} bytes: not sent",
                reply.ltime
            );
            return;
        }
        self.stats.query_answers += 1;
        self.respond(now, reply, msg);
    }

    /// Sends a query response (`[5]...`) to the asker, and relays it as Serf's
    /// `relayResponse` does: through `relay_factor` random alive members speaking memberlist
    /// 5, if the cluster has that many others.
    fn respond(&mut self, now: Time, reply: &ReplyTo, serf_bytes: Vec<u8>) {
        if reply.to == self.config.addr {
            // Our own query: no need to go through the network.
            if let Ok(crate::serf_wire::SerfMessage::QueryResponse(r)) =
                crate::serf_wire::decode_serf(&serf_bytes)
            {
                self.on_query_response(now, r);
            }
            return;
        }
        let relay = if reply.relay_factor > 0 {
            Some(encode_relay(
                &reply.addr,
                reply.port,
                &reply.source_node,
                &serf_bytes,
            ))
        } else {
            None
        };
        let mut direct = vec![MessageType::User as u8];
        direct.extend_from_slice(&serf_bytes);
        self.raw_send(reply.to, None, direct);
        let Some(relay) = relay else { return };
        let mut k = reply.relay_factor;
        if k > MAX_RELAY_FACTOR {
            self.stats.relay_factor_capped += 1;
            k = MAX_RELAY_FACTOR;
        }
        // Serf counts every member it knows, any status, itself included.
        if self.serf.members.len() < usize::from(k) + 1 {
            return;
        }
        if relay.len() > QUERY_RESPONSE_SIZE_LIMIT {
            log::debug!("relayed response over {QUERY_RESPONSE_SIZE_LIMIT} bytes: not relayed");
            return;
        }
        let mut via: Vec<SocketAddr> = self
            .nodes
            .iter()
            .filter(|(name, n)| {
                n.pmax() >= 5
                    && self
                        .serf
                        .members
                        .get(*name)
                        .is_some_and(|m| m.status == SerfStatus::Alive)
            })
            .filter_map(|(_, n)| n.socket())
            .collect();
        via.shuffle(&mut self.rng);
        via.truncate(usize::from(k));
        for to in via {
            let mut msg = vec![MessageType::User as u8];
            msg.extend_from_slice(&relay);
            self.raw_send(to, None, msg);
            self.stats.relays_sent += 1;
        }
    }

    /// An ack or answer: kept if it is for an open query of ours, once per node.
    pub(super) fn on_query_response(&mut self, now: Time, r: QueryResponse) {
        let Some(ask) = self.asks.get_mut(&(r.ltime, r.id)) else {
            self.stats.stray_responses += 1;
            log::debug!(
                "reply for a query not open here (clock {}, id {}) from {}",
                r.ltime,
                r.id,
                r.from
            );
            return;
        };
        if now >= ask.deadline {
            return;
        }
        let res = &mut ask.result;
        let reply = if r.flags & QUERY_FLAG_ACK != 0 {
            if !(res.ack_requested && !res.acks.contains(&r.from) && res.acks.len() < ask.cap) {
                return;
            }
            res.acks.push(r.from.clone());
            self.stats.query_acks += 1;
            None
        } else if r.payload.len() <= QUERY_RESPONSE_SIZE_LIMIT
            && !res.responses.iter().any(|(f, _)| *f == r.from)
            && res.responses.len() < ask.cap
        {
            res.responses.push((r.from.clone(), r.payload.clone()));
            self.stats.query_responses += 1;
            Some(r.payload)
        } else {
            return;
        };
        if ask.stream {
            self.events.push_back(Event::QueryReply(QueryReply {
                ltime: r.ltime,
                id: r.id,
                from: r.from,
                payload: reply,
            }));
        }
    }

    /// A relayed message (`[9][relayHeader][message]`): passed on to its destination, as
    /// Serf does, if it is a query response within Serf's size limit and the destination is a
    /// member we know; anything else could turn us into a reflector, and is dropped.
    pub(super) fn on_relay(&mut self, now: Time, r: Relay) {
        let dest = ip_of(&r.header.dest_addr.ip)
            .zip(u16::try_from(r.header.dest_addr.port).ok())
            .map(|(ip, port)| SocketAddr::new(ip, port));
        let is_response = r.message.first() == Some(&(SerfType::QueryResponse as u8));
        let Some(dest) =
            dest.filter(|_| is_response && r.message.len() <= QUERY_RESPONSE_SIZE_LIMIT)
        else {
            self.stats.relays_refused += 1;
            return;
        };
        if dest == self.config.addr {
            if let Ok(crate::serf_wire::SerfMessage::QueryResponse(resp)) =
                crate::serf_wire::decode_serf(&r.message)
            {
                self.on_query_response(now, resp);
            }
            return;
        }
        let known = self
            .nodes
            .values()
            .any(|n| n.state != NodeState::Left && n.socket() == Some(dest));
        if !known {
            self.stats.relays_refused += 1;
            log::debug!("relay to {dest}, not a member's address: dropped");
            return;
        }
        let mut msg = vec![MessageType::User as u8];
        msg.extend_from_slice(&r.message);
        self.raw_send(dest, None, msg);
        self.stats.relays_forwarded += 1;
    }

    /// Closes our queries whose time is up.
    pub(super) fn expire_queries(&mut self, now: Time) {
        let due: Vec<(u64, u32)> = self
            .asks
            .iter()
            .filter(|(_, a)| a.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some(a) = self.asks.remove(&k) {
                self.events.push_back(Event::QueryFinished(a.result));
            }
        }
    }
}
