//! The Serf layer's state (memberlist-wire.md §6.4-6.7, after serf 0.9.4 `serf/serf.go`): the
//! three Lamport clocks, each member's Serf status (alive, leaving, left, failed) and status
//! time, intents about members not yet known, and the user-event ring that drops replays.
//! It decides; the [`Node`](crate::Node) sends.

use std::collections::BTreeMap;

use crate::serf_wire::{
    JoinIntent, LeaveIntent, SerfPushPull, UserEventMsg, encode_serf_push_pull,
};

/// Intents about unknown members kept at most (Serf keeps them 5 minutes).
const MAX_RECENT_INTENTS: usize = 1024;

/// A Lamport clock (serf `lamport.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock(u64);

impl Clock {
    /// Serf's clocks start at 1.
    pub fn new() -> Clock {
        Clock(1)
    }

    /// Now.
    pub fn time(self) -> u64 {
        self.0
    }

    /// Moves on by one.
    pub fn increment(&mut self) {
        self.0 = self.0.saturating_add(1);
    }

    /// Past any time seen: `v >= now` makes now `v + 1`.
    pub fn witness(&mut self, v: u64) {
        if v >= self.0 {
            self.0 = v.saturating_add(1);
        }
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// A member's status as Serf shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SerfStatus {
    /// Answers probes.
    Alive,
    /// Announced a leave, still reachable.
    Leaving,
    /// Left gracefully.
    Left,
    /// Stopped answering without a leave.
    Failed,
}

impl SerfStatus {
    /// Serf's word for it (`serf members`).
    pub fn as_str(self) -> &'static str {
        match self {
            SerfStatus::Alive => "alive",
            SerfStatus::Leaving => "leaving",
            SerfStatus::Left => "left",
            SerfStatus::Failed => "failed",
        }
    }
}

/// A received (or sent) user event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEvent {
    /// Its name.
    pub name: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its event-clock time.
    pub ltime: u64,
    /// Whether it may be coalesced.
    pub coalesce: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemberStatus {
    pub(crate) status: SerfStatus,
    pub(crate) status_ltime: u64,
}

/// One slot of the event ring: its clock and the (name, payload) seen at it.
type RingSlot = (u64, Vec<(String, Vec<u8>)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Join,
    Leave,
}

/// What a leave intent asks of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeaveOutcome {
    /// Old or irrelevant.
    Ignore,
    /// New: pass it on.
    Rebroadcast,
    /// It names us while we stay: answer with a join intent.
    Refute,
}

/// Serf's state on top of memberlist.
#[derive(Debug)]
pub(crate) struct Serf {
    pub(crate) clock: Clock,
    pub(crate) event_clock: Clock,
    pub(crate) query_clock: Clock,
    pub(crate) members: BTreeMap<String, MemberStatus>,
    recent: BTreeMap<String, (Intent, u64)>,
    ring: Vec<Option<RingSlot>>,
    event_min_time: u64,
    pub(crate) leaving: bool,
    /// Query ids seen per query-clock slot.
    queries: Vec<Option<(u64, Vec<u32>)>>,
}

impl Serf {
    pub(crate) fn new(event_buffer: usize) -> Serf {
        Serf {
            clock: Clock::new(),
            event_clock: Clock::new(),
            query_clock: Clock::new(),
            members: BTreeMap::new(),
            recent: BTreeMap::new(),
            ring: vec![None; event_buffer.max(1)],
            event_min_time: 0,
            leaving: false,
            queries: vec![None; event_buffer.max(1)],
        }
    }

