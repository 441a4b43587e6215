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
    wanted(std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))) && apply()
}

/// Whether to tune, given the environment: not when the user chose the system allocator or set
/// glibc's allocator tunables themselves.
fn wanted(mut vars: impl Iterator<Item = (String, String)>) -> bool {
    !vars.any(|(k, v)| (k == "DNAS_MALLOC" && v == "system") || k == "GLIBC_TUNABLES" || k.starts_with("MALLOC_"))
}

/// Minor page faults of this process so far (Linux; 0 elsewhere). Benchmarks print it: a fresh
/// mapping for every large tensor shows up here.
pub fn minor_faults() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name (in parentheses): state, ppid, …; minflt is the 8th field from there.
    s.rfind(')').and_then(|i| s[i + 1..].split_whitespace().nth(7)).and_then(|v| v.parse().ok()).unwrap_or(0)
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
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn the_user_keeps_the_last_word() {
        assert!(wanted(env(&[("PATH", "/bin"), ("DNAS_MALLOC", "tuned")])));
        assert!(!wanted(env(&[("DNAS_MALLOC", "system")])));
        assert!(!wanted(env(&[("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")])));
        assert!(!wanted(env(&[("MALLOC_ARENA_MAX", "2")])));
    }

    /// The settings take (glibc's mallopt accepts both) and the fault counter the benchmarks
    /// print is read (every process has faulted pages in by now).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn mallopt_accepts_the_settings_and_faults_are_counted() {
        assert!(apply());
        assert!(minor_faults() > 0);
    }
}
