//! `ClusterNode` under [`Detector::Swim`](crate::Detector::Swim): membership and liveness come
//! from the [`Swim`] state machine, and key-value anti-entropy opens with an 8-byte
//! fingerprint, so an idle node's traffic does not grow with the cluster.
//!
//! Per probe period a node sends one ping and answers the pings it gets (SWIM); every
//! `SYNC_ROUNDS` periods it sends two fingerprints to one random live member (16 bytes): its
//! [`ClusterState::fingerprint`] and [`Swim::membership_fingerprint`]. The receiver opens an
//! ordinary engine exchange (Syn → SynAck → Ack) only if its own state's differs, and a
//! membership table exchange only if its live set's differs. Fresh writes are still pushed at
//! once and forwarded rumor-style.

use std::net::SocketAddr;
use std::time::Duration;

use gossiper_types::{NodeId, Time};

use super::{ClusterEvent, ClusterNode, MemberInfo};
use crate::state::ClusterState;
use crate::swim::{LocalMember, Swim, SwimConfig};
use crate::wire::{DropReason, EnvelopeKind};

/// A fingerprint exchange every this many probe periods: with the default 100 ms period, each
/// node opens one every 200 ms and receives about as many, so a missed rumor is repaired
/// within about a second while idle sync costs some 100 bytes per node per second.
pub(super) const SYNC_ROUNDS: u32 = 2;

/// Follow-up fingerprints a node may send per sync period: an exchange that brought news is
/// followed at once by another comparison, so a replica far behind (a joiner) catches up in
/// a burst of round trips rather than one per period.
const FOLLOWUPS_PER_PERIOD: u32 = 16;

impl ClusterNode {
    /// The SWIM engine configured from a cluster configuration.
    pub(super) fn swim_for(
        config: &crate::ClusterConfig,
        id: NodeId,
        payload_budget: usize,
        now: Time,
        seed: u64,
    ) -> Swim {
        let swim_config = SwimConfig {
            probe_interval_ms: config.interval_ms,
            probe_timeout_ms: (config.interval_ms / 2).max(1),
            gossip_interval_ms: config.interval_ms,
            gossip_nodes: config.fanout as usize,
            dead_grace_ms: config.dead_grace_ms,
            max_payload: payload_budget,
            max_members: config.max_members,
            ..SwimConfig::default()
        };
        let local = LocalMember {
            id,
            name: config.name.clone(),
            addr: config.addr,
            generation: config.generation,
        };
        Swim::new(local, swim_config, now, seed ^ 0x5717_0000_0000_0001)
    }

    /// [`handle_timeout`](ClusterNode::handle_timeout) under SWIM.
    pub(super) fn swim_timeout(&mut self, now: Time) {
        if let Some(swim) = &mut self.swim {
            swim.handle_timeout(now);
        }
        if !self.left && now >= self.next_sync {
            self.next_sync =
                now + Duration::from_millis(self.config.interval_ms * u64::from(SYNC_ROUNDS));
            self.stats.rounds += 1;
            self.followups_left = FOLLOWUPS_PER_PERIOD;
            self.send_fingerprint();
        }
        if now >= self.next_tick {
            self.next_tick = now + Duration::from_millis(self.config.interval_ms);
            self.upkeep_state(now);
        }
        if self.joining() && now >= self.next_join {
            let seeds: Vec<SocketAddr> = self
                .config
                .seeds
                .iter()
                .copied()
                .filter(|&s| s != self.config.addr)
                .collect();
            if let Some(swim) = &mut self.swim {
                swim.join(now, &seeds);
            }
            self.next_join = now + self.join_backoff;
            let max = Duration::from_millis(self.config.join_backoff_max_ms.max(1));
            self.join_backoff = (self.join_backoff * 2).min(max);
        }
        self.drain_swim(now);
        self.note_claims(now);
    }

