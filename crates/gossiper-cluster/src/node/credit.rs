//! Anti-amplification credit, as QUIC has it: until an address has proven that it receives
//! (it answered one of our messages from there), everything sent to it in reply totals at most
//! [`REFLECTION_FACTOR`](super::REFLECTION_FACTOR) times everything received from it. The
//! budget is over the whole conversation, not per datagram: a peer still unverified while the
//! cluster forms keeps sending full digests and so keeps earning full replies, while a forger
//! replaying small datagrams from a victim's address earns the victim three times its own
//! bytes and no more.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Addresses with credit held at once. Past it the table starts over: forgetting credit only
/// ever sends less, so a flood of spoofed addresses gains nothing by overflowing it.
const MAX_ADDRESSES: usize = 4_096;

/// Bytes each unverified address may still be sent.
#[derive(Debug, Default)]
pub(crate) struct ReflectionCredit {
    left: HashMap<SocketAddr, usize>,
}

impl ReflectionCredit {
    /// Adds `bytes` (the factor already applied) to `addr`'s credit; returns the credit now.
    pub(crate) fn earn(&mut self, addr: SocketAddr, bytes: usize) -> usize {
        if self.left.len() >= MAX_ADDRESSES && !self.left.contains_key(&addr) {
            self.left.clear();
        }
        let left = self.left.entry(addr).or_insert(0);
        *left = left.saturating_add(bytes);
        *left
    }

    /// What `addr` may still be sent.
    pub(crate) fn left(&self, addr: SocketAddr) -> usize {
        self.left.get(&addr).copied().unwrap_or(0)
    }

    /// Takes `bytes` sent to `addr` off its credit.
    pub(crate) fn spend(&mut self, addr: SocketAddr, bytes: usize) {
        if let Some(left) = self.left.get_mut(&addr) {
            *left = left.saturating_sub(bytes);
        }
    }

    /// Addresses holding credit now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.left.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(i: u32) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::from(i), 7946))
    }

    #[test]
    fn credit_is_earned_spent_and_kept_per_address() {
        let mut c = ReflectionCredit::default();
        assert_eq!(c.earn(a(1), 300), 300);
        c.spend(a(1), 250);
        assert_eq!(c.earn(a(1), 30), 80);
        c.spend(a(1), 1_000);
        assert_eq!(c.earn(a(1), 0), 0, "never below nothing");
        assert_eq!(c.earn(a(2), 5), 5, "another address has its own");
    }

    #[test]
    fn a_flood_of_addresses_keeps_the_table_bounded_and_grants_no_credit() {
        let mut c = ReflectionCredit::default();
        c.earn(a(0), 1_000);
        for i in 1..100_000 {
            assert_eq!(c.earn(a(i), 3), 3);
        }
        assert!(c.len() <= MAX_ADDRESSES);
        assert!(
            c.earn(a(0), 0) <= 1_000,
            "overflowing the table adds nothing"
        );
    }
}
