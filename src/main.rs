use std::process::ExitCode;

fn main() -> ExitCode {
    // Keep freed tensor memory for reuse instead of unmapping it (see dnas::util::malloc).
    dnas::util::malloc::tune_for_tensors();
    // SIGTERM / SIGUSR1 stop training at the next step, after a checkpoint (preemption).
    dnas::util::signals::install();
    match dnas::cli::run(std::env::args_os()) {
        Ok(dnas::cli::Outcome::Ok) => ExitCode::SUCCESS,
        Ok(dnas::cli::Outcome::CheckFailed) => ExitCode::from(1),
        Err(e) if e.chain().any(|c| c.is::<dnas::util::signals::Preempted>()) => {
            eprintln!("{e:#}");
            ExitCode::from(dnas::util::signals::PREEMPTED_EXIT)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
