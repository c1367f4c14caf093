//! The member table: every other member's record in 56 bytes, an id → slot index of 4 bytes per
//! slot, the names in one arena, and the live list that doubles as the probe order.
//!
//! Why it exists: a simulated cluster of 10,000 nodes holds 10^8 member records, so each byte
//! of a record is 100 MB. A `SocketAddr` (32 bytes), an inline name (24) and a `HashMap<NodeId,
//! u32>` entry (~28) per member made the old table ~150 bytes a member; this one is ~75.
//!
//! Slots are positions in `records`; they change only when [`MemberTable::swap_remove`] moves
//! the last record into a freed slot, which fixes the index and the live list as it goes.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use gossiper_types::{NodeId, Time};
use hashbrown::HashTable;

use super::{IdHasher, SwimMember};
use crate::MemberStatus;
use std::hash::Hasher;

/// A member's position in the live list when it is not live.
pub(super) const NOT_LIVE: u32 = u32::MAX;
/// The seconds part of `Rec::since_s` (34 years of uptime).
const SINCE_MASK: u32 = u32::MAX >> 2;
/// The bit of `Rec::since_s` that is [`Rec::verified`].
const VERIFIED_BIT: u32 = 1 << 31;
/// The bit of `Rec::since_s` that is [`Rec::second_hand`].
const SECOND_HAND_BIT: u32 = 1 << 30;

/// An address in 18 bytes (IPv4 as IPv4-mapped IPv6). Scope ids and flow labels are not kept:
/// members are reached by address and port only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PackedAddr {
    ip: [u8; 16],
    port: [u8; 2],
}

impl PackedAddr {
    fn new(a: SocketAddr) -> PackedAddr {
        let ip = match a.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        PackedAddr {
            ip,
            port: a.port().to_le_bytes(),
        }
    }

    fn get(self) -> SocketAddr {
        let v6 = Ipv6Addr::from(self.ip);
        let ip = match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        };
        SocketAddr::new(ip, u16::from_le_bytes(self.port))
    }
}

/// One member's record.
#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub id: NodeId,
    pub generation: u64,
    pub incarnation: u64,
    addr: PackedAddr,
    name_at: u32,
    /// Position in the live list, or [`NOT_LIVE`].
    pub live_slot: u32,
    /// When `status` last changed, in whole seconds of [`Time`], rounded up (so that a grace
    /// period counted from it never ends early), in the low 30 bits; the top two bits are
    /// [`Rec::verified`] and [`Rec::second_hand`].
    since_s: u32,
    name_len: u8,
    pub status: MemberStatus,
}

impl Rec {
    pub fn addr(&self) -> SocketAddr {
        self.addr.get()
    }

    /// Moves the member; a new address is not verified.
    pub fn set_addr(&mut self, a: SocketAddr) {
        let a = PackedAddr::new(a);
        if a != self.addr {
            self.addr = a;
            self.set_verified(false);
        }
    }

    pub fn since(&self) -> Time {
        Time(u64::from(self.since_s & SINCE_MASK) * 1_000_000)
    }

    pub fn set_since(&mut self, t: Time) {
        let s = u32::try_from(t.0.div_ceil(1_000_000)).map_or(SINCE_MASK, |s| s.min(SINCE_MASK));
        self.since_s = (self.since_s & !SINCE_MASK) | s;
    }

    /// Whether this member is known only from others: learned second-hand (not from itself,
    /// nor from a list the caller vouched for) and never heard from directly since. Such a
    /// member declared dead is forgotten at once: nothing of it is worth keeping.
    pub fn second_hand(&self) -> bool {
        self.since_s & SECOND_HAND_BIT != 0
    }

    /// Whether the member answered a ping of ours at its current address: it receives there,
    /// so replies to that address reach the member, not a third party whose address was forged.
    pub fn verified(&self) -> bool {
        self.since_s & VERIFIED_BIT != 0
    }

    fn set_verified(&mut self, v: bool) {
        self.since_s &= !VERIFIED_BIT;
        if v {
            // Heard from directly: no longer second-hand, whatever happens to it later.
            self.since_s = (self.since_s & !SECOND_HAND_BIT) | VERIFIED_BIT;
        }
    }

    pub fn is_live(&self) -> bool {
        self.live_slot != NOT_LIVE
    }
}

