//! Advisory locks for work in a shared run directory: one holder per block, across processes and
//! hosts (an exclusive `flock` through `std::fs::File::try_lock`; on NFS v4 and Lustre the kernel
//! maps it to a byte-range lock the server enforces). The lock file names its holder (host, pid,
//! Slurm job, start time). The kernel drops a lock when its process dies, SIGKILL included, so a
//! lock file left by a dead job is simply taken over — and the takeover is reported.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// A held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct Lock {
    file: File,
    pub path: PathBuf,
    /// The holder recorded in the file when this process took it over, if any (a dead job).
    pub previous: Option<String>,
}

/// Who this process is, as a lock file records it.
pub fn holder() -> String {
    let mut s = format!("host {} pid {}", hostname(), std::process::id());
    if let Ok(job) = std::env::var("SLURM_JOB_ID") {
        s.push_str(&format!(" slurm job {job}"));
        if let Ok(task) = std::env::var("SLURM_ARRAY_TASK_ID") {
            s.push_str(&format!(" task {task}"));
        }
    }
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{s} since unix time {t}")
}

/// The machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`, else "unknown-host").
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Takes the lock at `path` without waiting. `what` says what it guards ("block 0 ('stage1')");
/// when another live process holds it, the error names that holder and the lock file.
pub fn try_lock(path: &Path, what: &str) -> Result<Lock> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create '{}'", d.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open lock file '{}'", path.display()))?;
    let mut recorded = String::new();
    // A short retry: `probe` (dnas status) may hold a shared lock for a moment.
    let mut attempt = 0;
    let taken = loop {
        match file.try_lock() {
            Err(TryLockError::WouldBlock) if attempt < 5 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => break other,
        }
    };
    match taken {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let _ = file.read_to_string(&mut recorded);
            let who = if recorded.trim().is_empty() { "another process".to_string() } else { recorded.trim().to_string() };
            bail!("{what} is already being worked on by {who} (lock '{}'); wait for it, or stop that job", path.display());
        }
        Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock '{}'", path.display())),
    }
    let _ = file.read_to_string(&mut recorded);
    let previous = Some(recorded.trim().to_string()).filter(|s| !s.is_empty());
    file.set_len(0).and_then(|_| file.rewind()).with_context(|| format!("cannot write '{}'", path.display()))?;
    writeln!(file, "{}", holder()).and_then(|_| file.sync_all()).with_context(|| format!("cannot write '{}'", path.display()))?;
    Ok(Lock { file, path: path.to_path_buf(), previous })
}

/// Who holds the lock at `path` now, without taking it or writing anything: `None` when it is
/// free (or was never made). For `dnas status`.
pub fn probe(path: &Path) -> Option<String> {
    let mut file = OpenOptions::new().read(true).open(path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(_) => {
            let mut recorded = String::new();
            let _ = file.read_to_string(&mut recorded);
            Some(if recorded.trim().is_empty() { "another process".into() } else { recorded.trim().to_string() })
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Empty = free; the file stays (removing it would race with a process opening it).
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_by_name_and_a_released_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blocks/0/train.lock");
        let first = try_lock(&p, "block 0").unwrap();
        assert!(first.previous.is_none());
        let e = try_lock(&p, "block 0").unwrap_err().to_string();
        assert!(e.contains("block 0 is already being worked on by host") && e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(probe(&p).is_some_and(|h| h.contains(&format!("pid {}", std::process::id()))));
        drop(first);
        assert_eq!(probe(&p), None);
        let again = try_lock(&p, "block 0").unwrap();
        assert!(again.previous.is_none(), "a cleanly released lock records no previous holder");
    }
}
