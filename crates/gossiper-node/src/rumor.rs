//! Rumor mongering (Demers et al., PODC 1987, §1.4): spread what is new, then lose interest.
//!
//! Anti-entropy compares whole replicas every round forever; rumor mongering only talks while a
//! node has a *hot rumor*, and stops after a while, so its traffic is bounded but some nodes may
//! never hear the news (the *residue*). In the paper's epidemic vocabulary a node is
//! *susceptible* (has not heard the update), *infective* (holds it as a hot rumor and spreads it)
//! or *removed* (knows it but has lost interest). This module holds the knobs and the per-node
//! bookkeeping; [`Node`](crate::Node) does the talking.
//!
//! How each of the paper's definitions is read here:
//!
//! - **Push**: every round, an infective node sends its hot rumor ([`Message::Rumor`]) to
//!   `fanout` random peers. Susceptible and removed nodes stay silent.
//! - **Pull**: every round, *every* node asks `fanout` random peers for their hot rumors
//!   ([`Message::RumorPull`], an empty request: the paper's puller does not say what it knows);
//!   a contacted node that is infective answers with its rumor, others stay silent.
//! - **Feedback**: the recipient of a rumor answers with one bit ([`Message::RumorReply`]): did
//!   it already know everything in it? The sender counts a contact as *unnecessary* only when
//!   that bit says so. "The sender loses interest only when the recipient already knew."
//! - **Blind**: no answer is sent; the sender cannot tell necessary from unnecessary contacts, so
//!   *every* contact it makes counts ("loses interest regardless of the recipient").
//! - **Counter(k)**: lose interest after `k` unnecessary contacts (with blind: after `k`
//!   contacts). The count is cumulative over the rumor's life, not consecutive (but see
//!   [`RumorReading::Demers87`]).
//! - **Coin(k)**: after each unnecessary contact (with blind: each contact), lose interest with
//!   probability `1/k`, drawn from the node's seeded RNG.
//! - **Backed by anti-entropy**: every `anti_entropy_every`-th round the node also runs one
//!   anti-entropy exchange in [`NodeConfig::mode`](crate::NodeConfig::mode), which eventually
//!   reaches the residue. News learned that way (or any other way: a local write, a push, a
//!   rumor) makes the node infective again, the paper's "redistribution" of updates that the
//!   rumor process missed (§1.5).
//!
//! Two of these definitions admit a second reading, selected by [`RumorConfig::reading`]: the
//! default ([`RumorReading::Instant`]) is the one above, under which the engine matches the
//! paper's analysis (`s = e^{-(k+1)(1-s)}`); [`RumorReading::Demers87`] is the one under which it
//! reproduces the paper's simulated Tables 1 and 2 (`docs/theory.md` compares both).
//!
//! The paper tracks one update at a time. A replica may learn several while one is still hot; here
//! they travel as one rumor (the delta against the digest the node held before the oldest hot
//! update arrived) and the counter starts again at each piece of news, so no update loses
//! interest earlier than the paper's rule allows. With a single update this is exactly the paper.

use std::fmt;

#[cfg(doc)]
use gossiper_types::Message;
use gossiper_types::Time;
use rand::{Rng, RngExt};

/// Which side sends the rumor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RumorDirection {
    /// Infective nodes push their rumor to random peers each round.
    #[default]
    Push,
    /// Every node asks random peers for their hot rumors each round.
    Pull,
}

/// Whether the sender learns if its rumor was news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Feedback {
    /// The recipient answers whether it already knew; only such contacts count as unnecessary.
    #[default]
    Feedback,
    /// No answer; every contact counts.
    Blind,
}

/// When an infective node loses interest in its rumor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossOfInterest {
    /// After `k` unnecessary contacts (`k >= 1`).
    Counter(u32),
    /// After each unnecessary contact, with probability `1/k` (`k >= 1`).
    Coin(u32),
}

impl Default for LossOfInterest {
    fn default() -> Self {
        LossOfInterest::Counter(2)
    }
}

impl LossOfInterest {
    /// The parameter `k`.
    pub fn k(self) -> u32 {
        match self {
            LossOfInterest::Counter(k) | LossOfInterest::Coin(k) => k,
        }
    }
}

