//! `dnas demo`: the whole pipeline on the embedded default (Fashion-MNIST and the shipped
//! teacher), through the same code paths as the stage commands — teacher import and cuts,
//! `dnas train` (block supernets), `dnas evaluate`, `dnas select` (under the budget's MACs and
//! params), `dnas retrain` (KD from the teacher), `dnas export`, `dnas validate` (teacher and
//! student, the student against the budget) — then a teacher-vs-searched table.
//!
//! Everything lands in one run directory (`runs/demo-<preset>` by default): `search/` (the search
//! run), `student/` (the retrain run), `student.onnx`, `teacher.validate.json`,
//! `student.validate.json` and `demo.json` (settings, the command and seconds of every stage,
//! the final table), which `dnas report` reads. Running the demo again resumes: finished
//! blocks, rankings and a finished retrain of the same architecture are not redone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::Outcome;
use crate::util::parse_count;
use crate::util::{read_json, write_atomic};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Smoke run: a few dozen steps per stage (about a minute).
    Quick,
    /// The default: ≤ 10 minutes on 2 CPU cores.
    Default,
    /// The quality run: full data, 2 supernet epochs, 12 retrain epochs (over an hour on 2 cores).
    Full,
}

/// What a preset sets. Every value is passed to the stage commands as a flag, so the printed
/// command lines reproduce each stage by hand.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub held_out: usize,
    pub search_subset: Option<usize>,
    pub search_epochs: usize,
    pub search_batch: usize,
    pub probe_batches: usize,
    pub eval_batches: usize,
    pub eval_batch: usize,
    pub recal_batch: usize,
    pub retrain_subset: Option<usize>,
    pub retrain_epochs: usize,
    pub retrain_batch: usize,
    /// Top-1 on the first N test images only (`None` = all 10,000).
    pub validate_images: Option<usize>,
    pub latency_warmup: usize,
    pub latency_runs: usize,
    /// Budget file, relative to the models folder.
    pub budget: &'static str,
    /// MF-KD (`--strategy mfkd`): random start, low-fidelity evaluations in all, promotions.
    pub mfkd: (usize, usize, usize),
}

impl Preset {
    pub fn settings(self) -> Settings {
        match self {
            Preset::Quick => Settings {
                held_out: 512,
                search_subset: Some(1024),
                search_epochs: 1,
                search_batch: 64,
                probe_batches: 1,
                eval_batches: 1,
                eval_batch: 64,
                recal_batch: 64,
                retrain_subset: Some(2048),
                retrain_epochs: 1,
                retrain_batch: 64,
                validate_images: Some(512),
                latency_warmup: 3,
                latency_runs: 20,
                budget: "demo/quick.budget.json",
                mfkd: (2, 4, 1),
            },
            Preset::Default => Settings {
                held_out: 5000,
                search_subset: Some(8000),
                search_epochs: 1,
                search_batch: 64,
                probe_batches: 2,
                eval_batches: 4,
                eval_batch: 256,
                recal_batch: 256,
                retrain_subset: Some(20000),
                retrain_epochs: 2,
                retrain_batch: 128,
                validate_images: None,
                latency_warmup: 10,
                latency_runs: 50,
                budget: "demo/default.budget.json",
                mfkd: (5, 10, 2),
            },
            Preset::Full => Settings {
                held_out: 5000,
                search_subset: None,
                search_epochs: 2,
                search_batch: 64,
                probe_batches: 2,
                eval_batches: 8,
                eval_batch: 256,
                recal_batch: 256,
                retrain_subset: None,
                retrain_epochs: 12,
                retrain_batch: 128,
                validate_images: None,
                latency_warmup: 10,
                latency_runs: 50,
                budget: "budgets/fmnist_searched.json",
                mfkd: (5, 10, 2),
            },
        }
    }
    fn name(self) -> &'static str {
        match self {
            Preset::Quick => "quick",
            Preset::Default => "default",
            Preset::Full => "full",
        }
    }
}

