//! Command line. Every command prints a human table by default and JSON with `--json`.
//! Exit codes: 0 success, 1 a check failed, 2 error (bad input, I/O, unsupported model).

pub mod demo;
pub mod mfkd;
pub mod oneshot;
pub mod report;
pub mod retrain;
pub mod search;
pub mod status;
pub mod study;
pub mod submit;
mod teacher;
pub mod time_pair;
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
    TrainTeacher(train::TrainTeacherArgs),
    /// Top-1 of an ONNX classifier on a dataset split through ONNX Runtime and tract.
    Eval(train::EvalArgs),
    /// Trains the block supernets of a search run (creating the run with --teacher and --space).
    Train(search::SearchTrainArgs),
    /// One-shot search (SPOS or Cream of the Crop): trains the whole-network supernet, then picks
    /// an architecture under the budget and writes arch.json.
    Search(Box<oneshot::OneShotArgs>),
    /// Ranks every candidate of every block of a trained run on held-out data.
    Evaluate(search::EvaluateArgs),
    /// Selects the architecture with the lowest total block score under a budget.
    Select(search::SelectArgs),
    /// Retrains a selected architecture from scratch (optionally distilled from the teacher).
    Retrain(retrain::RetrainArgs),
    /// Writes an architecture with trained weights as deployable ONNX.
    Export(retrain::ExportArgs),
    /// Validates an ONNX model against a deployment budget (accuracy, cost, latency): the CI gate.
    Validate(validate::ValidateArgs),
    /// Measures every candidate layer of a search space on a latency target (a table for select --latency-lut).
    LatencyLut(validate::LatencyLutArgs),
    /// The whole pipeline on the embedded default (Fashion-MNIST, shipped teacher): search,
    /// select under a budget, retrain with KD, export, validate; then a teacher-vs-searched table.
    Demo(demo::DemoArgs),
    /// A self-contained HTML report (SVG plots) of a demo or search run directory.
    Report(report::ReportArgs),
    /// Search quality, measured: a truth set retrained from scratch, rank correlation of a
    /// search's predictions against it, and the pick against random architectures.
    Study {
        #[command(subcommand)]
        command: study::StudyCommand,
    },
    /// Runs the demo's DNA chain on a cluster: one job per block, then the gather step
    /// (select, retrain, export, validate) as a dependent job.
    Submit {
        #[command(subcommand)]
        command: submit::SubmitCommand,
    },
    /// Where a run directory stands: per block trained / training / ranked, checkpoints, holders,
    /// and the Slurm jobs that `dnas submit slurm` started.
    Status(status::StatusArgs),
    /// Internal (started by `validate`): the interleaved timing of a model and its reference on one
    /// ONNX Runtime target, in a process whose sessions share one thread pool; prints JSON.
    #[command(hide = true)]
    TimePair(time_pair::TimePairArgs),
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
        Command::Demo(a) => demo::demo(a),
        Command::Report(a) => report::report(a),
        Command::Study { command } => study::run(command),
        Command::Submit { command } => submit::submit(command),
        Command::Status(a) => status::status(a),
        Command::TrainTeacher(a) => train::train_teacher(a),
        Command::Eval(a) => train::eval(a),
        Command::Train(a) => search::train(a),
        Command::Search(a) if a.strategy == "mfkd" => mfkd::search_cmd(*a),
        Command::Search(a) => oneshot::search(*a),
        Command::Evaluate(a) => search::evaluate_cmd(a),
        Command::Select(a) => search::select_cmd(a),
        Command::Retrain(a) => retrain::retrain(a),
        Command::Export(a) => retrain::export_cmd(a),
        Command::Validate(a) => validate::validate(a),
        Command::LatencyLut(a) => validate::latency_lut(a),
        Command::TimePair(a) => time_pair::time_pair(a),
    }
}