/// How two of the paper's definitions are read: when a recipient "already knew" the rumor, and
/// what the counter counts. Blind variants are unaffected by the first, coins by the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RumorReading {
    /// A recipient already knows the rumor from the moment its first copy arrives, and the
    /// counter counts every unnecessary contact over the rumor's life. Under this reading push,
    /// feedback, coin follows the paper's formula `s = e^{-(k+1)(1-s)}`. The default.
    #[default]
    Instant,
    /// The reading of the paper's own simulations (Demers et al. 1987, Tables 1 and 2): a
    /// recipient that learned the update at this same instant (in the synchronous simulator: in
    /// this same cycle) still answers that it was news, so every caller that reached it while it
    /// was susceptible at the cycle's start counts a necessary contact; and the counter counts
    /// unnecessary contacts *in a row*: a necessary contact resets it to zero.
    Demers87,
}

impl RumorReading {
    /// The reading's name as the command line spells it: `instant` or `demers87`.
    pub fn name(self) -> &'static str {
        match self {
            RumorReading::Instant => "instant",
            RumorReading::Demers87 => "demers87",
        }
    }
}

/// Rumor-mongering settings. Copy-sized: part of every node's [`NodeConfig`](crate::NodeConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RumorConfig {
    /// Push or pull. Default push.
    pub direction: RumorDirection,
    /// Feedback or blind. Default feedback.
    pub feedback: Feedback,
    /// Counter or coin, with its `k` (at least 1). Default counter, k = 2. Larger `k` lowers the
    /// residue about as e^{-(k+1)} at the cost of about one more message per node per unit of `k`.
    pub loss: LossOfInterest,
    /// Run one anti-entropy exchange every this many rounds; 0 (the default) never. A few tens
    /// of rounds make the residue eventually zero at a small fraction of anti-entropy's cost.
    pub anti_entropy_every: u32,
    /// Which reading of "already knew" and of the counter. Default [`RumorReading::Instant`].
    pub reading: RumorReading,
}

impl RumorConfig {
    /// A short description such as `push feedback counter(k=2)`.
    pub fn describe(&self) -> String {
        let dir = match self.direction {
            RumorDirection::Push => "push",
            RumorDirection::Pull => "pull",
        };
        let fb = match self.feedback {
            Feedback::Feedback => "feedback",
            Feedback::Blind => "blind",
        };
        let loss = match self.loss {
            LossOfInterest::Counter(k) => format!("counter(k={k})"),
            LossOfInterest::Coin(k) => format!("coin(k={k})"),
        };
        let backing = if self.anti_entropy_every > 0 {
            format!(" + anti-entropy every {} rounds", self.anti_entropy_every)
        } else {
            String::new()
        };
        let reading = match self.reading {
            RumorReading::Instant => "",
            RumorReading::Demers87 => " (demers87 reading)",
        };
        format!("{dir} {fb} {loss}{backing}{reading}")
    }
}

impl fmt::Display for RumorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What a node gossips with: anti-entropy, or rumor mongering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// Compare replicas with a random peer every round, forever (push, pull or push-pull as
    /// [`NodeConfig::mode`](crate::NodeConfig::mode) says). The default.
    #[default]
    AntiEntropy,
    /// Spread news while it is hot, then stop.
    Rumor(RumorConfig),
}

/// One node's rumor bookkeeping: whether it is infective, since which digest, how many
/// unnecessary contacts it has made, and when its latest news arrived.
#[derive(Debug, Clone)]
pub(crate) struct RumorState<D> {
    /// The digest held before the oldest hot update arrived: the rumor is the delta against it.
    pub(crate) base: D,
    /// Infective: still spreading.
    pub(crate) hot: bool,
    /// Unnecessary contacts since the rumor (re)started.
    pub(crate) unnecessary: u32,
    /// When the latest news arrived ([`Time::NEVER`] if none yet): under
    /// [`RumorReading::Demers87`] a copy arriving at that same instant is still news.
    pub(crate) news_at: Time,
}

impl<D: Default> Default for RumorState<D> {
    fn default() -> Self {
        RumorState {
            base: D::default(),
            hot: false,
            unnecessary: 0,
            news_at: Time::NEVER,
        }
    }
}

impl<D: Clone> RumorState<D> {
    /// News arrived at `now`: become infective (keeping the older base if already so) and
    /// restart the count. `before` is the digest held just before the news.
    pub(crate) fn infect(&mut self, before: &D, now: Time) {
        self.news_at = now;
        if !self.hot {
            self.base = before.clone();
            self.hot = true;
        }
        self.unnecessary = 0;
    }

