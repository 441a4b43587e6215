//! Allocator settings for tensor work on the CPU.
//!
//! libtorch allocates CPU tensors with the C library's `malloc` and caches nothing. glibc serves
//! every block over its mmap threshold (128 KiB growing to at most 32 MiB) with a fresh `mmap`
//! and returns it with `munmap` on free, so a training step or a 224² forward pass, whose
//! activations are tens of MiB each, page-faults its whole working set in again on every step
//! (measured: 1.6 M minor faults and 4 s of system time in 30 supernet steps; see
//! tools/bench_supernet.sh and tools/bench_teacher.sh). [`tune_for_tensors`] keeps freed memory in
//! the heap for reuse instead: no mmap for large blocks, no trimming of the heap top. Peak
//! memory is unchanged (the same tensors are live at the peak); the process just does not hand
//! freed pages back to the kernel between steps.
//!
//! This is the job PyTorch's CPU performance guides give to jemalloc/tcmalloc via `LD_PRELOAD`;
//! here it is two `mallopt` calls at start-up. Only the `dnas` binary and the benchmarks call it
//! (a library should not change its host's allocator); `DNAS_MALLOC=system` or a user's own
//! `GLIBC_TUNABLES` / `MALLOC_*` settings leave the C library's defaults alone.

/// Applies the settings above once per process; returns whether they were applied.
pub fn tune_for_tensors() -> bool {
    let user_set = std::env::var_os("DNAS_MALLOC").is_some_and(|v| v == "system")
        || std::env::vars_os().any(|(k, _)| k == "GLIBC_TUNABLES" || k.to_string_lossy().starts_with("MALLOC_"));
    !user_set && apply()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    use std::os::raw::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // glibc's malloc.h: M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4 (mallopt returns 1 on success).
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_MAX: c_int = -4;
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe { mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, c_int::MAX) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    /// After tuning, freeing and re-allocating a large tensor does not page-fault it in again:
    /// the second allocation reuses the heap memory the first one left behind.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn large_blocks_are_reused_without_page_faults() {
        fn minor_faults() -> u64 {
            let s = std::fs::read_to_string("/proc/self/stat").unwrap();
            // Fields after the command name (which is in parentheses): minflt is field 10.
            let rest = &s[s.rfind(')').unwrap() + 2..];
            rest.split_whitespace().nth(7).unwrap().parse().unwrap()
        }
        // This test owns its process's allocator settings only if nobody set them outside.
        if !super::tune_for_tensors() {
            return;
        }
        let n = 48 << 20; // 48 MiB, above glibc's largest mmap threshold
        let touch = |n: usize| {
            let v = vec![1u8; n];
            std::hint::black_box(&v);
        };
        touch(n);
        let before = minor_faults();
        touch(n);
        let faults = minor_faults() - before;
        // 48 MiB is 12,288 pages of 4 KiB; a fresh mapping faults in every one of them.
        assert!(faults < 1000, "{faults} page faults re-allocating 48 MiB after tuning");
    }
}