#[derive(Args)]
pub struct DemoArgs {
    /// quick (smoke), default (≤ 10 min on 2 cores) or full (the quality run).
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    pub(super) preset: Preset,
    /// Same as --preset quick.
    #[arg(long, conflicts_with = "preset")]
    pub(super) quick: bool,
    /// Run directory (default runs/demo-<preset>); an existing one is resumed.
    #[arg(short, long)]
    pub(super) output: Option<PathBuf>,
    /// cpu, cuda or cuda:N (training, evaluation, retraining; ONNX Runtime adds an ort-cuda row).
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    pub(super) device: String,
    /// libtorch threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub(super) threads: usize,
    /// Data: fmnist (the embedded default), idx:DIR, cifar10:DIR, cifar100:DIR (with a matching
    /// --teacher, --space and --budget); ImageFolder data goes through the stage commands.
    #[arg(long, default_value = "fmnist")]
    pub(super) data: String,
    /// Teacher ONNX (default models/fmnist_teacher.onnx).
    #[arg(long)]
    pub(super) teacher: Option<PathBuf>,
    /// Search space (default models/spaces/fmnist_small.json).
    #[arg(long)]
    pub(super) space: Option<PathBuf>,
    /// Budget the searched model is validated against (default: the preset's, in models/).
    /// Its max_macs and max_params are also the selection constraints.
    #[arg(long)]
    pub(super) budget: Option<PathBuf>,
    /// Override the selection's MAC limit (default: the budget's max_macs, else half the teacher's).
    #[arg(long, value_parser = parse_count)]
    pub(super) max_macs: Option<u64>,
    /// Seed of data order, weights and path sampling.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Search strategy: dna (block-wise supernets: train → evaluate → select), spos or cream
    /// (one-shot supernet), or mfkd (candidates trained alone at low fidelity with KD, Gaussian-
    /// process search) — the last three through dnas search --strategy …. The rest of the chain
    /// is the same.
    #[arg(long, default_value = "dna", value_parser = ["dna", "spos", "cream", "mfkd"])]
    pub(super) strategy: String,
}

impl DemoArgs {
    /// The preset's name (`--quick` included).
    pub(super) fn preset_name(&self) -> &'static str {
        if self.quick {
            Preset::Quick.name()
        } else {
            self.preset.name()
        }
    }
}

/// The folder of shipped models: `$DNAS_ROOT/models`, `./models`, or the source tree's.
pub fn models_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("DNAS_ROOT").map(|r| PathBuf::from(r).join("models")),
        Some(PathBuf::from("models")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("models")),
    ];
    candidates.into_iter().flatten().find(|p| p.join("fmnist_teacher.onnx").exists()).unwrap_or_else(|| PathBuf::from("models"))
}

/// One stage as run: what the report and `demo.json` show.
#[derive(Clone, Debug, Serialize)]
pub struct StageRecord {
    pub name: String,
    /// The equivalent command line (empty for in-process steps).
    pub command: String,
    pub seconds: f64,
    /// Resumed from an earlier run of the demo.
    pub skipped: bool,
}

struct Stages {
    records: Vec<StageRecord>,
    total: usize,
}

impl Stages {
    fn header(&self, name: &str, command: &str) {
        let shown = if command.is_empty() { String::new() } else { format!(": {command}") };
        eprintln!("\n[{}/{}] {name}{shown}", self.records.len() + 1, self.total);
    }
    /// Runs a stage command through the CLI (the very code path a user's command takes).
    fn run(&mut self, name: &str, args: Vec<OsString>) -> Result<Outcome> {
        let command = shown(&args);
        self.header(name, &command);
        let t0 = Instant::now();
        let mut full: Vec<OsString> = vec!["dnas".into()];
        full.extend(args);
        let out = super::run(full).with_context(|| format!("demo stage '{name}' ({command})"))?;
        self.records.push(StageRecord { name: name.into(), command, seconds: t0.elapsed().as_secs_f64(), skipped: false });
        Ok(out)
    }
    fn skip(&mut self, name: &str, why: &str) {
        self.header(name, "");
        eprintln!("  {why}");
        self.records.push(StageRecord { name: name.into(), command: String::new(), seconds: 0.0, skipped: true });
    }
}