    /// Whether a rumor that brought nothing new, arriving at `now`, counts as "already known":
    /// always under [`RumorReading::Instant`]; under [`RumorReading::Demers87`] only if the
    /// news did not arrive at this same instant.
    pub(crate) fn already_known(&self, reading: RumorReading, now: Time) -> bool {
        match reading {
            RumorReading::Instant => true,
            RumorReading::Demers87 => self.news_at != now,
        }
    }

    /// Counts one necessary contact: under [`RumorReading::Demers87`] the counter of unnecessary
    /// contacts starts again (it counts them in a row).
    pub(crate) fn necessary_contact(&mut self, reading: RumorReading) {
        if reading == RumorReading::Demers87 {
            self.unnecessary = 0;
        }
    }

    /// Counts one unnecessary contact and applies the loss-of-interest rule. Returns true if
    /// the node lost interest now.
    pub(crate) fn unnecessary_contact(&mut self, loss: LossOfInterest, rng: &mut dyn Rng) -> bool {
        if !self.hot {
            return false;
        }
        self.unnecessary = self.unnecessary.saturating_add(1);
        let lose = match loss {
            LossOfInterest::Counter(k) => self.unnecessary >= k.max(1),
            LossOfInterest::Coin(k) => rng.random_range(0..k.max(1)) == 0,
        };
        if lose {
            self.hot = false;
        }
        lose
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn counter_loses_interest_after_exactly_k_unnecessary_contacts() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut r = RumorState::<u64>::default();
        r.infect(&7, Time::ZERO);
        assert!(r.hot);
        assert!(!r.unnecessary_contact(LossOfInterest::Counter(3), &mut rng));
        assert!(!r.unnecessary_contact(LossOfInterest::Counter(3), &mut rng));
        assert!(r.unnecessary_contact(LossOfInterest::Counter(3), &mut rng));
        assert!(!r.hot);
        assert!(!r.unnecessary_contact(LossOfInterest::Counter(3), &mut rng));
    }

    #[test]
    fn news_keeps_the_oldest_base_and_restarts_the_count() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut r = RumorState::<u64>::default();
        r.infect(&1, Time::ZERO);
        r.unnecessary_contact(LossOfInterest::Counter(5), &mut rng);
        r.infect(&2, Time::ZERO);
        assert_eq!((r.base, r.unnecessary), (1, 0));
    }

    #[test]
    fn coin_loses_interest_with_probability_one_over_k() {
        let mut rng = Pcg64Mcg::seed_from_u64(9);
        let trials = 40_000;
        let mut lost = 0;
        for _ in 0..trials {
            let mut r = RumorState::<u64>::default();
            r.infect(&0, Time::ZERO);
            if r.unnecessary_contact(LossOfInterest::Coin(4), &mut rng) {
                lost += 1;
            }
        }
        // Binomial(40,000, 1/4): std 87; 500 is almost 6 std.
        assert!((lost as i64 - 10_000).abs() < 500, "{lost}");
        let mut r = RumorState::<u64>::default();
        r.infect(&0, Time::ZERO);
        assert!(r.unnecessary_contact(LossOfInterest::Coin(1), &mut rng));
    }

    #[test]
    fn descriptions_name_every_knob() {
        let c = RumorConfig {
            direction: RumorDirection::Pull,
            feedback: Feedback::Blind,
            loss: LossOfInterest::Coin(3),
            anti_entropy_every: 10,
            reading: RumorReading::Demers87,
        };
        assert_eq!(
            c.to_string(),
            "pull blind coin(k=3) + anti-entropy every 10 rounds (demers87 reading)"
        );
    }
}

#[cfg(test)]
mod scenarios {
    //! Rumor mongering driven by hand: two or three engines, each test named after the behaviour.

    use std::time::Duration;

    use gossiper_network::{FixedInterval, UniformRandom};
    use gossiper_types::{Message, NodeId, Register, Time};

    use super::*;
    use crate::{Mode, Node, NodeConfig, Outbox, Peers};

    type RNode = Node<Register<u64>, UniformRandom, FixedInterval>;

    fn nodes(n: u64, rc: RumorConfig) -> Vec<RNode> {
        let config = NodeConfig {
            protocol: Protocol::Rumor(rc),
            push_on_write: false,
            ..NodeConfig::default()
        };
        (0..n)
            .map(|i| {
                let every = FixedInterval::new(Duration::from_millis(100)).unwrap();
                let mut node =
                    Node::new(NodeId(i), config, Register::new(), UniformRandom, every, i);
                node.set_peers(Peers::Complete { n });
                node
            })
            .collect()
    }

