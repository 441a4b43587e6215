//! Preemption: SIGTERM (what Slurm sends a job it requeues, cancels or times out, `KillWait`
//! seconds before SIGKILL) and SIGUSR1 (what `sbatch --signal=USR1@T` sends ahead of the time
//! limit) ask a training loop to stop at the next step boundary, after writing a checkpoint. The
//! handler only stores a flag (async-signal-safe); the loop polls [`stop_requested`].

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static STOP: AtomicI32 = AtomicI32::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if ARMED.load(Ordering::SeqCst) {
        STOP.store(sig, Ordering::SeqCst);
    } else {
        // No training loop to stop cleanly: the signal's default action (terminate).
        // SAFETY: signal and raise are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// While the guard lives, the signals stop a training loop instead of the process.
pub struct Armed;

/// Called by a training loop for its duration.
pub fn arm() -> Armed {
    ARMED.store(true, Ordering::SeqCst);
    Armed
}

impl Drop for Armed {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::SeqCst);
    }
}

/// Installs the handlers (the `dnas` binary does, at start-up).
pub fn install() {
    for sig in [libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: `on_signal` only performs an atomic store, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// The signal that asked to stop, if one did.
pub fn stop_requested() -> Option<i32> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// What to print for it.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}

/// The error a loop returns when it stopped for a signal: the CLI exits with
/// [`PREEMPTED_EXIT`] so that a job script can requeue itself.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {signal} at step {step} after writing a checkpoint; run the same command again to resume")]
pub struct Preempted {
    pub signal: &'static str,
    pub step: usize,
}

/// Exit status of a command stopped by [`Preempted`].
pub const PREEMPTED_EXIT: u8 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_sets_the_flag_while_a_loop_is_armed() {
        install();
        let _armed = arm();
        assert_eq!(stop_requested(), None);
        unsafe { libc::raise(libc::SIGUSR1) };
        assert_eq!(stop_requested(), Some(libc::SIGUSR1));
        STOP.store(0, Ordering::SeqCst);
    }
}