fn shown(args: &[OsString]) -> String {
    let mut s = String::from("dnas");
    for a in args {
        let a = a.to_string_lossy();
        s.push(' ');
        if a.contains(' ') {
            s.push_str(&format!("'{a}'"));
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// Builds an argument vector from `&str`, `String`, `PathBuf` and numbers.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$(OsString::from(format!("{}", $a))),*] };
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// The demo's `dnas train` command line for its search run (every block; add `--block I` for one).
pub(super) fn train_args(a: &DemoArgs, s: &Settings, search: &Path) -> Vec<OsString> {
    let mut train = args![
        "train",
        "--run",
        p(search),
        "--data",
        a.data,
        "--held-out",
        s.held_out,
        "--epochs",
        s.search_epochs,
        "--batch",
        s.search_batch,
        "--probe-batches",
        s.probe_batches,
        "--seed",
        a.seed,
        "--device",
        a.device,
        "--threads",
        a.threads
    ];
    if let Some(n) = s.search_subset {
        train.extend(args!["--train-subset", n]);
    }
    train
}

/// The demo's `dnas evaluate` command line (every block; add `--block I` for one).
pub(super) fn evaluate_args(a: &DemoArgs, s: &Settings, search: &Path) -> Vec<OsString> {
    args![
        "evaluate",
        "--run",
        p(search),
        "--batches",
        s.eval_batches,
        "--batch",
        s.eval_batch,
        "--recal-batch",
        s.recal_batch,
        "--device",
        a.device,
        "--threads",
        a.threads
    ]
}

/// The preset, settings, and paths (teacher, space, budget, run directory, DNA search run) a
/// demo with these arguments uses.
pub(super) struct DemoPaths {
    pub preset: Preset,
    pub settings: Settings,
    pub teacher: PathBuf,
    pub space: PathBuf,
    pub budget: PathBuf,
    pub dir: PathBuf,
    pub search: PathBuf,
}

pub(super) fn paths(a: &DemoArgs) -> Result<DemoPaths> {
    let preset = if a.quick { Preset::Quick } else { a.preset };
    let settings = preset.settings();
    let models = models_dir();
    let teacher = a.teacher.clone().unwrap_or_else(|| models.join("fmnist_teacher.onnx"));
    let space = a.space.clone().unwrap_or_else(|| models.join("spaces/fmnist_small.json"));
    let budget = a.budget.clone().unwrap_or_else(|| models.join(settings.budget));
    for (what, f) in [("teacher", &teacher), ("search space", &space), ("budget", &budget)] {
        if !f.exists() {
            bail!(
                "the {what} '{}' does not exist (run from the repository root, set DNAS_ROOT, or pass --{})",
                f.display(),
                what.split(' ').next_back().unwrap_or(what)
            );
        }
    }
    let dir = a.output.clone().unwrap_or_else(|| PathBuf::from(format!("runs/demo-{}", preset.name())));
    let search = if a.strategy != "dna" { dir.join(format!("search-{}", a.strategy)) } else { dir.join("search") };
    Ok(DemoPaths { preset, settings, teacher, space, budget, dir, search })
}

/// What every stage of one demo sees: its arguments, preset settings and paths.
struct Demo<'a> {
    a: &'a DemoArgs,
    s: Settings,
    preset: Preset,
    teacher: PathBuf,
    space: PathBuf,
    budget_path: PathBuf,
    budget: crate::validate::budget::Budget,
    dir: PathBuf,
    search: PathBuf,
    student: PathBuf,
    arch: PathBuf,
    onnx: PathBuf,
    device: String,
    threads: String,
}

pub fn demo(a: DemoArgs) -> Result<Outcome> {
    let t0 = Instant::now();
    let DemoPaths { preset, settings: s, teacher, space, budget: budget_path, dir, search } = paths(&a)?;
    let budget = crate::validate::budget::Budget::load(&budget_path)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    let d = Demo {
        a: &a,
        s,
        preset,
        teacher,
        space,
        budget_path,
        budget,
        student: dir.join("student"),
        arch: search.join("arch.json"),
        onnx: dir.join("student.onnx"),
        dir,
        search,
        device: a.device.clone(),
        threads: a.threads.to_string(),
    };
    let mut st = Stages { records: Vec::new(), total: if a.strategy != "dna" { 6 } else { 8 } };
    let teacher_macs = import_stage(&d, &mut st)?;
    let max_macs = a.max_macs.or(d.budget.max_macs).unwrap_or(teacher_macs / 2);
    if a.strategy != "dna" {
        oneshot_stage(&d, max_macs, &mut st)?;
    } else {
        dna_stages(&d, max_macs, &mut st)?;
    }
    retrain_stage(&d, &mut st)?;
    // 6. Deployable ONNX.
    let weights = d.student.join("final.safetensors");
    st.run("export", args!["export", "--arch", p(&d.arch), "--weights", p(&weights), "-o", p(&d.onnx)])?;
    let outcome = validate_stages(&d, &mut st)?;
    finish(&d, max_macs, st, outcome, t0)
}

/// Stage 1: import the teacher and cut it (in process: what `dnas teacher inspect` prints); its MACs.
fn import_stage(d: &Demo, st: &mut Stages) -> Result<u64> {
    st.header("teacher import and cuts", "");
    let t = Instant::now();
    let g = crate::onnx::read_file(&d.teacher)?;
    let ins = crate::teacher::inspect::inspect(&g, None, None).with_context(|| format!("teacher '{}'", d.teacher.display()))?;
    eprintln!("  {}: {} params, {} MACs, opset {}", d.teacher.display(), ins.params, ins.macs, ins.opset);
    for c in &ins.cuts {
        eprintln!("  cut {:<28} C={:<4} stride {}", c.tensor, c.channels, c.stride);
    }
    st.records.push(StageRecord {
        name: "teacher import and cuts".into(),
        command: format!("dnas teacher inspect {}", p(&d.teacher)),
        seconds: t.elapsed().as_secs_f64(),
        skipped: false,
    });
    Ok(ins.macs)
}

/// Stage 2, one-shot: the supernet (or MF-KD's evaluations) and the strategy's pick under the
/// budget, in one command.
fn oneshot_stage(d: &Demo, max_macs: u64, st: &mut Stages) -> Result<()> {
    let (a, s, device, threads, budget) = (d.a, &d.s, &d.device, &d.threads, &d.budget);
    let (search, space, teacher) = (&d.search, &d.space, &d.teacher);
    // 2. One-shot supernet and the strategy's pick under the budget, in one command.
    let mut search_cmd = args![
        "search",
        a.strategy,
        "--run",
        p(search),
        "--space",
        p(space),
        "--teacher",
        p(teacher),
        "--data",
        a.data,
        "--held-out",
        s.held_out,
        "--epochs",
        s.search_epochs,
        "--batch",
        s.search_batch,
        "--seed",
        a.seed,
        "--device",
        device,
        "--threads",
        threads,
        "--max-macs",
        max_macs
    ];
    if let Some(n) = s.search_subset {
        search_cmd.extend(args!["--train-subset", n]);
    }
    if let Some(mp) = budget.max_params {
        search_cmd.extend(args!["--max-params", mp]);
    }
    let stage = if a.strategy == "mfkd" {
        let (init, evals, promote) = s.mfkd;
        search_cmd.extend(args!["--init", init, "--evals", evals, "--promote", promote]);
        "MF-KD: low-fidelity evaluations with KD and Gaussian-process search".to_string()
    } else {
        search_cmd.extend(args!["--eval-batches", s.eval_batches, "--eval-batch", s.eval_batch]);
        format!("one-shot supernet training and {} search", a.strategy)
    };
    st.run(&stage, search_cmd)?;
    Ok(())
}

/// Stages 2–4, DNA: supernets, rankings, exact selection under the budget's cost limits.
fn dna_stages(d: &Demo, max_macs: u64, st: &mut Stages) -> Result<()> {
    let (a, s, budget) = (d.a, &d.s, &d.budget);
    let (search, space, teacher, arch) = (&d.search, &d.space, &d.teacher, &d.arch);
    // 2. Supernets. Settings are always passed: `dnas train` refuses a run made with others.
    let mut train = train_args(a, s, search);
    if !search.join("run.json").exists() {
        train.extend(args!["--teacher", p(teacher), "--space", p(space)]);
    }
    st.run("supernet training (one teacher forward per batch, every block)", train)?;

    // 3. Rankings.
    let blocks = crate::strategy::dna::run::RunDir::open(search)?;
    let n_blocks = blocks.space()?.blocks.len();
    if (0..n_blocks).all(|i| blocks.eval_path(i).exists()) && rankings_current(&blocks, n_blocks) {
        st.skip("candidate evaluation", "every block is already ranked (eval/block-*.json)");
    } else {
        st.run("candidate evaluation", evaluate_args(a, s, search))?;
    }

    // 4. Exact selection under the budget's cost limits.
    let mut select = args!["select", "--run", p(search), "--max-macs", max_macs, "-o", p(arch)];
    if let Some(mp) = budget.max_params {
        select.extend(args!["--max-params", mp]);
    }
    st.run("architecture selection", select)?;
    Ok(())
}

/// Stage 5: retrain the child with KD (skipped when this very architecture finished already).
fn retrain_stage(d: &Demo, st: &mut Stages) -> Result<()> {
    let (a, s, device, threads) = (d.a, &d.s, &d.device, &d.threads);
    let (arch, student, teacher, dir) = (&d.arch, &d.student, &d.teacher, &d.dir);
    let arch_json: serde_json::Value = read_json(arch)?;
    let same_arch = read_json(&student.join("run.json")).ok().is_some_and(|r| r["arch"] == arch_json);
    if same_arch && student.join("result.json").exists() {
        st.skip("retraining with KD", "the student of this architecture is already trained (student/result.json)");
    } else {
        let mut retrain = args![
            "retrain",
            "--arch",
            p(arch),
            "-o",
            p(student),
            "--kd-teacher",
            p(teacher),
            "--data",
            a.data,
            "--held-out",
            s.held_out,
            "--epochs",
            s.retrain_epochs,
            "--batch",
            s.retrain_batch,
            "--seed",
            a.seed,
            "--device",
            device,
            "--threads",
            threads,
            "--no-validate"
        ];
        if let Some(n) = s.retrain_subset {
            retrain.extend(args!["--train-subset", n]);
        }
        if same_arch && student.join("ckpt").exists() {
            retrain.push("--resume".into());
        } else if student.exists() {
            // Another architecture's student: keep it beside, never overwrite silently.
            let old = dir.join(format!("student.old-{}", crate::util::unique_suffix()));
            std::fs::rename(student, &old).with_context(|| format!("cannot move the previous student to '{}'", old.display()))?;
            eprintln!("  the previous student (another architecture) moved to {}", old.display());
        }
        st.run("retraining with KD", retrain)?;
    }

    Ok(())
}

/// Stages 7–8, validation: the teacher for the table, the student against the budget.
fn validate_stages(d: &Demo, st: &mut Stages) -> Result<Outcome> {
    let (a, s, device, dir) = (d.a, &d.s, &d.device, &d.dir);
    let mut targets = vec!["ort-cpu-1t", "ort-cpu-4t", "tract"];
    if device.starts_with("cuda") {
        targets.push("ort-cuda");
    }
    let validate = |model: &Path, report: &Path| {
        let mut v = args![
            "validate",
            p(model),
            "--data",
            a.data,
            "--targets",
            targets.join(","),
            "--warmup",
            s.latency_warmup,
            "--runs",
            s.latency_runs,
            "--report",
            p(report)
        ];
        if let Some(n) = s.validate_images {
            v.extend(args!["--max-images", n]);
        }
        v
    };
    let teacher_report = dir.join("teacher.validate.json");
    let student_report = dir.join("student.validate.json");
    st.run("teacher validation", validate(&d.teacher, &teacher_report))?;
    let mut v = validate(&d.onnx, &student_report);
    v.extend(args!["--budget", p(&d.budget_path)]);
    st.run("student validation against the budget", v)
}

/// The teacher-vs-searched table, `demo.json`, and the summary.
fn finish(d: &Demo, max_macs: u64, st: Stages, outcome: Outcome, t0: Instant) -> Result<Outcome> {
    let (a, s, device, dir, preset) = (d.a, &d.s, &d.device, &d.dir, d.preset);
    let (teacher, space, budget_path, budget, search, student, onnx, arch) =
        (&d.teacher, &d.space, &d.budget_path, &d.budget, &d.search, &d.student, &d.onnx, &d.arch);
    let teacher_report = dir.join("teacher.validate.json");
    let student_report = dir.join("student.validate.json");
    let table = Table::from_reports(&read_json(&teacher_report)?, &read_json(&student_report)?)?;
    let wall = t0.elapsed().as_secs_f64();
    let record = serde_json::json!({
        "format": "dnas.demo", "version": 1, "preset": preset, "strategy": a.strategy, "settings": s, "device": device, "seed": a.seed, "data": a.data,
        "teacher": teacher, "space": space, "budget": budget_path, "max_macs": max_macs, "max_params": budget.max_params,
        "search": search, "student": student, "model": onnx, "arch": arch,
        "teacher_report": teacher_report, "student_report": student_report,
        "stages": st.records, "table": table, "pass": matches!(outcome, Outcome::Ok), "wall_seconds": wall,
    });
    write_atomic(&dir.join("demo.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    // The machine-readable record is demo.json (the stages print their own tables on stdout).
    println!("\n== dnas demo --preset {}: {} ==", preset.name(), dir.display());
    table.print();
    println!("\nstages:");
    for r in &st.records {
        println!("  {:<62} {:>7.0} s{}", r.name, r.seconds, if r.skipped { "  (resumed)" } else { "" });
    }
    println!("  {:<62} {:>7.0} s", "total", wall);
    println!(
        "\nbudget {}: {}",
        budget_path.display(),
        if matches!(outcome, Outcome::Ok) { "PASS" } else { "FAIL (see the violations above)" }
    );
    println!("record: {}\nreport: dnas report --run {}", dir.join("demo.json").display(), dir.display());
    Ok(outcome)
}

/// True when every block's ranking is at least as new as its trained weights.
fn rankings_current(run: &crate::strategy::dna::run::RunDir, n: usize) -> bool {
    let mtime = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (0..n).all(|i| match (mtime(run.eval_path(i)), mtime(run.weights_path(i))) {
        (Some(e), Some(w)) => e >= w,
        _ => false,
    })
}

/// Teacher vs searched, from the two validation reports.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    pub rows: Vec<TableRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableRow {
    pub metric: String,
    pub teacher: Option<f64>,
    pub student: Option<f64>,
    /// How the values print: "percent", "count" or "ms".
    pub unit: String,
}

impl Table {
    pub fn from_reports(teacher: &serde_json::Value, student: &serde_json::Value) -> Result<Table> {
        let mut rows = Vec::new();
        let top1 = |r: &serde_json::Value, rt: &str| {
            r["accuracy"].as_array().and_then(|a| a.iter().find(|x| x["runtime"] == rt)).and_then(|x| x["top1"].as_f64())
        };
        for rt in ["onnxruntime", "tract"] {
            rows.push(TableRow {
                metric: format!("top-1 ({rt})"),
                teacher: top1(teacher, rt),
                student: top1(student, rt),
                unit: "percent".into(),
            });
        }
        for k in ["params", "macs"] {
            rows.push(TableRow {
                metric: if k == "macs" { "MACs".into() } else { k.into() },
                teacher: teacher[k].as_f64(),
                student: student[k].as_f64(),
                unit: "count".into(),
            });
        }
        let p50 = |r: &serde_json::Value, t: &str| {
            r["latency"].as_array().and_then(|a| a.iter().find(|x| x["target"] == t)).and_then(|x| x["p50_ms"].as_f64())
        };
        let targets: Vec<String> = student["latency"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["target"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        for t in targets {
            let (te, st) = (p50(teacher, &t), p50(student, &t));
            // A target neither model could run on (e.g. a provider this onnxruntime lacks) says nothing.
            if te.is_some() || st.is_some() {
                rows.push(TableRow { metric: format!("{t} p50 ms"), teacher: te, student: st, unit: "ms".into() });
            }
        }
        if rows.iter().all(|r| r.student.is_none()) {
            bail!("the student's validation report has no figures");
        }
        Ok(Table { rows })
    }

    pub fn print(&self) {
        println!("{:<22} {:>14} {:>14} {:>10}", "", "teacher", "searched", "ratio");
        for r in &self.rows {
            let f = |v: Option<f64>| match v {
                None => "-".to_string(),
                Some(v) if r.unit == "percent" => format!("{:.2}%", 100.0 * v),
                Some(v) if r.unit == "ms" => format!("{v:.3}"),
                Some(v) => format!("{v:.0}"),
            };
            let ratio = match (r.teacher, r.student) {
                (Some(t), Some(s)) if r.unit == "percent" => format!("{:+.2} pt", 100.0 * (s - t)),
                (Some(t), Some(s)) if t > 0.0 => format!("{:.3}×", s / t),
                _ => "-".into(),
            };
            println!("{:<22} {:>14} {:>14} {:>10}", r.metric, f(r.teacher), f(r.student), ratio);
        }
    }
}