    /// Delivers `out` (sent by `from`) and every answer it provokes; returns the kinds delivered.
    fn deliver(nodes: &mut [RNode], from: NodeId, out: &Outbox) -> Vec<MessageKindName> {
        let mut pending: Vec<(NodeId, NodeId, Vec<u8>)> =
            out.iter().map(|(to, b)| (from, to, b.to_vec())).collect();
        let mut kinds = Vec::new();
        while !pending.is_empty() {
            let mut next = Vec::new();
            for (from, to, bytes) in pending {
                kinds.push(Message::decode(&bytes).unwrap().kind().name());
                let mut o = Outbox::new();
                nodes[to.index()]
                    .handle_message(Time::ZERO, from, &bytes, &mut o)
                    .unwrap();
                next.extend(o.iter().map(|(d, b)| (to, d, b.to_vec())));
            }
            pending = next;
        }
        kinds
    }
    type MessageKindName = &'static str;

    fn round(nodes: &mut [RNode], who: usize) -> Vec<MessageKindName> {
        let mut out = Outbox::new();
        nodes[who].gossip_now(Time::ZERO, &mut out);
        let from = nodes[who].id();
        deliver(nodes, from, &out)
    }

    fn write(node: &mut RNode, v: u64) {
        let id = node.id();
        node.write(Time::ZERO, &mut Outbox::new(), |s| s.set(id, v));
    }

    /// `from` opens a round at `now` and its rumor is handed to `to` (whoever it picked), and the
    /// reply back to `from`; returns the reply's "already known" bit.
    fn contact(nodes: &mut [RNode], from: usize, to: usize, now: Time) -> bool {
        let mut out = Outbox::new();
        nodes[from].gossip_now(now, &mut out);
        let (_, rumor) = out.iter().next().expect("a hot node sends its rumor");
        let mut reply = Outbox::new();
        nodes[to]
            .handle_message(now, NodeId(from as u64), rumor, &mut reply)
            .unwrap();
        let (_, bytes) = reply.iter().next().expect("feedback answers every rumor");
        let Message::RumorReply { already_known } = Message::decode(bytes).unwrap() else {
            panic!("expected a rumor reply");
        };
        nodes[from]
            .handle_message(now, NodeId(to as u64), bytes, &mut Outbox::new())
            .unwrap();
        already_known
    }

    fn reading(reading: RumorReading, loss: LossOfInterest) -> RumorConfig {
        RumorConfig {
            loss,
            reading,
            ..RumorConfig::default()
        }
    }

    #[test]
    fn demers87_reading_counts_a_second_copy_in_the_same_cycle_as_news() {
        let at = Time::from_millis;
        for (r, second_known) in [
            (RumorReading::Instant, true),
            (RumorReading::Demers87, false),
        ] {
            let mut ns = nodes(3, reading(r, LossOfInterest::Counter(1)));
            write(&mut ns[0], 5);
            assert!(!contact(&mut ns, 0, 1, at(1)), "{r:?}: news");
            // Cycle 2: node 0 and node 1 both reach node 2, which was susceptible at its start.
            assert!(!contact(&mut ns, 0, 2, at(2)), "{r:?}: news");
            assert_eq!(contact(&mut ns, 1, 2, at(2)), second_known, "{r:?}");
            assert_eq!(ns[1].is_hot(), !second_known, "{r:?}: counter 1");
            // A cycle later node 2 knew before the cycle began, under either reading.
            assert!(contact(&mut ns, 0, 2, at(3)), "{r:?}");
            assert!(!ns[0].is_hot(), "{r:?}");
        }
    }

    #[test]
    fn demers87_reading_counts_unnecessary_contacts_in_a_row() {
        let at = Time::from_millis;
        for (r, hot_after) in [
            (RumorReading::Instant, false),
            (RumorReading::Demers87, true),
        ] {
            let mut ns = nodes(3, reading(r, LossOfInterest::Counter(2)));
            write(&mut ns[0], 5);
            assert!(!contact(&mut ns, 0, 1, at(1)));
            assert!(contact(&mut ns, 0, 1, at(2)), "unnecessary #1");
            assert!(
                !contact(&mut ns, 0, 2, at(3)),
                "necessary: resets the count under demers87"
            );
            assert!(
                contact(&mut ns, 0, 1, at(4)),
                "unnecessary #2 (#1 in a row)"
            );
            assert_eq!(ns[0].is_hot(), hot_after, "{r:?}");
        }
    }

