//! The one event queue and the one network model of the simulators: the rumor/anti-entropy
//! simulator ([`crate::sim`]) and the cluster simulator ([`crate::cluster`]) both put their
//! timed events in an [`EventQueue`], their in-flight messages in [`Slots`], decide every
//! message's fate (loss, partition, duplication, latency, reordering) with one [`Network`], and
//! apply the crash, restart and churn schedule with [`apply_schedule`]. A change to the fault
//! model is made here, once, and both simulators see it, drawing their random numbers in the
//! same order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use gossiper_types::seed::split;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::config::{Faults, Latency};

/// The network's stream of a run's seed.
const NETWORK_STREAM: u64 = 0x6e65_7477;

/// Timed events, popped in time order and, at equal times, in the order they were pushed.
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(u64, u64, E)>>,
    seq: u64,
}

impl<E: Ord> EventQueue<E> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Schedules `ev` at `at` (µs of virtual time).
    pub(crate) fn push(&mut self, at: u64, ev: E) {
        self.heap.push(Reverse((at, self.seq, ev)));
        self.seq += 1;
    }

    /// The earliest event and its time.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|Reverse((at, _, ev))| (at, ev))
    }
}

/// Messages in flight, each in a numbered slot (an event names its slot, so the heap holds
/// small `Copy` events); freed slots are reused.
pub(crate) struct Slots<T> {
    slots: Vec<T>,
    free: Vec<u32>,
}