/// What a new record starts with.
pub(super) struct NewMember<'a> {
    pub id: NodeId,
    pub name: &'a str,
    pub addr: SocketAddr,
    pub generation: u64,
    pub incarnation: u64,
    pub status: MemberStatus,
    pub since: Time,
    /// See [`Rec::second_hand`].
    pub second_hand: bool,
}

/// Records, index, names and live list (see the [module docs](self)).
#[derive(Debug, Clone, Default)]
pub(super) struct MemberTable {
    records: Vec<Rec>,
    index: HashTable<u32>,
    names: Vec<u8>,
    /// Arena bytes no record points at any more (renames, removals).
    names_garbage: usize,
    /// Slots of the Alive and Suspect members. Also the probe order: a pass probes it from
    /// position 0 to the end, then it is reshuffled.
    live: Vec<u32>,
    /// How many live members are not [`Rec::second_hand`] (heard from directly, or vouched
    /// for): picks among them need no scan while they are most of the list.
    heard_live: usize,
}

fn hash(id: NodeId) -> u64 {
    let mut h = IdHasher::default();
    h.write_u64(id.0);
    h.finish()
}

impl MemberTable {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The slot of `id`'s record.
    pub fn slot(&self, id: NodeId) -> Option<usize> {
        let records = &self.records;
        self.index
            .find(hash(id), |&s| records[s as usize].id == id)
            .map(|&s| s as usize)
    }

    pub fn get(&self, id: NodeId) -> Option<&Rec> {
        self.slot(id).map(|s| &self.records[s])
    }

    pub fn rec(&self, slot: usize) -> &Rec {
        &self.records[slot]
    }

    pub fn rec_mut(&mut self, slot: usize) -> &mut Rec {
        &mut self.records[slot]
    }

    /// Sets whether member `slot` answered us at its address (which also makes it no longer
    /// second-hand).
    pub fn set_verified(&mut self, slot: usize, v: bool) {
        let r = &mut self.records[slot];
        if r.is_live() && v && r.second_hand() {
            self.heard_live += 1;
        }
        r.set_verified(v);
    }

    /// How many live members are not second-hand.
    pub fn heard_live_len(&self) -> usize {
        self.heard_live
    }

    pub fn records(&self) -> &[Rec] {
        &self.records
    }

    pub fn name(&self, r: &Rec) -> &str {
        let at = r.name_at as usize;
        // Names enter only through `insert`/`set_name`, from `&str`s cut at a char boundary.
        std::str::from_utf8(&self.names[at..at + usize::from(r.name_len)]).unwrap_or("")
    }

    /// The public view of slot `slot`.
    pub fn view(&self, slot: usize) -> SwimMember {
        let r = &self.records[slot];
        SwimMember {
            id: r.id,
            name: compact_str::CompactString::new(self.name(r)),
            addr: r.addr(),
            generation: r.generation,
            incarnation: r.incarnation,
            status: r.status,
            since: r.since(),
        }
    }

    fn store_name(&mut self, name: &str) -> (u32, u8) {
        let name = super::wire::truncate(name);
        let len = u8::try_from(name.len()).unwrap_or(u8::MAX);
        let name = &name[..usize::from(len)];
        let at = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.extend_from_slice(name.as_bytes());
        (at, len)
    }

    /// Renames slot `slot` (a member that restarted under a new name, rare).
    pub fn set_name(&mut self, slot: usize, name: &str) {
        if self.name(&self.records[slot]) == super::wire::truncate(name) {
            return;
        }
        self.names_garbage += usize::from(self.records[slot].name_len);
        let (at, len) = self.store_name(name);
        let r = &mut self.records[slot];
        (r.name_at, r.name_len) = (at, len);
        self.collect_names();
    }

    /// Adds a record (not live yet; see [`live_insert`](Self::live_insert)); returns its slot.
    /// The caller checked `id` is not present.
    pub fn insert(&mut self, m: NewMember<'_>) -> usize {
        let slot = self.records.len();
        let (name_at, name_len) = self.store_name(m.name);
        let mut r = Rec {
            id: m.id,
            generation: m.generation,
            incarnation: m.incarnation,
            addr: PackedAddr::new(m.addr),
            name_at,
            live_slot: NOT_LIVE,
            since_s: if m.second_hand { SECOND_HAND_BIT } else { 0 },
            name_len,
            status: m.status,
        };
        r.set_since(m.since);
        self.records.push(r);
        let records = &self.records;
        self.index
            .insert_unique(hash(m.id), slot as u32, |&s| hash(records[s as usize].id));
        slot
    }

