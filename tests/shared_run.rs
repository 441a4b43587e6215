//! A run directory shared by several processes (or hosts): one trainer per block. Two concurrent
//! `dnas train --block 0` — exactly one trains, the other exits 2 naming the holder; after the
//! holder is SIGKILLed mid-training, a new process takes the block over (saying from whom) and
//! resumes from the checkpoint, ending with weights bit-identical to an uninterrupted run.
//! Checkpoints are per block, so a block interrupted in one grouping resumes in any other.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TINY_SPACE;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn train(run: &Path, extra: &[&str]) -> Command {
    train_blocks(run, &["--block", "0"], extra)
}

/// `dnas train` of `blocks` (`[]` = every block, together).
fn train_blocks(run: &Path, blocks: &[&str], extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dnas"));
    c.args(["train", "--run"]).arg(run).args(blocks).args(["--threads", "1", "--workers", "1"]).args(extra);
    c
}

fn checkpoint_step(run: &Path, block: usize) -> Option<u64> {
    let s = std::fs::read_to_string(run.join(format!("blocks/{block}/ckpt/checkpoint.json"))).ok()?;
    serde_json::from_str::<serde_json::Value>(&s).ok()?["step"].as_u64()
}

/// SIGTERMs `child` once `ready` holds (it is training: SIGTERM stops it at the next step with
/// a checkpoint, exit 3) and returns its stderr.
fn preempt(child: std::process::Child, what: &str, ready: impl FnMut() -> bool) -> String {
    wait_for(what, Duration::from_secs(300), ready);
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "not stopped by SIGTERM (it may have finished first): {err}");
    err
}

fn create(run: &Path, space: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_dnas"))
        .args(["train", "--run"])
        .arg(run)
        .arg("--teacher")
        .arg(root().join("models/fmnist_teacher.onnx"))
        .arg("--space")
        .arg(space)
        // 500 steps of batch 16: a checkpoint at 200 and 400 (the supernets' fixed interval).
        .args(["--train-subset", "8000", "--batch", "16", "--epochs", "1", "--held-out", "256", "--seed", "3", "--probe-batches", "1"])
        .arg("--create-only")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two identical runs of the tiny space, (temporary dir, "shared", "alone").
fn two_runs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.json");
    std::fs::write(&space, TINY_SPACE).unwrap();
    let (shared, alone) = (dir.path().join("shared"), dir.path().join("alone"));
    create(&shared, &space);
    create(&alone, &space);
    (dir, shared, alone)
}

#[test]
fn one_trainer_per_block_and_a_dead_holder_is_taken_over() {
    let (_dir, shared, alone) = two_runs();

    // The uninterrupted reference.
    let out = train(&alone, &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A holds block 0; B is refused with A's pid in the message.
    let lock = shared.join("blocks/0/train.lock");
    let mut a = train(&shared, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for("the first trainer's lock", Duration::from_secs(60), || std::fs::read_to_string(&lock).is_ok_and(|s| !s.trim().is_empty()));
    let b = train(&shared, &[]).output().unwrap();
    let err = String::from_utf8_lossy(&b.stderr);
    assert_eq!(b.status.code(), Some(2), "the second trainer was not refused: {err}");
    assert!(err.contains("block 0") && err.contains(&format!("pid {}", a.id())), "the refusal does not name the holder: {err}");

    // A is killed after its first checkpoint; C takes over from it and resumes there.
    let ckpt = shared.join("blocks/0/ckpt/checkpoint.json");
    wait_for("the first checkpoint", Duration::from_secs(300), || ckpt.exists());
    a.kill().unwrap();
    a.wait().unwrap();
    assert!(!shared.join("blocks/0/done.json").exists(), "the block finished before it could be killed");
    let c = train(&shared, &[]).output().unwrap();
    let err = String::from_utf8_lossy(&c.stderr);
    assert!(c.status.success(), "the takeover failed: {err}");
    assert!(err.contains("taking over from") && err.contains(&format!("pid {}", a.id())), "no takeover reported: {err}");
    assert!(err.contains("resuming"), "the takeover did not resume from the checkpoint: {err}");
    assert_eq!(
        std::fs::read(shared.join("blocks/0/weights.safetensors")).unwrap(),
        std::fs::read(alone.join("blocks/0/weights.safetensors")).unwrap(),
        "the resumed block's weights differ from the uninterrupted run's"
    );
}

#[test]
fn a_block_interrupted_in_one_grouping_resumes_in_any_other() {
    let (_dir, shared, alone) = two_runs();
    let out = train_blocks(&alone, &[], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Both blocks together, preempted after their checkpoint at step 200.
    let both = train_blocks(&shared, &[], &[]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    preempt(both, "the group's checkpoint at step 200", || checkpoint_step(&shared, 1).is_some_and(|s| s >= 200));
    let s0 = checkpoint_step(&shared, 0).expect("block 0 has no checkpoint of its own");
    assert_eq!(checkpoint_step(&shared, 1), Some(s0), "one group checkpoint: both blocks at one step");
    // Block 1 alone resumes from it, and is preempted again after its checkpoint at 400.
    let one = train_blocks(&shared, &["--block", "1"], &[]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let err = preempt(one, "block 1's checkpoint at step 400", || checkpoint_step(&shared, 1).is_some_and(|s| s >= 400));
    assert!(err.contains(&format!("at step {s0} (")), "block 1 alone did not resume the group's checkpoint: {err}");
    let s1 = checkpoint_step(&shared, 1).unwrap();
    assert!(s1 > s0 && checkpoint_step(&shared, 0) == Some(s0), "blocks at {s0} and {s1}");

    // `dnas status` shows both interrupted, each at its own step.
    let st = Command::new(env!("CARGO_BIN_EXE_dnas")).args(["status", "--run"]).arg(&shared).arg("--json").output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    for (b, s) in [(0, s0), (1, s1)] {
        assert_eq!(st["blocks"][b]["state"], format!("interrupted (checkpoint at step {s})"), "{st}");
    }
    // Everything together: two groups (each block from its own step), both finish.
    let out = train_blocks(&shared, &[], &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("at step {s0} (")) && err.contains(&format!("at step {s1} (")), "not resumed per block: {err}");
    for b in 0..2 {
        assert_eq!(
            std::fs::read(shared.join(format!("blocks/{b}/weights.safetensors"))).unwrap(),
            std::fs::read(alone.join(format!("blocks/{b}/weights.safetensors"))).unwrap(),
            "block {b}'s weights differ from the uninterrupted run's"
        );
    }
}
