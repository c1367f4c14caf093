//! One way to derive seeds: every random stream of a run (topology, network, each node's RNG,
//! the write, the demo's plan) is `split(master, stream)` of one master seed, so "the same seed
//! gives the same run" is true by construction and each stream is independent of the others.
//!
//! This crate owns no randomness; it only says how a seed becomes other seeds.
//!
//! ```
//! use gossiper_types::seed::{mix, split};
//!
//! assert_eq!(split(7, 1), mix(7 ^ 1));
//! assert_ne!(split(7, 1), split(7, 2));
//! assert_ne!(split(7, 1), split(8, 1));
//! ```

/// SplitMix64 (Steele, Lea and Flood 2014): a bijection of `u64` whose output bits each depend
/// on every input bit, so nearby inputs (seeds 1, 2, 3, ...) give unrelated outputs.
pub const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of stream `stream` (a tag, e.g. `0x6e65_7477`, "netw") of master seed `seed`.
pub const fn split(seed: u64, stream: u64) -> u64 {
    mix(seed ^ stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_splitmix64() {
        // The first outputs of SplitMix64 seeded with 0 are mix(0), mix(golden), ...
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix(0x9e37_79b9_7f4a_7c15), 0x6e78_9e6a_a1b9_65f4);
    }
}