    /// Removes a record that is not live, moving the last one into its slot. Returns it.
    pub fn swap_remove(&mut self, slot: usize) -> Rec {
        debug_assert!(!self.records[slot].is_live());
        let id = self.records[slot].id;
        if let Ok(e) = self.index.find_entry(hash(id), |&s| s as usize == slot) {
            e.remove();
        }
        let last = self.records.len() - 1;
        if slot != last {
            let moved = self.records[last].id;
            if let Some(s) = self.index.find_mut(hash(moved), |&s| s as usize == last) {
                *s = slot as u32;
            }
            let live_slot = self.records[last].live_slot;
            if live_slot != NOT_LIVE {
                self.live[live_slot as usize] = slot as u32;
            }
        }
        let r = self.records.swap_remove(slot);
        self.names_garbage += usize::from(r.name_len);
        self.collect_names();
        r
    }

    /// Rewrites the name arena once more than half of it is garbage.
    fn collect_names(&mut self) {
        if self.names_garbage < 4_096 || self.names_garbage * 2 < self.names.len() {
            return;
        }
        let mut names = Vec::with_capacity(self.names.len() - self.names_garbage);
        for r in &mut self.records {
            let at = r.name_at as usize;
            let new_at = names.len() as u32;
            names.extend_from_slice(&self.names[at..at + usize::from(r.name_len)]);
            r.name_at = new_at;
        }
        self.names = names;
        self.names_garbage = 0;
    }

    // ---- the live list (and probe order) ----

    pub fn live_len(&self) -> usize {
        self.live.len()
    }

    /// The id at position `i` of the live list.
    pub fn live_id(&self, i: usize) -> NodeId {
        self.records[self.live[i] as usize].id
    }

    /// The slot at position `i` of the live list.
    pub fn live_slot(&self, i: usize) -> usize {
        self.live[i] as usize
    }

    /// Puts slot `slot` on the live list at position `pos` (≤ the list's length), moving
    /// whatever was there to the end. The caller checked it is not live.
    pub fn live_insert(&mut self, slot: usize, pos: usize) {
        self.heard_live += usize::from(!self.records[slot].second_hand());
        let end = self.live.len();
        self.live.push(slot as u32);
        self.records[slot].live_slot = end as u32;
        self.live_swap(pos, end);
    }

    /// Takes slot `slot` off the live list, keeping the positions before `keep` (the probed
    /// part of the pass) and after it (the unprobed part) apart: the hole is filled from its own
    /// side. Returns the new `keep`.
    pub fn live_remove(&mut self, slot: usize, mut keep: usize) -> usize {
        self.heard_live -= usize::from(!self.records[slot].second_hand());
        let pos = self.records[slot].live_slot as usize;
        if pos < keep {
            // Fill the hole with the last probed entry; the probed part shrinks by one.
            keep -= 1;
            self.live_swap(pos, keep);
            self.live_swap(keep, self.live.len() - 1);
        } else {
            self.live_swap(pos, self.live.len() - 1);
        }
        self.live.pop();
        self.records[slot].live_slot = NOT_LIVE;
        keep.min(self.live.len())
    }

    /// Swaps positions `i` and `j` of the live list.
    pub fn live_swap(&mut self, i: usize, j: usize) {
        if i == j {
            return;
        }
        self.live.swap(i, j);
        self.records[self.live[i] as usize].live_slot = i as u32;
        self.records[self.live[j] as usize].live_slot = j as u32;
    }

    /// Gives back growth slack.
    pub fn shrink(&mut self) {
        self.records.shrink_to_fit();
        self.live.shrink_to_fit();
        self.names.shrink_to_fit();
        let records = &self.records;
        self.index.shrink_to_fit(|&s| hash(records[s as usize].id));
    }

    /// Whether there is much spare capacity.
    pub fn slack(&self) -> bool {
        let (cap, len) = (self.records.capacity(), self.records.len());
        cap > len + len / 8 + 16
    }

