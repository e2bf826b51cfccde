//! Keeping freed batch buffers in the process, for programs that stream large results.
//!
//! A batch's buffers (hundreds of KiB to a few MiB) are decoded on one thread and usually freed
//! on another, once every processor is done with them. glibc's malloc serves blocks of that size
//! with `mmap` and gives them back with `munmap` (its threshold adapts upward only so far), so
//! every new batch faulted in fresh zeroed pages: the kernel's `clear_page_erms` and
//! `do_anonymous_page` in the client's profile. [`keep_freed_memory`] raises the thresholds
//! so that such blocks come from, and return to, malloc's own heap.
//!
//! Measured with `bench/run.py`'s lines on 10M rows (`bench/results/2026-12-03-ab.md`): 5% to a
//! third less client CPU on every line, where mimalloc and jemalloc, each measured beside glibc
//! in a run of its own, were slower than glibc's defaults on most lines.
//!
//! ```
//! // First thing in `main`, before any thread or runtime starts.
//! let kept = flightline_core::malloc::keep_freed_memory();
//! // ... then build the tokio runtime and run the jobs.
//! # let _ = kept;
//! ```

/// Blocks below this come from malloc's heap: above any batch a Flight result carries (arrow's
/// and tonic's messages stay well under it), and glibc's own maximum for the threshold.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory at the top of a heap beyond this is given back to the kernel: a few batches'
/// worth stay for reuse, so an idle worker holds at most this much more than it uses.
pub const TRIM_THRESHOLD: usize = 128 << 20;

/// Sets glibc's `M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD` to [`MMAP_THRESHOLD`] and
/// [`TRIM_THRESHOLD`]; returns whether they were set. Does nothing (and returns `false`) under
/// another C library, or when the environment's `GLIBC_TUNABLES` already sets malloc's
/// thresholds: an operator's choice wins. Call it at the start of `main`, before other threads.
pub fn keep_freed_memory() -> bool {
    !set_by_operator(std::env::var("GLIBC_TUNABLES").ok().as_deref()) && set_thresholds()
}

/// Whether `tunables` (the value of `GLIBC_TUNABLES`) sets either threshold.
fn set_by_operator(tunables: Option<&str>) -> bool {
    tunables.is_some_and(|t| {
        t.split(':').any(|setting| {
            setting.starts_with("glibc.malloc.mmap_threshold=")
                || setting.starts_with("glibc.malloc.trim_threshold=")
        })
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> bool {
    let as_int = |bytes: usize| libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only reads its two integers; glibc serialises it with its own locks.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, as_int(MMAP_THRESHOLD)) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, as_int(TRIM_THRESHOLD)) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_batch_sized_block_comes_from_the_heap() {
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return; // the operator's tunables decide; nothing of ours to check
        }
        // SAFETY: mallinfo2 only reads malloc's counters.
        let mapped = || unsafe { libc::mallinfo2() }.hblkhd;
        assert!(keep_freed_memory());
        let before = mapped();
        // With glibc's defaults, a block this size is mapped on its own (until a freed one
        // raised the threshold, which nothing in this test's process has done before).
        let block = vec![1u8; 24 << 20];
        assert_eq!(mapped(), before, "a 24 MiB block was mapped on its own");
        drop(block);
    }

    #[test]
    fn thresholds_in_the_environment_win() {
        assert!(set_by_operator(Some("glibc.malloc.trim_threshold=1")));
        assert!(set_by_operator(Some("glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=4096")));
        assert!(!set_by_operator(Some("glibc.malloc.arena_max=2")));
        assert!(!set_by_operator(None));
    }
}
