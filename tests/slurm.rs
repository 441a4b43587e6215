//! `dnas submit slurm` against the real local Slurm (`tools/slurm_cluster.sh start`; tools/test.sh
//! starts it and sets DNAS_SLURM_TESTS=required, so there a missing cluster fails the test): the
//! quick demo as an array of block jobs and a dependent gather job, compared with `dnas demo
//! --quick` run here with the same seed — same selected architecture, same exported student, the
//! budget passed — and `dnas status` after it; then preemption: a block task requeued
//! (`scontrol requeue`) mid-training stops at the next step with a checkpoint (SIGTERM), runs
//! again and resumes, ending with the same weights as the uninterrupted run; then a failed
//! task: the gather job never runs, `dnas status` names the block and why, and a resubmission
//! runs only that block and completes the chain.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn dnas(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dnas")).args(args).output().unwrap()
}

/// Whether a Slurm controller answers; when it does not, the test is skipped loudly, or fails
/// where the suite promised a cluster.
fn slurm_available() -> bool {
    let up = Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert_ne!(
            std::env::var("DNAS_SLURM_TESTS").as_deref(),
            Ok("required"),
            "DNAS_SLURM_TESTS=required but no Slurm controller answers (tools/slurm_cluster.sh start)"
        );
        eprintln!("SKIPPED: no Slurm cluster here (start one with tools/slurm_cluster.sh start)");
    }
    up
}