    /// Reserves room for `more` records.
    pub fn reserve(&mut self, more: usize) {
        self.records.reserve(more);
        self.live.reserve(more);
        let records = &self.records;
        self.index.reserve(more, |&s| hash(records[s as usize].id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(t: &mut MemberTable, i: u64) -> usize {
        let s = t.insert(NewMember {
            id: NodeId(i),
            name: &format!("n{i}"),
            addr: SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7000)),
            generation: 1,
            incarnation: 0,
            status: MemberStatus::Alive,
            since: Time(1),
            second_hand: i.is_multiple_of(2),
        });
        let end = t.live_len();
        t.live_insert(s, end);
        s
    }

    fn check(t: &MemberTable) {
        for (slot, r) in t.records().iter().enumerate() {
            assert_eq!(t.slot(r.id), Some(slot));
            if r.is_live() {
                assert_eq!(t.live_slot(r.live_slot as usize), slot);
            }
        }
        assert_eq!(
            t.live_len(),
            t.records().iter().filter(|r| r.is_live()).count()
        );
        assert_eq!(
            t.heard_live_len(),
            t.records()
                .iter()
                .filter(|r| r.is_live() && !r.second_hand())
                .count()
        );
    }

    #[test]
    fn records_are_small() {
        assert!(
            std::mem::size_of::<Rec>() <= 56,
            "{}",
            std::mem::size_of::<Rec>()
        );
    }

    #[test]
    fn addresses_round_trip_both_families() {
        for a in ["10.1.2.3:7000", "[::1]:9", "[fe80::1]:65535", "0.0.0.0:0"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(PackedAddr::new(a).get(), a);
        }
    }

    #[test]
    fn since_rounds_up_to_whole_seconds() {
        let mut t = MemberTable::default();
        let s = add(&mut t, 1);
        t.rec_mut(s).set_since(Time(2_000_001));
        assert_eq!(t.rec(s).since(), Time(3_000_000));
        t.rec_mut(s).set_since(Time(2_000_000));
        assert_eq!(t.rec(s).since(), Time(2_000_000));
        let second_hand = t.rec(s).second_hand();
        t.set_verified(s, true);
        assert!(t.rec(s).verified());
        assert!(
            !t.rec(s).second_hand(),
            "heard from directly (was {second_hand})"
        );
        assert_eq!(
            t.rec(s).since(),
            Time(2_000_000),
            "the flag leaves the time alone"
        );
        t.rec_mut(s).set_since(Time(u64::MAX));
        assert!(t.rec(s).verified(), "and the time the flag");
        let a = t.rec(s).addr();
        t.rec_mut(s).set_addr(a);
        assert!(t.rec(s).verified(), "the same address stays verified");
        t.rec_mut(s).set_addr("10.9.9.9:1".parse().unwrap());
        assert!(!t.rec(s).verified(), "a new address is not");
    }

    #[test]
    fn removal_keeps_index_live_list_and_names_consistent() {
        let mut t = MemberTable::default();
        for i in 0..5_000 {
            add(&mut t, i);
        }
        let mut keep = 2_000;
        for i in (0..5_000).step_by(3) {
            let s = t.slot(NodeId(i)).unwrap();
            keep = t.live_remove(s, keep);
            t.swap_remove(s);
        }
        check(&t);
        for i in 0..5_000u64 {
            match t.get(NodeId(i)) {
                Some(r) => assert_eq!(t.name(r), format!("n{i}")),
                None => assert_eq!(i % 3, 0),
            }
        }
        assert!(t.names_garbage < t.names.len(), "the arena was collected");
    }

    #[test]
    fn live_remove_keeps_the_probed_part_apart() {
        let mut t = MemberTable::default();
        for i in 0..10 {
            add(&mut t, i);
        }
        // Positions 0..4 probed; remove one probed and one unprobed member.
        let probed: Vec<NodeId> = (0..4).map(|i| t.live_id(i)).collect();
        let keep = t.live_remove(t.slot(NodeId(1)).unwrap(), 4);
        assert_eq!(keep, 3);
        let keep = t.live_remove(t.slot(NodeId(7)).unwrap(), keep);
        assert_eq!(keep, 3);
        let now_probed: Vec<NodeId> = (0..keep).map(|i| t.live_id(i)).collect();
        for id in &now_probed {
            assert!(probed.contains(id));
        }
        check(&t);
    }
}
