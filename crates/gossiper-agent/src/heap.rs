//! Gives the memory the C allocator keeps after a burst back to the system.
//!
//! glibc returns freed memory to the system only from the top of its heap. When 100 parked
//! blocking queries are answered and their connections close, hyper's two buffers per
//! connection are freed below longer-lived allocations and stay resident although nothing uses
//! them. Measured on one `gossiper agent`: 1.79 MiB anonymous memory after such a burst,
//! 0.64 MiB after `malloc_trim(0)` (0.52 MiB before the burst). So the API asks for a trim once
//! it has been quiet for a second after connections closed (at the latest ten seconds after
//! the first close: see `http::schedule_heap_trim`).
//!
//! This is the workspace's one `unsafe` block: design.md allows one for a measured need, and
//! the crate's lints deny `unsafe` everywhere else and require the `SAFETY` comment.

/// Asks the allocator to return its free pages to the system; true if it released any.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointers and has no preconditions; glibc locks each arena
    // while it walks it, so it is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Elsewhere (musl, macOS, Windows) the allocator returns memory itself or has no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_below_a_live_allocation_can_be_released() {
        // Many blocks, then one kept above them: freeing the blocks leaves a hole the
        // allocator keeps; a trim gives it back (glibc) or is a no-op (elsewhere).
        let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 16 * 1024]).collect();
        let kept = Box::new([1u8; 64]);
        drop(blocks);
        let released = release_free_memory();
        assert_eq!(kept[0], 1);
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(released, "glibc had 4 MiB of free pages to give back");
        }
    }
}