fn wait_jobs(jobs: &[&str], limit: Duration) {
    let t0 = Instant::now();
    loop {
        let out = Command::new("squeue").args(["-h", "-j", &jobs.join(",")]).output().unwrap();
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return;
        }
        assert!(t0.elapsed() < limit, "jobs {jobs:?} still queued or running after {limit:?}");
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn job_state(job: &str) -> String {
    let out = Command::new("scontrol").args(["show", "job", "-o", job]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|l| l.split_whitespace().filter_map(|w| w.strip_prefix("JobState=")).map(str::to_string).collect::<Vec<_>>())
        .collect::<Vec<_>>()
        .join(",")
}

/// The graph of an ONNX file without its metadata (which records wall-clock seconds).
fn graph(path: &Path) -> (Vec<String>, Vec<(String, Vec<u8>)>) {
    let g = dnas::onnx::read_file(path).unwrap();
    let nodes = g.nodes.iter().map(|n| format!("{} {:?} {:?} {:?}", n.name, n.op, n.inputs, n.outputs)).collect();
    let inits = g.initializers.iter().map(|(k, t)| (k.clone(), t.to_raw_bytes())).collect();
    (nodes, inits)
}

#[test]
fn submit_slurm_equals_the_quick_demo() {
    if !slurm_available() {
        return;
    }
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let (local, cluster) = (dir.path().join("local"), dir.path().join("cluster"));
    let threads = ["--threads", "1"];

    let out = dnas(&[&["demo", "--quick", "--seed", "0", "-o", local.to_str().unwrap()][..], &threads[..]].concat());
    assert!(out.status.success(), "dnas demo --quick: {}", String::from_utf8_lossy(&out.stderr));

    let out = dnas(
        &[
            &["submit", "slurm", "--quick", "--seed", "0", "-o", cluster.to_str().unwrap(), "--cpus-per-job", "1", "--mem", "3G"][..],
            &threads[..],
        ]
        .concat(),
    );
    assert!(out.status.success(), "dnas submit slurm: {}", String::from_utf8_lossy(&out.stderr));
    let submitted: serde_json::Value = serde_json::from_slice(&std::fs::read(cluster.join("slurm/submitted.json")).unwrap()).unwrap();
    let (array, gather) = (submitted["array_job"].as_str().unwrap().to_string(), submitted["gather_job"].as_str().unwrap().to_string());
    wait_jobs(&[&array, &gather], Duration::from_secs(900));
    let logs = |name: &str| std::fs::read_to_string(cluster.join("slurm/logs").join(name)).unwrap_or_default();
    assert_eq!(job_state(&gather), "COMPLETED", "gather job {gather}: {}\nblock 0: {}", logs("gather.out"), logs("block-0.out"));
    assert!(job_state(&array).split(',').all(|s| s == "COMPLETED"), "array {array}: {}", job_state(&array));

    // The same search, the same student, the budget met.
    let arch = |d: &Path| std::fs::read_to_string(d.join("search/arch.json")).unwrap();
    assert_eq!(arch(&cluster), arch(&local), "the cluster's selected architecture differs from dnas demo --quick's");
    assert!(graph(&cluster.join("student.onnx")) == graph(&local.join("student.onnx")), "the exported students differ");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(cluster.join("demo.json")).unwrap()).unwrap();
    assert_eq!(record["pass"], true, "the budget failed on the cluster's student");
    for b in 0..submitted["blocks"].as_u64().unwrap() {
        assert!(logs(&format!("block-{b}.out")).contains(&format!("block {b} of")), "block {b}'s task log is missing");
    }

    let status = dnas(&["status", "--run", cluster.to_str().unwrap(), "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(s["blocks"].as_array().unwrap().iter().all(|b| b["state"] == "done"), "{s}");
    assert_eq!(s["gather"]["onnx"], true);

    // Preemption: requeue block 0's task as soon as it starts training.
    let preempt = dir.path().join("preempt");
    let out = dnas(
        &[
            &["submit", "slurm", "--quick", "--seed", "0", "-o", preempt.to_str().unwrap(), "--cpus-per-job", "1", "--mem", "3G"][..],
            &threads[..],
        ]
        .concat(),
    );
    assert!(out.status.success(), "dnas submit slurm: {}", String::from_utf8_lossy(&out.stderr));
    let submitted: serde_json::Value = serde_json::from_slice(&std::fs::read(preempt.join("slurm/submitted.json")).unwrap()).unwrap();
    let (array, gather) = (submitted["array_job"].as_str().unwrap().to_string(), submitted["gather_job"].as_str().unwrap().to_string());
    let log0 = preempt.join("slurm/logs/block-0.out");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&log0).unwrap_or_default().contains("training block 0") {
        assert!(t0.elapsed() < Duration::from_secs(300), "block 0 never started training");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rq = Command::new("scontrol").args(["requeue", &format!("{array}_0")]).output().unwrap();
    assert!(rq.status.success(), "scontrol requeue: {}", String::from_utf8_lossy(&rq.stderr));
    // Slurm makes a requeued job eligible only two minutes later; on this idle test cluster,
    // let it start as soon as it is pending again (what the job does is unchanged).
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        let q = Command::new("squeue").args(["-h", "-o", "%r", "-j", &format!("{array}_0")]).output().unwrap();
        if String::from_utf8_lossy(&q.stdout).contains("BeginTime") {
            let _ = Command::new("scontrol").args(["update", &format!("JobId={array}_0"), "StartTime=now"]).output();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_jobs(&[&array, &gather], Duration::from_secs(900));
    let log = std::fs::read_to_string(&log0).unwrap();
    assert!(log.contains("stopped by SIGTERM"), "the requeued task did not stop at a step with a checkpoint:\n{log}");
    assert!(log.contains("resuming"), "the requeued task did not resume from its checkpoint:\n{log}");
    let gather_log = std::fs::read_to_string(preempt.join("slurm/logs/gather.out")).unwrap_or_default();
    assert_eq!(job_state(&gather), "COMPLETED", "gather after the requeue: {gather_log}");
    for b in 0..submitted["blocks"].as_u64().unwrap() {
        let w = |d: &Path| std::fs::read(d.join(format!("search/blocks/{b}/weights.safetensors"))).unwrap();
        assert!(w(&preempt) == w(&local), "block {b}: the preempted run's weights differ from the uninterrupted demo's");
    }
    assert_eq!(arch(&preempt), arch(&local));

    // A failing task: block 1's lock is held by this test process, so its task exits 2.
    let failing = dir.path().join("failing");
    let submit = |d: &Path| {
        let out = dnas(
            &[
                &["submit", "slurm", "--quick", "--seed", "0", "-o", d.to_str().unwrap(), "--cpus-per-job", "1", "--mem", "3G"][..],
                &threads[..],
            ]
            .concat(),
        );
        assert!(out.status.success(), "dnas submit slurm: {}", String::from_utf8_lossy(&out.stderr));
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("slurm/submitted.json")).unwrap()).unwrap();
        (s["array_job"].as_str().unwrap().to_string(), s["gather_job"].as_str().unwrap().to_string(), s["array_blocks"].clone())
    };
    let create = dnas(&[
        "train",
        "--run",
        failing.join("search").to_str().unwrap(),
        "--create-only",
        "--teacher",
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/fmnist_teacher.onnx"),
        "--space",
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/spaces/fmnist_small.json"),
        "--data",
        "fmnist",
        "--held-out",
        "512",
        "--epochs",
        "1",
        "--batch",
        "64",
        "--probe-batches",
        "1",
        "--seed",
        "0",
        "--train-subset",
        "1024",
    ]);
    assert!(create.status.success(), "{}", String::from_utf8_lossy(&create.stderr));
    let held = dnas::util::lock::try_lock(&failing.join("search/blocks/1/train.lock"), "block 1").unwrap();
    let (array, gather, _) = submit(&failing);
    let t0 = Instant::now();
    loop {
        let tasks = Command::new("squeue").args(["-h", "-j", &array]).output().unwrap();
        if String::from_utf8_lossy(&tasks.stdout).trim().is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(600), "the array did not finish");
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(job_state(&format!("{array}_1")).contains("FAILED"), "block 1's task: {}", job_state(&format!("{array}_1")));
    let g = Command::new("squeue").args(["-h", "-o", "%T %r", "-j", &gather]).output().unwrap();
    let g = String::from_utf8_lossy(&g.stdout).to_string();
    assert!(g.contains("PENDING") && g.contains("Dependency"), "the gather job ran or vanished after a failed block: '{g}'");
    assert!(!failing.join("student.onnx").exists(), "the gather step ran");
    let status = dnas(&["status", "--run", failing.to_str().unwrap(), "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let b1 = &st["blocks"][1];
    assert_eq!(b1["state"], "failed", "{st}");
    assert!(b1["reason"].as_str().unwrap_or_default().contains("already being worked on"), "status gives no reason: {b1}");
    let _ = Command::new("scancel").arg(&gather).output();
    drop(held);
    let (array, gather, blocks) = submit(&failing);
    assert_eq!(blocks, serde_json::json!([1]), "the resubmission must run only the failed block");
    wait_jobs(&[&array, &gather], Duration::from_secs(600));
    assert_eq!(job_state(&gather), "COMPLETED");
    assert_eq!(arch(&failing), arch(&local));
}