impl<T: Default> Slots<T> {
    pub(crate) fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores `msg`; returns its slot.
    pub(crate) fn put(&mut self, msg: T) -> u32 {
        match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = msg;
                s
            }
            None => {
                self.slots.push(msg);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Takes the message out of `slot` and frees the slot.
    pub(crate) fn take(&mut self, slot: u32) -> T {
        self.free.push(slot);
        std::mem::take(&mut self.slots[slot as usize])
    }

    /// Messages in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// The faulty network: its own random stream, and the rules every message goes through.
pub(crate) struct Network {
    /// The network's random stream; the round simulator also shuffles delivery phases, draws
    /// timer phases and churn from it.
    pub(crate) rng: Pcg64Mcg,
}

impl Network {
    /// The network of a run with `seed`.
    pub(crate) fn new(seed: u64) -> Network {
        Network {
            rng: Pcg64Mcg::seed_from_u64(split(seed, NETWORK_STREAM)),
        }
    }

    /// How many copies of a message arrive: 0 when it is lost (`faults.loss`) or a partition
    /// separates its ends (`blocked`, asked only when it was not lost), 2 when it is duplicated
    /// (`faults.duplicate`), else 1.
    pub(crate) fn copies(&mut self, faults: &Faults, blocked: impl FnOnce() -> bool) -> u32 {
        if (faults.loss > 0.0 && self.rng.random_bool(faults.loss)) || blocked() {
            return 0;
        }
        if faults.duplicate > 0.0 && self.rng.random_bool(faults.duplicate) {
            2
        } else {
            1
        }
    }

    /// The delay of one copy, µs: the latency, plus with probability `reorder` an extra delay
    /// of up to one round (`round_us`), which reorders it among the others.
    pub(crate) fn delay(&mut self, latency: &Latency, reorder: f64, round_us: u64) -> u64 {
        let mut delay = latency.sample(&mut self.rng);
        if reorder > 0.0 && self.rng.random_bool(reorder) {
            delay += self.rng.random_range(0..round_us);
        }
        delay
    }
}

/// Whether a partition in force (`active`, indices into `faults.partitions`) separates `from`
/// and `to`.
pub(crate) fn blocked(faults: &Faults, active: &[usize], from: u64, to: u64) -> bool {
    active.iter().any(|&p| {
        let p = &faults.partitions[p];
        p.group_of(from) != p.group_of(to)
    })
}

/// A population the crash, restart and churn schedule acts on.
pub(crate) trait Population {
    /// Nodes, ids `0..len`.
    fn len(&self) -> usize;
    /// Whether node `i` runs.
    fn is_live(&self, i: usize) -> bool;
    /// Stops node `i` (nothing if it is down).
    fn crash(&mut self, i: usize);
    /// Brings node `i` back with its state kept or lost; whether it restarted.
    fn restart(&mut self, i: usize, keep_state: bool) -> bool;
    /// The network, whose stream draws the churn.
    fn network(&mut self) -> &mut Network;
}

/// Applies what `faults` schedules at the start of round `r`: the crashes and restarts in
/// spec order, then churn (each live node, in id order, replaced with probability `rate` by an
/// empty one). Returns the nodes that restarted, in that order, and the partitions in force.
pub(crate) fn apply_schedule(
    p: &mut impl Population,
    faults: &Faults,
    r: u32,
) -> (Vec<usize>, Vec<usize>) {
    let mut restarted = Vec::new();
    for c in &faults.crashes {
        if c.at == r {
            for id in c.nodes.iter() {
                p.crash(id as usize);
            }
        }
        if c.restart == Some(r) {
            for id in c.nodes.iter() {
                if p.restart(id as usize, c.keep_state) {
                    restarted.push(id as usize);
                }
            }
        }
    }
    if let Some(ch) = faults.churn
        && (ch.from..ch.until).contains(&r)
    {
        for i in 0..p.len() {
            if p.is_live(i) && p.network().rng.random_bool(ch.rate) {
                p.crash(i);
                p.restart(i, false);
                restarted.push(i);
            }
        }
    }
    (restarted, faults.active_partitions(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Churn, Crash, NodeSet};

    #[test]
    fn events_come_out_in_time_order_and_ties_in_push_order() {
        let mut q = EventQueue::new();
        q.push(5, 'c');
        q.push(1, 'z');
        q.push(5, 'a');
        let order: Vec<(u64, char)> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(1, 'z'), (5, 'c'), (5, 'a')]);
    }

    #[test]
    fn slots_are_reused_once_freed() {
        let mut s: Slots<Vec<u8>> = Slots::new();
        let (a, b) = (s.put(vec![1]), s.put(vec![2]));
        assert_eq!((a, b, s.in_flight()), (0, 1, 2));
        assert_eq!(s.take(a), vec![1]);
        assert_eq!(s.put(vec![3]), a);
        assert_eq!((s.take(a), s.take(b), s.in_flight()), (vec![3], vec![2], 0));
    }

    #[test]
    fn loss_and_duplication_happen_at_their_rates_and_a_partition_blocks_everything() {
        let faults = Faults {
            loss: 0.2,
            duplicate: 0.1,
            ..Faults::default()
        };
        let mut net = Network::new(1);
        let copies: Vec<u32> = (0..20_000).map(|_| net.copies(&faults, || false)).collect();
        let share = |k: u32| copies.iter().filter(|&&c| c == k).count() as f64 / 20_000.0;
        // Binomial, n = 20,000: 5 standard deviations are under 0.015.
        assert!((share(0) - 0.2).abs() < 0.015, "lost {}", share(0));
        assert!((share(2) - 0.8 * 0.1).abs() < 0.015, "doubled {}", share(2));
        assert!((0..100).all(|_| net.copies(&Faults::default(), || true) == 0));
        // The same seed draws the same fates.
        let mut again = Network::new(1);
        let replay: Vec<u32> = (0..20_000)
            .map(|_| again.copies(&faults, || false))
            .collect();
        assert_eq!(replay, copies);
    }

    #[test]
    fn the_reorder_delay_is_at_most_one_round() {
        let mut net = Network::new(3);
        let fixed = Latency::Fixed { us: 10 };
        let delays: Vec<u64> = (0..1_000).map(|_| net.delay(&fixed, 0.5, 100)).collect();
        assert!(delays.iter().all(|&d| (10..110).contains(&d)));
        assert!(delays.contains(&10) && delays.iter().any(|&d| d > 10));
        assert!((0..100).all(|_| net.delay(&fixed, 0.0, 100) == 10));
    }

    struct Toy {
        live: Vec<bool>,
        log: Vec<String>,
        net: Network,
    }

    impl Population for Toy {
        fn len(&self) -> usize {
            self.live.len()
        }
        fn is_live(&self, i: usize) -> bool {
            self.live[i]
        }
        fn crash(&mut self, i: usize) {
            self.live[i] = false;
            self.log.push(format!("crash {i}"));
        }
        fn restart(&mut self, i: usize, keep_state: bool) -> bool {
            let was_down = !self.live[i];
            self.live[i] = true;
            self.log.push(format!("restart {i} {keep_state}"));
            was_down
        }
        fn network(&mut self) -> &mut Network {
            &mut self.net
        }
    }

    #[test]
    fn the_schedule_crashes_restarts_and_churns_in_order() {
        let faults = Faults {
            crashes: vec![Crash {
                at: 2,
                restart: Some(4),
                nodes: NodeSet(vec![(1, 2)]),
                keep_state: true,
            }],
            churn: Some(Churn {
                rate: 1.0,
                from: 4,
                until: 5,
            }),
            ..Faults::default()
        };
        let mut toy = Toy {
            live: vec![true; 3],
            log: Vec::new(),
            net: Network::new(1),
        };
        assert_eq!(apply_schedule(&mut toy, &faults, 2).0, Vec::<usize>::new());
        assert_eq!(toy.live, vec![true, false, false]);
        let (restarted, _) = apply_schedule(&mut toy, &faults, 4);
        // The two restarts, then churn (rate 1) replaces all three, in id order.
        assert_eq!(restarted, vec![1, 2, 0, 1, 2]);
        assert_eq!(toy.log[2..4], ["restart 1 true", "restart 2 true"]);
        assert_eq!(toy.log[4..6], ["crash 0", "restart 0 false"]);
    }
}
