//! Command line. Every command prints a human table by default and JSON with `--json`.
//! Exit codes: 0 success, 1 a check failed, 2 error (bad input, I/O, unsupported model).

#[cfg(feature = "torch")]
pub mod demo;
pub mod eval;
#[cfg(feature = "torch")]
pub mod mfkd;
#[cfg(feature = "torch")]
pub mod oneshot;
#[cfg(feature = "torch")]
pub mod report;
#[cfg(feature = "torch")]
pub mod retrain;
#[cfg(feature = "torch")]
pub mod search;
#[cfg(feature = "torch")]
pub mod status;
#[cfg(feature = "torch")]
pub mod study;
#[cfg(feature = "torch")]
pub mod submit;
mod teacher;
pub mod time_pair;
#[cfg(feature = "torch")]
pub mod train;
pub mod validate;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "dnas", version, about = "Block-wise knowledge-distillation NAS for mobile CNNs, shipped as ONNX")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import, inspect, check and convert a teacher ONNX model.
    Teacher {
        #[command(subcommand)]
        command: teacher::TeacherCommand,
    },
    /// Trains an EfficientNet-style teacher from an architecture JSON and exports it as ONNX.
    #[cfg(feature = "torch")]
    TrainTeacher(train::TrainTeacherArgs),
    /// Top-1 of an ONNX classifier on a dataset split through ONNX Runtime and tract.
    Eval(eval::EvalArgs),
    /// Trains the block supernets of a search run (creating the run with --teacher and --space).
    #[cfg(feature = "torch")]
    Train(search::SearchTrainArgs),
    /// Searches an architecture under a budget with one strategy; every strategy writes the
    /// run's search.json (the same typed header) and its pick as arch.json.
    #[cfg(feature = "torch")]
    Search {
        #[command(subcommand)]
        strategy: SearchCommand,
    },
    /// Ranks every candidate of every block of a trained run on held-out data.
    #[cfg(feature = "torch")]
    Evaluate(search::EvaluateArgs),
    /// Selects the architecture with the lowest total block score under a budget.
    #[cfg(feature = "torch")]
    Select(search::SelectArgs),
    /// Retrains a selected architecture from scratch (optionally distilled from the teacher).
    #[cfg(feature = "torch")]
    Retrain(retrain::RetrainArgs),
    /// Writes an architecture with trained weights as deployable ONNX.
    #[cfg(feature = "torch")]
    Export(retrain::ExportArgs),
    /// Validates an ONNX model against a deployment budget (accuracy, cost, latency): the CI gate.
    Validate(validate::ValidateArgs),
    /// Measures every candidate layer of a search space on a latency target (a table for select --latency-lut).
    #[cfg(feature = "torch")]
    LatencyLut(validate::LatencyLutArgs),
    /// The whole pipeline on the embedded default (Fashion-MNIST, shipped teacher): search,
    /// select under a budget, retrain with KD, export, validate; then a teacher-vs-searched table.
    #[cfg(feature = "torch")]
    Demo(demo::DemoArgs),
    /// A self-contained HTML report (SVG plots) of a demo or search run directory.
    #[cfg(feature = "torch")]
    Report(report::ReportArgs),
    /// Search quality, measured: a truth set retrained from scratch, rank correlation of a
    /// search's predictions against it, and the pick against random architectures.
    #[cfg(feature = "torch")]
    Study {
        #[command(subcommand)]
        command: study::StudyCommand,
    },
    /// Runs the demo's DNA chain on a cluster: one job per block, then the gather step
    /// (select, retrain, export, validate) as a dependent job.
    #[cfg(feature = "torch")]
    Submit {
        #[command(subcommand)]
        command: submit::SubmitCommand,
    },
    /// Where a run directory stands: per block trained / training / ranked, checkpoints, holders,
    /// and the Slurm jobs that `dnas submit slurm` started.
    #[cfg(feature = "torch")]
    Status(status::StatusArgs),
    /// Internal (started by `validate`): the interleaved timing of a model and its reference on one
    /// ONNX Runtime target, in a process whose sessions share one thread pool; prints JSON.
    #[command(hide = true)]
    TimePair(time_pair::TimePairArgs),
}

/// `dnas search <strategy>`: each strategy with its own flags over the shared ones.
#[cfg(feature = "torch")]
#[derive(Subcommand)]
enum SearchCommand {
    /// DNA: block-wise supernets distilled from the teacher's blocks, every candidate ranked,
    /// the architecture selected exactly under the budget (the stages: train, evaluate, select).
    Dna(Box<search::DnaSearchArgs>),
    /// SPOS: a uniformly sampled one-shot supernet, then evolutionary search on inherited weights.
    Spos(Box<oneshot::SposArgs>),
    /// Cream of the Crop: prioritized paths on a board teach the sampled ones; the pick is the
    /// best board path on held-out data.
    Cream(Box<oneshot::CreamArgs>),
    /// MF-KD: candidates trained alone at a low fidelity with distillation, a Gaussian-process
    /// surrogate proposing the next, the best promoted to the high fidelity.
    Mfkd(Box<mfkd::MfkdArgs>),
}

/// Outcome of a command that ran to the end.
pub enum Outcome {
    Ok,
    CheckFailed,
}

pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Outcome> {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help / --version
            e.print()?;
            return Ok(Outcome::Ok);
        }
        Err(e) => {
            // clap's message starts with its own "error: "; main adds ours.
            let msg = e.to_string();
            return Err(anyhow::anyhow!("{}", msg.strip_prefix("error: ").unwrap_or(&msg).trim_end()));
        }
    };
    match cli.command {
        Command::Teacher { command } => teacher::run(command),
        #[cfg(feature = "torch")]
        Command::Demo(a) => demo::demo(a),
        #[cfg(feature = "torch")]
        Command::Report(a) => report::report(a),
        #[cfg(feature = "torch")]
        Command::Study { command } => study::run(command),
        #[cfg(feature = "torch")]
        Command::Submit { command } => submit::submit(command),
        #[cfg(feature = "torch")]
        Command::Status(a) => status::status(a),
        #[cfg(feature = "torch")]
        Command::TrainTeacher(a) => train::train_teacher(a),
        Command::Eval(a) => eval::eval(a),
        #[cfg(feature = "torch")]
        Command::Train(a) => search::train(a),
        #[cfg(feature = "torch")]
        Command::Search { strategy: SearchCommand::Dna(a) } => search::search_dna(*a),
        #[cfg(feature = "torch")]
        Command::Search { strategy: SearchCommand::Spos(a) } => oneshot::spos(*a),
        #[cfg(feature = "torch")]
        Command::Search { strategy: SearchCommand::Cream(a) } => oneshot::cream(*a),
        #[cfg(feature = "torch")]
        Command::Search { strategy: SearchCommand::Mfkd(a) } => mfkd::search_cmd(*a),
        #[cfg(feature = "torch")]
        Command::Evaluate(a) => search::evaluate_cmd(a),
        #[cfg(feature = "torch")]
        Command::Select(a) => search::select_cmd(a),
        #[cfg(feature = "torch")]
        Command::Retrain(a) => retrain::retrain(a),
        #[cfg(feature = "torch")]
        Command::Export(a) => retrain::export_cmd(a),
        Command::Validate(a) => validate::validate(a),
        #[cfg(feature = "torch")]
        Command::LatencyLut(a) => validate::latency_lut(a),
        Command::TimePair(a) => time_pair::time_pair(a),
    }
}