    /// Starts from a known member list under SWIM (see [`Swim::restore`]); under φ, where
    /// membership lives in the replicated state, it does nothing and returns false.
    pub fn restore_members<'a>(
        &mut self,
        now: Time,
        members: impl IntoIterator<Item = crate::KnownMember<'a>>,
    ) -> bool {
        let Some(swim) = &mut self.swim else {
            return false;
        };
        swim.restore(now, members);
        self.drain_swim(now);
        true
    }

    /// Sends this node's fingerprints to one random live member.
    fn send_fingerprint(&mut self) {
        let Some(to) = self.pick_one_live() else {
            return;
        };
        let Some(addr) = self.addr_of(to) else {
            return;
        };
        self.send_fingerprints_to(addr);
    }

    /// After an exchange with `to` that brought news: compare fingerprints again at once.
    pub(super) fn sync_followup(&mut self, to: SocketAddr) {
        if self.followups_left > 0 && !self.left {
            self.followups_left -= 1;
            self.send_fingerprints_to(to);
        }
    }

    fn send_fingerprints_to(&mut self, addr: SocketAddr) {
        let mut payload = [0; 16];
        payload[..8].copy_from_slice(&self.state().fingerprint().to_le_bytes());
        let members = self.swim.as_deref().map_or(0, Swim::membership_fingerprint);
        payload[8..].copy_from_slice(&members.to_le_bytes());
        self.send_raw(addr, EnvelopeKind::Sync, &payload);
    }

    /// A peer's fingerprints: open a key-value exchange if its state's differs from ours, and
    /// a membership table exchange if its live membership's does.
    pub(super) fn handle_sync(
        &mut self,
        now: Time,
        from: SocketAddr,
        sender: NodeId,
        payload: &[u8],
    ) -> Result<(), DropReason> {
        let bytes: [u8; 16] = payload.try_into().map_err(|_| DropReason::Garbage)?;
        let (kv, members) = bytes.split_at(8);
        let kv = u64::from_le_bytes(kv.try_into().map_err(|_| DropReason::Garbage)?);
        let members = u64::from_le_bytes(members.try_into().map_err(|_| DropReason::Garbage)?);
        self.stats.syncs_received += 1;
        if let Some(swim) = &mut self.swim
            && members != swim.membership_fingerprint()
        {
            swim.sync_table(now, from);
            self.drain_swim(now);
        }
        if kv != self.state().fingerprint() {
            self.stats.syncs_mismatched += 1;
            self.engine.exchange_with(sender, &mut self.outbox);
            self.flush();
        }
        Ok(())
    }

    /// A SWIM message.
    pub(super) fn handle_swim(
        &mut self,
        now: Time,
        from: SocketAddr,
        sender: NodeId,
        generation: u64,
        payload: &[u8],
    ) -> Result<(), DropReason> {
        if let Some(swim) = &mut self.swim {
            swim.handle_message(now, from, sender, generation, payload)
                .map_err(DropReason::from_decode)?;
        }
        self.drain_swim(now);
        self.note_claims(now);
        Ok(())
    }

    /// Seals what SWIM wants sent, takes its events, and follows membership in the engine's
    /// peer list and the replicated state.
    pub(super) fn drain_swim(&mut self, now: Time) {
        let Some(mut swim) = self.swim.take() else {
            return;
        };
        let mut buf = std::mem::take(&mut self.swim_buf);
        while let Some(to) = swim.poll_transmit(&mut buf) {
            self.send_raw(to, EnvelopeKind::Swim, &buf);
        }
        self.swim_buf = buf;
        while let Some(event) = swim.poll_event() {
            match event {
                ClusterEvent::MemberRemoved(id) => {
                    self.engine
                        .write(now, &mut self.outbox, |s| s.forget(id, now));
                }
                ClusterEvent::MemberUp(id) => {
                    // A restart: what the old generation wrote is superseded.
                    let generation = swim.member_generation(id).unwrap_or(0);
                    if self
                        .state()
                        .node(id)
                        .is_some_and(|r| r.generation < generation)
                    {
                        self.engine
                            .write(now, &mut self.outbox, |s| s.forget(id, now));
                    }
                }
                _ => {}
            }
            self.events.push_back(event);
        }
        if swim.live_changes() != self.live_changes {
            // Under SWIM the live list is SWIM's own (`live_ids`); the engine runs no rounds,
            // so it needs no copy. Only the join back-off follows it.
            if self.live_changes == 0 || self.live_was_empty {
                self.join_backoff = Duration::from_millis(self.config.interval_ms);
            }
            self.live_changes = swim.live_changes();
            self.live_was_empty = swim.live_len() == 0;
        }
        self.swim = Some(swim);
        self.outbox.clear();
    }

    /// Members as SWIM sees them (this node excluded).
    pub(super) fn swim_members(&self, swim: &Swim) -> Vec<MemberInfo> {
        let mut others: Vec<MemberInfo> = swim
            .members()
            .map(|m| MemberInfo {
                id: m.id,
                name: m.name.to_string(),
                addr: Some(m.addr),
                status: m.status,
                generation: m.generation,
                incarnation: m.incarnation,
                heartbeat: 0,
                phi: 0.0,
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        others
    }

    /// Tombstone and forgotten-node GC, TTL expiry: the key-value upkeep both detectors do.
    pub(super) fn upkeep_state(&mut self, now: Time) {
        let tomb_us = self.config.tombstone_grace_ms * 1_000;
        let memory_us = 3 * self.config.dead_grace_ms * 1_000;
        self.engine.write(now, &mut self.outbox, |s| {
            s.gc_tombstones(now, tomb_us);
            s.expire_forgotten(now, memory_us);
        });
        self.expire_ttls(now);
        self.outbox.clear();
    }

    /// Makes sure this node's own record exists before its first write (under SWIM a node
    /// that never writes holds no record anywhere, so 10,000 silent members cost nothing).
    pub(super) fn ensure_own_record(&mut self, now: Time) {
        if self.swim.is_some() && self.state().node(self.id).is_none() {
            let (id, generation) = (self.id, self.generation);
            self.engine
                .write(now, &mut self.outbox, |s: &mut ClusterState| {
                    s.start_node(id, generation)
                });
            self.outbox.clear();
        }
    }
}
