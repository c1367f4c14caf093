//! Shared helpers for gossiper's cross-crate integration tests (the tests live in `tests/`).
//!
//! [`virtual_time`] drives engines without threads or clocks, so a test can run a whole
//! cluster in microseconds and get the same result for the same seed.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod virtual_time;