    #[test]
    fn a_write_makes_the_writer_infective_and_a_push_infects_the_callee() {
        let mut ns = nodes(2, RumorConfig::default());
        assert!(!ns[0].is_hot());
        assert!(
            round(&mut ns, 0).is_empty(),
            "susceptible nodes stay silent"
        );
        write(&mut ns[0], 5);
        assert!(ns[0].is_hot());
        assert_eq!(round(&mut ns, 0), ["rumor", "rumor_reply"]);
        assert_eq!(ns[1].state().value(), Some(&5));
        assert!(ns[1].is_hot(), "news makes the recipient infective");
        assert!(ns[0].is_hot(), "a necessary contact costs no interest");
        assert_eq!(ns[0].stats().rumors_sent, 1);
    }

    #[test]
    fn feedback_counter_loses_interest_after_k_unnecessary_contacts() {
        let rc = RumorConfig {
            loss: LossOfInterest::Counter(2),
            ..RumorConfig::default()
        };
        let mut ns = nodes(2, rc);
        write(&mut ns[0], 5);
        round(&mut ns, 0); // necessary
        round(&mut ns, 0); // unnecessary #1
        assert!(ns[0].is_hot());
        round(&mut ns, 0); // unnecessary #2
        assert!(!ns[0].is_hot());
        assert!(round(&mut ns, 0).is_empty(), "removed nodes stay silent");
        assert_eq!(ns[0].stats().rumors_lost_interest, 1);
    }

    #[test]
    fn blind_counter_counts_every_contact_and_sends_no_reply() {
        let rc = RumorConfig {
            feedback: Feedback::Blind,
            loss: LossOfInterest::Counter(2),
            ..RumorConfig::default()
        };
        let mut ns = nodes(2, rc);
        write(&mut ns[0], 5);
        assert_eq!(round(&mut ns, 0), ["rumor"]);
        assert!(ns[0].is_hot());
        assert_eq!(round(&mut ns, 0), ["rumor"]);
        assert!(!ns[0].is_hot(), "two contacts, necessary or not");
    }

    #[test]
    fn pull_asks_everyone_and_only_infective_nodes_answer() {
        let rc = RumorConfig {
            direction: RumorDirection::Pull,
            loss: LossOfInterest::Counter(1),
            ..RumorConfig::default()
        };
        let mut ns = nodes(2, rc);
        assert_eq!(round(&mut ns, 1), ["rumor_pull"], "nobody is hot yet");
        write(&mut ns[0], 9);
        assert_eq!(round(&mut ns, 1), ["rumor_pull", "rumor", "rumor_reply"]);
        assert_eq!(ns[1].state().value(), Some(&9));
        assert!(ns[0].is_hot());
        // Node 0 pulls from node 1 (hot now): node 0 already knew, so node 1 loses interest.
        assert_eq!(round(&mut ns, 0), ["rumor_pull", "rumor", "rumor_reply"]);
        assert!(!ns[1].is_hot());
    }

    #[test]
    fn anti_entropy_backing_runs_every_nth_round_and_redistributes() {
        let rc = RumorConfig {
            anti_entropy_every: 3,
            ..RumorConfig::default()
        };
        let mut ns = nodes(2, rc);
        // Node 1 holds an update but is not infective (as if it had lost interest).
        ns[1] = {
            let config = *ns[1].config();
            let every = FixedInterval::new(Duration::from_millis(100)).unwrap();
            let mut n = Node::new(
                NodeId(1),
                config,
                Register::with(1, NodeId(1), 77),
                UniformRandom,
                every,
                1,
            );
            n.set_peers(Peers::Complete { n: 2 });
            n
        };
        assert!(round(&mut ns, 0).is_empty());
        assert!(round(&mut ns, 0).is_empty());
        assert_eq!(
            round(&mut ns, 0),
            ["syn", "syn_ack"],
            "push-pull on round 3"
        );
        assert_eq!(ns[0].state().value(), Some(&77));
        assert!(
            ns[0].is_hot(),
            "news from anti-entropy is redistributed as a rumor"
        );
        assert_eq!(ns[0].config().mode, Mode::PushPull);
    }
}