    fn upsert_intent(&mut self, node: &str, kind: Intent, ltime: u64) -> bool {
        match self.recent.get(node) {
            Some(&(_, t)) if t >= ltime => false,
            _ => {
                if self.recent.len() >= MAX_RECENT_INTENTS && !self.recent.contains_key(node) {
                    let oldest = self
                        .recent
                        .iter()
                        .min_by_key(|(_, (_, t))| *t)
                        .map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        self.recent.remove(&k);
                    }
                }
                self.recent.insert(node.to_owned(), (kind, ltime));
                true
            }
        }
    }

    /// memberlist says `name` is alive (`handleNodeJoin`).
    pub(crate) fn node_join(&mut self, name: &str) {
        let entry = self.members.entry(name.to_owned()).or_insert(MemberStatus {
            status: SerfStatus::Alive,
            status_ltime: 0,
        });
        entry.status = SerfStatus::Alive;
        if let Some((kind, t)) = self.recent.remove(name) {
            entry.status_ltime = entry.status_ltime.max(t);
            if kind == Intent::Leave {
                entry.status = SerfStatus::Leaving;
            }
        }
    }

    /// memberlist says `name` is gone (`handleNodeLeave`): leaving becomes left, alive failed.
    pub(crate) fn node_leave(&mut self, name: &str) -> Option<SerfStatus> {
        let m = self.members.get_mut(name)?;
        m.status = match m.status {
            SerfStatus::Leaving => SerfStatus::Left,
            SerfStatus::Alive => SerfStatus::Failed,
            _ => return None,
        };
        Some(m.status)
    }

    /// `handleNodeJoinIntent`: whether to rebroadcast.
    pub(crate) fn join_intent(&mut self, msg: &JoinIntent) -> bool {
        self.clock.witness(msg.ltime);
        let Some(m) = self.members.get_mut(&msg.node) else {
            return self.upsert_intent(&msg.node, Intent::Join, msg.ltime);
        };
        if msg.ltime <= m.status_ltime {
            return false;
        }
        m.status_ltime = msg.ltime;
        if m.status == SerfStatus::Leaving {
            m.status = SerfStatus::Alive;
        }
        true
    }

    /// `handleNodeLeaveIntent`.
    pub(crate) fn leave_intent(&mut self, msg: &LeaveIntent, me: &str) -> LeaveOutcome {
        self.clock.witness(msg.ltime);
        let leaving = self.leaving;
        let Some(m) = self.members.get_mut(&msg.node) else {
            return if self.upsert_intent(&msg.node, Intent::Leave, msg.ltime) {
                LeaveOutcome::Rebroadcast
            } else {
                LeaveOutcome::Ignore
            };
        };
        if msg.ltime <= m.status_ltime {
            return LeaveOutcome::Ignore;
        }
        if msg.node == me && !leaving {
            return LeaveOutcome::Refute;
        }
        m.status_ltime = msg.ltime;
        match m.status {
            SerfStatus::Alive => m.status = SerfStatus::Leaving,
            SerfStatus::Failed => m.status = SerfStatus::Left,
            SerfStatus::Leaving | SerfStatus::Left => {}
        }
        LeaveOutcome::Rebroadcast
    }

    /// `handleUserEvent`: the event to deliver if it is new (then it is rebroadcast too).
    pub(crate) fn user_event(&mut self, msg: &UserEventMsg) -> Option<UserEvent> {
        self.event_clock.witness(msg.ltime);
        if msg.ltime < self.event_min_time {
            return None;
        }
        let n = self.ring.len() as u64;
        let now = self.event_clock.time();
        if now > n && msg.ltime < now - n {
            return None;
        }
        let slot = &mut self.ring[(msg.ltime % n) as usize];
        match slot {
            Some((t, seen)) if *t == msg.ltime => {
                if seen
                    .iter()
                    .any(|(name, p)| *name == msg.name && *p == msg.payload)
                {
                    return None;
                }
                seen.push((msg.name.clone(), msg.payload.clone()));
            }
            _ => *slot = Some((msg.ltime, vec![(msg.name.clone(), msg.payload.clone())])),
        }
        Some(UserEvent {
            name: msg.name.clone(),
            payload: msg.payload.clone(),
            ltime: msg.ltime,
            coalesce: msg.cc,
        })
    }

    /// `handleQuery`'s dedupe: whether `(ltime, id)` is new (then it is acted on and passed on).
    pub(crate) fn query(&mut self, ltime: u64, id: u32) -> bool {
        self.query_clock.witness(ltime);
        let n = self.queries.len() as u64;
        let now = self.query_clock.time();
        if now > n && ltime < now - n {
            return false;
        }
        let slot = &mut self.queries[(ltime % n) as usize];
        match slot {
            Some((t, ids)) if *t == ltime => {
                if ids.contains(&id) || ids.len() >= 1024 {
                    return false;
                }
                ids.push(id);
            }
            _ => *slot = Some((ltime, vec![id])),
        }
        true
    }

    /// `MergeRemoteState`: witnesses the clocks, applies the intents the state implies, and
    /// replays its events. Returns the events to deliver and leave intents that refute us.
    pub(crate) fn merge(
        &mut self,
        pp: &SerfPushPull,
        join: bool,
        me: &str,
    ) -> (Vec<UserEvent>, bool) {
        if pp.ltime > 0 {
            self.clock.witness(pp.ltime - 1);
        }
        if pp.event_ltime > 0 {
            self.event_clock.witness(pp.event_ltime - 1);
        }
        if pp.query_ltime > 0 {
            self.query_clock.witness(pp.query_ltime - 1);
        }
        let mut refute = false;
        for name in &pp.left_members {
            let ltime = pp
                .status_ltimes
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_add(1);
            let msg = LeaveIntent {
                ltime,
                node: name.clone(),
                prune: false,
            };
            refute |= self.leave_intent(&msg, me) == LeaveOutcome::Refute;
        }
        for (name, &ltime) in &pp.status_ltimes {
            if !pp.left_members.contains(name) {
                self.join_intent(&JoinIntent {
                    ltime,
                    node: name.clone(),
                });
            }
        }
        // The agent ignores old events on join (unless -replay): so do we.
        if join && pp.event_ltime > self.event_min_time {
            self.event_min_time = pp.event_ltime;
        }
        let mut delivered = Vec::new();
        for slot in pp.events.iter().flatten() {
            for e in &slot.events {
                let msg = UserEventMsg {
                    ltime: slot.ltime,
                    name: e.name.clone(),
                    payload: e.payload.clone(),
                    cc: false,
                };
                delivered.extend(self.user_event(&msg));
            }
        }
        (delivered, refute)
    }

    /// Our `[2][messagePushPull]`: clocks, every status time, the left members (no events).
    pub(crate) fn local_state(&self) -> Vec<u8> {
        let status: BTreeMap<String, u64> = self
            .members
            .iter()
            .map(|(k, m)| (k.clone(), m.status_ltime))
            .collect();
        let left: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.status == SerfStatus::Left)
            .map(|(k, _)| k.clone())
            .collect();
        encode_serf_push_pull(
            self.clock.time(),
            self.event_clock.time(),
            self.query_clock.time(),
            &status,
            &left,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ltime: u64, name: &str) -> UserEventMsg {
        UserEventMsg {
            ltime,
            name: name.into(),
            payload: b"p".to_vec(),
            cc: false,
        }
    }

    #[test]
    fn clocks_witness_like_serfs() {
        let mut c = Clock::new();
        c.witness(0);
        assert_eq!(c.time(), 1);
        c.witness(1);
        assert_eq!(c.time(), 2);
        c.witness(10);
        assert_eq!(c.time(), 11);
    }

    #[test]
    fn events_are_delivered_once_and_old_ones_dropped() {
        let mut s = Serf::new(512);
        assert!(s.user_event(&event(5, "a")).is_some());
        assert!(s.user_event(&event(5, "a")).is_none(), "a replay");
        assert!(
            s.user_event(&event(5, "b")).is_some(),
            "same time, another event"
        );
        assert!(s.user_event(&event(2000, "c")).is_some());
        assert!(
            s.user_event(&event(100, "d")).is_none(),
            "older than the ring"
        );
    }

    #[test]
    fn leave_then_memberlist_gone_is_left_and_without_intent_failed() {
        let mut s = Serf::new(512);
        s.node_join("a");
        s.node_join("b");
        assert_eq!(
            s.leave_intent(
                &LeaveIntent {
                    ltime: 3,
                    node: "a".into(),
                    prune: false
                },
                "me"
            ),
            LeaveOutcome::Rebroadcast
        );
        assert_eq!(s.members["a"].status, SerfStatus::Leaving);
        assert_eq!(s.node_leave("a"), Some(SerfStatus::Left));
        assert_eq!(s.node_leave("b"), Some(SerfStatus::Failed));
        // A late leave intent for a failed member makes it left.
        s.leave_intent(
            &LeaveIntent {
                ltime: 4,
                node: "b".into(),
                prune: false,
            },
            "me",
        );
        assert_eq!(s.members["b"].status, SerfStatus::Left);
    }

    #[test]
    fn a_leave_intent_about_us_is_refuted() {
        let mut s = Serf::new(512);
        s.node_join("me");
        assert_eq!(
            s.leave_intent(
                &LeaveIntent {
                    ltime: 9,
                    node: "me".into(),
                    prune: false
                },
                "me"
            ),
            LeaveOutcome::Refute
        );
        assert_eq!(s.members["me"].status, SerfStatus::Alive);
    }

    #[test]
    fn merge_ignores_old_events_on_join() {
        let mut s = Serf::new(512);
        let pp = SerfPushPull {
            ltime: 10,
            event_ltime: 7,
            events: vec![Some(crate::serf_wire::RingSlot {
                ltime: 6,
                events: vec![crate::serf_wire::RingEvent {
                    name: "old".into(),
                    payload: vec![],
                }],
            })],
            ..SerfPushPull::default()
        };
        let (delivered, _) = s.merge(&pp, true, "me");
        assert!(delivered.is_empty());
        assert_eq!((s.clock.time(), s.event_clock.time()), (10, 7));
    }
}
